"""Yelp Open Dataset reviews (yelp.com/dataset; Yelp Dataset License, non-commercial).

``yelp_academic_dataset_review.json`` (``review.json`` in older releases): JSON lines
with ``review_id``, ``user_id``, ``business_id``, ``stars`` (1-5), ``date``
(``YYYY-MM-DD HH:MM:SS``) and text. Explicit ratings; implicit studies keep every review
or stars >= 4 (``preprocess.rating_threshold=4``).
"""

from __future__ import annotations

from jaxrec.data.datasets.table import cached_read, find_file
from jaxrec.data.datasets.tabular import ReadSpec
from jaxrec.data.interactions import Interactions

FOLDER = "yelp"
FILES = ("yelp_academic_dataset_review.json", "review.json",
         "yelp_academic_dataset_review.json.gz", "review.json.gz")


def load_yelp(data_dir: str | None = None, folder: str = FOLDER, *,
              cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """``<data_dir>/<folder>/yelp_academic_dataset_review.json`` (or ``review.json``)."""
    path = find_file(data_dir, folder, list(FILES), "yelp")
    fields = {"user": "user_id", "item": "business_id", "rating": "stars", "timestamp": "date"}
    return cached_read([(path, 0)], fields, ReadSpec(format="json", numeric_time=False),
                       "%Y-%m-%d %H:%M:%S", "yelp", cache_dir, use_cache)
