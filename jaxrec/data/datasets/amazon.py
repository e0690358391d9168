"""Amazon product reviews: 2014, 2018 and 2023 editions, per-category JSON lines.

2014: McAuley, Targett, Shi and van den Hengel, "Image-based Recommendations on Styles
and Substitutes", SIGIR 2015 (jmcauley.ucsd.edu/data/amazon): ``reviews_<Category>_5.json.gz``
(5-core) and ``reviews_<Category>.json.gz``. 2018: Ni, Li and McAuley, EMNLP 2019
(nijianmo.github.io/amazon): ``<Category>_5.json.gz`` and ``<Category>.json.gz``. Both
hold ``reviewerID``, ``asin``, ``overall`` (1-5), ``unixReviewTime`` (seconds), text and
nested fields (``style``, ``image``) that are skipped. 2023: Hou et al., "Bridging
Language and Items for Retrieval and Recommendation", 2024 (amazon-reviews-2023.github.io):
``<Category>.jsonl(.gz)`` with ``user_id``, ``parent_asin``, ``rating`` and a millisecond
``timestamp``. Files may be plain or gzipped, under their published names.
"""

from __future__ import annotations

from jaxrec.data.datasets.table import cached_read, find_file
from jaxrec.data.datasets.tabular import ReadSpec
from jaxrec.data.interactions import DataError, Interactions

EDITIONS = {
    2014: ({"user": "reviewerID", "item": "asin", "rating": "overall",
            "timestamp": "unixReviewTime"}, "s"),
    2018: ({"user": "reviewerID", "item": "asin", "rating": "overall",
            "timestamp": "unixReviewTime"}, "s"),
    2023: ({"user": "user_id", "item": "parent_asin", "rating": "rating",
            "timestamp": "timestamp"}, "ms"),
}


def amazon_names(edition: int, category: str, core: int) -> list[str]:
    """Published file names of one category, plain then gzipped."""
    if edition == 2023:
        stems = [f"{category}.jsonl", f"{category}.json"]
    else:
        prefix = "reviews_" if edition == 2014 else ""
        stems = [f"{prefix}{category}{'_5' if core == 5 else ''}.json"]
    return [n for stem in stems for n in (stem, stem + ".gz")]


def load_amazon(category: str, edition: int = 2014, core: int = 5, data_dir: str | None = None,
                folder: str | None = None, *, cache_dir: str | None = None,
                use_cache: bool = True) -> Interactions:
    """One category's reviews from ``<data_dir>/amazon<edition>/``.

    Args:
      category: the published category name, e.g. ``Musical_Instruments``.
      edition: 2014 | 2018 | 2023.
      core: 5 for the 5-core file, 0 for all reviews (2014 / 2018; 2023 has one file).
      data_dir: folder holding ``amazon<edition>/`` (or ``folder``).
      folder: sub-folder (default ``amazon<edition>``).
    """
    if edition not in EDITIONS:
        raise DataError(f"amazon: edition={edition} is not 2014, 2018 or 2023")
    if core not in (0, 5):
        raise DataError(f"amazon: core={core} is not 5 (5-core file) or 0 (all reviews)")
    fields, time_format = EDITIONS[edition]
    name = f"amazon{edition}-{category}" + ("-5core" if core == 5 and edition != 2023 else "")
    path = find_file(data_dir, folder or f"amazon{edition}",
                     amazon_names(edition, category, core), name)
    return cached_read([(path, 0)], fields, ReadSpec(format="json"), time_format, name,
                       cache_dir, use_cache)
