"""goodbooks-10k: 6M ratings (1-5 stars) of 10k popular books by 53k Goodreads users.

Zajac, github.com/zygmuntz/goodbooks-10k (2017), CC BY-SA 4.0. ``ratings.csv`` is
``user_id,book_id,rating`` with a header and no timestamps; ``books.csv`` maps
``book_id`` to ISBNs, titles and authors (not read here).
"""

from __future__ import annotations

from jaxrec.data.datasets.table import cached_read, find_file
from jaxrec.data.datasets.tabular import ReadSpec
from jaxrec.data.interactions import Interactions

FOLDER = "goodbooks-10k"


def load_goodbooks(data_dir: str | None = None, folder: str = FOLDER, *,
                   cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """``<data_dir>/<folder>/ratings.csv`` (or ``ratings.csv.gz``): explicit 1-5 ratings."""
    path = find_file(data_dir, folder, ["ratings.csv", "ratings.csv.gz"], "goodbooks")
    fields = {"user": "user_id", "item": "book_id", "rating": "rating"}
    return cached_read([(path, 0)], fields, ReadSpec(), "s", "goodbooks", cache_dir, use_cache)
