"""Dataset loaders; each returns :class:`~jaxrec.data.interactions.Interactions`.

Used as Hydra ``_target_`` in ``configs/data/*.yaml``; `jaxrec.data.registry` holds
the public datasets' cards.
"""

from jaxrec.data.datasets.adjacency import load_adjacency
from jaxrec.data.datasets.amazon import load_amazon
from jaxrec.data.datasets.bookcrossing import load_bookcrossing
from jaxrec.data.datasets.goodbooks import load_goodbooks
from jaxrec.data.datasets.gowalla import load_gowalla
from jaxrec.data.datasets.lastfm import load_lastfm_hetrec
from jaxrec.data.datasets.movielens import load_movielens
from jaxrec.data.datasets.ncf import load_ncf
from jaxrec.data.datasets.recbole import load_recbole
from jaxrec.data.datasets.steam import load_steam
from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.datasets.table import load_table
from jaxrec.data.datasets.yelp import load_yelp
from jaxrec.data.download import MOVIELENS_VARIANTS

__all__ = ["MOVIELENS_VARIANTS", "load_adjacency", "load_amazon", "load_bookcrossing",
           "load_goodbooks", "load_gowalla", "load_lastfm_hetrec", "load_movielens", "load_ncf",
           "load_recbole", "load_steam", "load_table", "load_yelp", "make_synthetic"]
