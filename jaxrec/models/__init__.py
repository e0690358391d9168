"""Recommender models: one Flax NNX module per file, shared layers in `jaxrec.models.layers`.

The contract (`jaxrec.models.base`): every model is built as
``Model(ctx, *, <hyperparameters>, rngs)``, where ``ctx`` is a :class:`ModelContext`
carrying everything the model may take from the data: ``info`` (vocabulary sizes,
rating statistics), ``train`` (the training interactions: graph, history and fold-in
models build constant tables from them), ``features`` (``data.features``, or None)
and ``load_run`` (another run's best model, for pre-trained initialisation). A model
reads the fields it needs; the run assembly fills them all. Hyperparameter defaults
equal the values of ``configs/model/<name>.yaml`` (the yaml is their home).

What a model can do is stated by runtime-checkable protocols, checked with
``isinstance``:

* :class:`Scorer` (every model): ``__call__(users, items) -> scores`` for index arrays
  of broadcastable shapes, and ``score_all(users_U) -> scores_UxN`` (full ranking);
* :class:`RowRegularized`: ``l2_rows(users, items)``, the parameter rows a batch
  touches, which the per-batch L2 penalty (``loss.l2``) covers;
* :class:`CandidateScorer`: ``score_candidates(users_B, cand_C) -> [B, C]`` in one
  product (sampled softmax);
* :class:`FoldIn`: ``score_history(history_UxN)`` scores users never seen in training
  (``eval.protocol=strong``);
* :class:`ClosedForm`: ``solve_epoch(data, key) -> objective`` updates the variables in
  place from the device-resident training arrays; trained with ``loss=none``, one
  "epoch" is one solve (or one alternating sweep);
* :class:`UserLogits` / :class:`NextItemLogits` / :class:`NextItemStates` /
  :class:`MaskedItemStates`: whole-user training (Mult-VAE/DAE with ``loss=multinomial``,
  SASRec with ``loss=sequence_bce``, GRU4Rec with ``loss=bpr_max``, BERT4Rec with
  ``loss=masked_item_ce``);
* :class:`HistoryInput`: ``history_tables(interactions)`` rebuilds the per-user input a
  model scores from (the test part is scored from train + valid on a time-ordered
  split: `jaxrec.metrics.inputs`).

Which cold-start slices a model scores is data on the instance (:func:`scores_cold`).
The config group ``configs/model/`` names each model by its ``_target_``: the module
path is the registry.
"""

from jaxrec.models.base import (
    CandidateScorer,
    ClosedForm,
    FoldIn,
    HistoryInput,
    MaskedItemStates,
    ModelContext,
    NextItemLogits,
    NextItemStates,
    RowRegularized,
    Scorer,
    UserLogits,
    scores_cold,
)
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

__all__ = ["CandidateScorer", "ClosedForm", "FoldIn", "HistoryInput", "MaskedItemStates",
           "ModelContext",
           "NextItemLogits", "NextItemStates",
           "RowRegularized", "Scorer", "UserLogits", "scores_cold"]
__all__ += ["MF", "Popularity", "SeedConcat"]
__all__ += ["EASE", "IALS", "RandomBaseline"]

from jaxrec.models.content import Content  # noqa: E402  (feature models: data.features)
from jaxrec.models.hybrid import Hybrid  # noqa: E402
from jaxrec.models.tfidf import TfIdf  # noqa: E402
from jaxrec.models.two_tower import TwoTower  # noqa: E402

__all__ += ["Content", "Hybrid", "TfIdf", "TwoTower"]
__all__ += ["GMF", "LightGCN", "NCFMLP", "NeuMF"]

from jaxrec.models.hstu import HSTU  # noqa: E402  (SASRec's interface, with time tables)
from jaxrec.models.multvae import MultVAE  # noqa: E402  (batch kind users: loss=multinomial)
from jaxrec.models.sasrec import SASRec  # noqa: E402  (batch kind users: loss=sequence_bce)

__all__ += ["HSTU", "MultVAE", "SASRec"]

from jaxrec.models.bert4rec import BERT4Rec  # noqa: E402  (loss=masked_item_ce)
from jaxrec.models.gru4rec import GRU4Rec  # noqa: E402  (loss=bpr_max, top1_max, minibatch_ce)

__all__ += ["BERT4Rec", "GRU4Rec"]

from jaxrec.models.svdpp import SVDpp  # noqa: E402

__all__ += ["SVDpp"]

from jaxrec.models.dcn_v2 import DCNv2  # noqa: E402
from jaxrec.models.deepfm import DeepFM  # noqa: E402

__all__ += ["DCNv2", "DeepFM"]
