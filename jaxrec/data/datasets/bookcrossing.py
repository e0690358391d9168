"""Book-Crossing: 1.1M ratings of 270k books by 279k users (Ziegler et al. 2005).

Ziegler, McNee, Konstan and Lausen, "Improving Recommendation Lists Through Topic
Diversification", WWW 2005. ``BX-Book-Ratings.csv`` is semicolon-separated, every field
double-quoted, latin-1 encoded, header ``"User-ID";"ISBN";"Book-Rating"``. Ratings are
1-10 (explicit) or 0 (an implicit interaction); ISBNs are kept as written (strings,
some with letters or stray characters).
"""

from __future__ import annotations

from jaxrec.data.datasets.table import cached_read, find_file
from jaxrec.data.datasets.tabular import ReadSpec
from jaxrec.data.interactions import Interactions

FOLDER = "book-crossing"


def load_bookcrossing(data_dir: str | None = None, folder: str = FOLDER, *,
                      cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """``<data_dir>/<folder>/BX-Book-Ratings.csv``; 0 ratings are kept (implicit rows)."""
    path = find_file(data_dir, folder, ["BX-Book-Ratings.csv", "BX-Book-Ratings.csv.gz"],
                     "book-crossing")
    fields = {"user": "User-ID", "item": "ISBN", "rating": "Book-Rating"}
    spec = ReadSpec(sep=";", encoding="latin-1")
    return cached_read([(path, 0)], fields, spec, "s", "book-crossing", cache_dir, use_cache)
