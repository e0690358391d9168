"""Gowalla check-ins (SNAP): 6.4M check-ins of 107k users at 1.3M places, 2009-2010.

Cho, Myers and Leskovec, "Friendship and Mobility: User Movement in Location-Based
Social Networks", KDD 2011 (snap.stanford.edu/data/loc-gowalla.html).
``loc-gowalla_totalCheckins.txt.gz``: tab-separated, no header,
``user\\tcheck-in time (ISO 8601, Z)\\tlatitude\\tlongitude\\tlocation id``. Implicit: each
check-in is a positive (repeat visits are rows; ``preprocess.dedup`` keeps one).
"""

from __future__ import annotations

from jaxrec.data.datasets.table import cached_read, find_file
from jaxrec.data.datasets.tabular import ReadSpec
from jaxrec.data.interactions import Interactions

FOLDER = "gowalla"
NAMES = ("user", "time", "latitude", "longitude", "location")


def load_gowalla(data_dir: str | None = None, folder: str = FOLDER, *,
                 cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """``<data_dir>/<folder>/loc-gowalla_totalCheckins.txt(.gz)``: user x location check-ins."""
    path = find_file(data_dir, folder, ["loc-gowalla_totalCheckins.txt.gz",
                                        "loc-gowalla_totalCheckins.txt"], "gowalla")
    fields = {"user": "user", "item": "location", "timestamp": "time"}
    spec = ReadSpec(sep="\t", header=False, names=NAMES, quote_char=None)
    return cached_read([(path, 0)], fields, spec, "iso", "gowalla", cache_dir, use_cache)
