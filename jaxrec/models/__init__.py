"""Recommender models: one Flax NNX module per file.

Every model is built as ``Model(info, *, <hyperparameters>, rngs)`` and provides

* ``__call__(users, items) -> scores`` for index arrays of the same shape
  (any leading shape, e.g. ``[B]`` or ``[B, M]``);
* ``score_all(users_U) -> scores_UxN`` over the whole catalogue (full ranking);
* ``l2_rows(users, items) -> list of arrays``: the parameter rows the batch
  touches, which the per-batch L2 regulariser penalises.

Models fitted without gradients (popularity, EASE, iALS) instead define
``solve_epoch(data, key) -> objective``, which updates their variables in place
from the device-resident training arrays (``users``, ``items``, ``ratings``
``[E]`` and the CSR ``indptr``, ``indices``); they train with ``loss=none``
and one "epoch" is one solve (or one alternating sweep).

The config group ``configs/model/`` names each model by its ``_target_``: the
module path is the registry.
"""

from jaxrec.models.ease import EASE
from jaxrec.models.gmf import GMF
from jaxrec.models.ials import IALS
from jaxrec.models.lightgcn import LightGCN
from jaxrec.models.mf import MF
from jaxrec.models.mlp import NCFMLP
from jaxrec.models.neumf import NeuMF
from jaxrec.models.popularity import Popularity
from jaxrec.models.random_baseline import RandomBaseline
from jaxrec.models.seed_concat import SeedConcat

__all__ = ["MF", "Popularity", "SeedConcat"]
__all__ += ["EASE", "IALS", "RandomBaseline"]

from jaxrec.models.content import Content  # noqa: E402  (feature models: data.features)
from jaxrec.models.hybrid import Hybrid  # noqa: E402
from jaxrec.models.tfidf import TfIdf  # noqa: E402
from jaxrec.models.two_tower import TwoTower  # noqa: E402

__all__ += ["Content", "Hybrid", "TfIdf", "TwoTower"]
__all__ += ["GMF", "LightGCN", "NCFMLP", "NeuMF"]

from jaxrec.models.multvae import MultVAE  # noqa: E402  (batch kind users: loss=multinomial)
from jaxrec.models.sasrec import SASRec  # noqa: E402  (batch kind users: loss=sequence_bce)

__all__ += ["MultVAE", "SASRec"]

from jaxrec.models.svdpp import SVDpp  # noqa: E402

__all__ += ["SVDpp"]

from jaxrec.models.dcn_v2 import DCNv2  # noqa: E402
from jaxrec.models.deepfm import DeepFM  # noqa: E402

__all__ += ["DCNv2", "DeepFM"]
