"""Last.fm HetRec 2011 (hetrec2011-lastfm-2k): artists listened to by 1,892 users.

Cantador, Brusilovsky and Kuflik, "2nd Workshop on Information Heterogeneity and
Fusion in Recommender Systems (HetRec 2011)", RecSys 2011; grouplens.org/datasets/hetrec-2011.
``user_artists.dat`` is tab-separated with a header, ``userID\\tartistID\\tweight``, where
the weight is the user's play count of the artist; it is the rating here (implicit data:
``preprocess.implicit=true`` binarises, ``rating_threshold`` cuts on plays).
"""

from __future__ import annotations

from jaxrec.data.datasets.table import cached_read, find_file
from jaxrec.data.datasets.tabular import ReadSpec
from jaxrec.data.interactions import Interactions

FOLDER = "hetrec2011-lastfm-2k"


def load_lastfm_hetrec(data_dir: str | None = None, folder: str = FOLDER, *,
                       cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """``<data_dir>/<folder>/user_artists.dat``: play counts as ratings, no timestamps."""
    path = find_file(data_dir, folder, ["user_artists.dat"], "lastfm-hetrec")
    fields = {"user": "userID", "item": "artistID", "rating": "weight"}
    return cached_read([(path, 0)], fields, ReadSpec(sep="\t", quote_char=None), "s",
                       "lastfm-hetrec", cache_dir, use_cache)
