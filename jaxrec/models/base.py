"""Model contracts: what a model receives from the data, and what it can do.

Every model is an NNX module built as ``Model(ctx, *, <hyperparameters>, rngs)``:
``ctx`` is a :class:`ModelContext`, the one typed object through which a model
receives everything it needs from the data (sizes, the training interactions,
feature tables, a loader of other runs for pre-trained initialisation). A model
reads only the fields it needs; the run assembly fills them all.

Capabilities are runtime-checkable protocols, checked once at assembly (and by
the losses and evaluators that need them) with ``isinstance``:

=====================  ==============================================================
:class:`Scorer`        ``__call__(users, items)`` and ``score_all(users_U)``: every model
:class:`RowRegularized` ``l2_rows(users, items)``: the rows the per-batch L2 penalises
:class:`CandidateScorer` ``score_candidates(users_B, cand_C)``: one ``[B, C]`` matmul
:class:`FoldIn`        ``score_history(history_UxN)``: scores new users from a history
:class:`ClosedForm`    ``solve_epoch(data, key)``: fitted without gradients (``loss=none``)
:class:`UserLogits`    ``user_logits(users_B, key, *, train)``: whole-user training
:class:`NextItemLogits` ``next_item_logits(users_B, neg_BxLxM, key, *, train)``: sequences
:class:`NextItemStates` ``next_item_states(users_B, key, *, train)``, ``item_vectors``
:class:`MaskedItemStates` ``cloze_sequences``, ``encode``, ``item_logits``: Cloze training
:class:`HistoryInput`  ``history_tables(interactions)``: the per-user input it scores from
=====================  ==============================================================

Which cold-start slices a model can score is data on the instance
(:func:`scores_cold`), since a feature model scores cold items only when it was
given item features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax

from jaxrec.types import DataInfo


@dataclasses.dataclass(frozen=True)
class ModelContext:
    """What a model may know about the data it is built for.

    Attributes:
      info: vocabulary sizes and training-rating statistics.
      train: the training interactions (`jaxrec.data.interactions.Interactions`);
        graph, history and fold-in models build constant tables from it.
      features: item / user feature tables (`jaxrec.data.features.Features`), or
        None when ``data.features`` is not set.
      load_run: ``load_run(run_dir) -> (model, DataInfo)``: the best-checkpoint model
        of another run, for pre-trained initialisation (NeuMF); None outside a run.
    """

    info: DataInfo
    train: Any = None
    features: Any = None
    load_run: Callable[[str], tuple[Any, DataInfo]] | None = None

    @property
    def num_users(self) -> int:
        return self.info.num_users

    @property
    def num_items(self) -> int:
        return self.info.num_items


@runtime_checkable
class Scorer(Protocol):
    """Scores (user, item) pairs of any common shape, and every item for a block of users."""

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array: ...

    def score_all(self, users_U: jax.Array) -> jax.Array: ...


@runtime_checkable
class RowRegularized(Protocol):
    """Names the parameter rows a batch touches, for the per-batch L2 penalty (``loss.l2``)."""

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]: ...


@runtime_checkable
class CandidateScorer(Protocol):
    """Scores shared candidates for a batch of users in one ``[B, C]`` product."""

    def score_candidates(self, users_B: jax.Array, cand_C: jax.Array) -> jax.Array: ...


@runtime_checkable
class FoldIn(Protocol):
    """Scores users never seen in training from a 0/1 history (strong generalisation)."""

    def score_history(self, history_UxN: jax.Array) -> jax.Array: ...


@runtime_checkable
class ClosedForm(Protocol):
    """Fitted in closed form: one "epoch" is one solve (``loss=none``)."""

    def solve_epoch(self, data: Any, key: jax.Array) -> jax.Array: ...


@runtime_checkable
class UserLogits(Protocol):
    """Whole-user training (Mult-VAE/DAE): logits over all items per user."""

    def user_logits(self, users_B: jax.Array, key: jax.Array, *, train: bool = True
                    ) -> tuple[jax.Array, jax.Array, jax.Array]: ...


@runtime_checkable
class NextItemLogits(Protocol):
    """Sequence training (SASRec): next-item logits at every position."""

    max_len: int

    def next_item_logits(self, users_B: jax.Array, negatives_BxLxM: jax.Array,
                         key: jax.Array, *, train: bool = True
                         ) -> tuple[jax.Array, jax.Array, jax.Array]: ...


@runtime_checkable
class NextItemStates(Protocol):
    """Sequence training from hidden states: the losses that score many candidates per
    position (full softmax, sampled softmax, gBCE) take ``h . item_vectors(j)``."""

    max_len: int

    def next_item_states(self, users_B: jax.Array, key: jax.Array, *, train: bool = True
                         ) -> tuple[jax.Array, jax.Array, jax.Array]: ...

    def item_vectors(self, items: jax.Array | None = None) -> jax.Array: ...


@runtime_checkable
class MaskedItemStates(Protocol):
    """Cloze training (BERT4Rec): the loss masks stored sequences with ``mask_token``,
    ``encode`` reads them bidirectionally and ``item_logits`` scores every item."""

    max_len: int
    mask_token: int

    def cloze_sequences(self, users_B: jax.Array) -> jax.Array: ...

    def encode(self, seq_BxL: jax.Array, key: jax.Array | None = None) -> jax.Array: ...

    def item_logits(self, h_BxLxD: jax.Array) -> jax.Array: ...


@runtime_checkable
class HistoryInput(Protocol):
    """Reads each user's history at scoring time (SASRec's sequence, EASE's and
    Mult-VAE's 0/1 rows, SVD++'s ``N(u)``), from constant tables built from ``ctx.train``.

    ``history_tables(interactions)`` returns those tables built from other
    interactions: ``{attribute name: array}``, each the value of the model variable of
    that name (same type, same dtype; the shape may differ only in a length that the
    scoring code does not fix). The evaluators score the test part from the tables of
    train + valid when the protocol says so (`jaxrec.metrics.inputs`).
    """

    def history_tables(self, interactions: Any) -> dict[str, Any]: ...


def scores_cold(model: Any, side: str) -> bool:
    """Whether ``model`` can score cold ``side`` (``items`` or ``users``) from features.

    A model states it with ``scores_cold_items`` / ``scores_cold_users`` (class or
    instance attributes); models without them cannot (ID embeddings only).
    """
    if side not in ("items", "users"):
        raise ValueError(f"side must be items or users, got {side!r}")
    return bool(getattr(model, f"scores_cold_{side}", False))


def check_scorer(model: Any) -> None:
    """One-line ``ValueError`` unless ``model`` implements :class:`Scorer`."""
    if not isinstance(model, Scorer):
        raise ValueError(f"model: {type(model).__name__} must define __call__(users, items) "
                         "and score_all(users_U) (jaxrec.models.base.Scorer)")
