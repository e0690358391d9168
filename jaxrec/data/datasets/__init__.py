"""Dataset loaders; each returns :class:`~jaxrec.data.interactions.Interactions`.

Used as Hydra ``_target_`` in ``configs/data/*.yaml``.
"""

from jaxrec.data.datasets.movielens import load_movielens
from jaxrec.data.datasets.ncf import load_ncf
from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.download import MOVIELENS_VARIANTS

__all__ = ["MOVIELENS_VARIANTS", "load_movielens", "load_ncf", "make_synthetic"]
