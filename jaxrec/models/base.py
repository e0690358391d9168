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
:class:`SequenceScorer` ``score_sequence(seq_BxL)``: next-item scores from any item sequence
:class:`UserFactors`   ``user_factors(users_B)``, ``score_factors(p_BxD, users_B)``: scores of
                       any user vector (gradient fold-in)
:class:`ContextInput`  ``context_fields``, ``context_ids(interactions)``,
                       ``request_tables(known, heldout)``: per-interaction context
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
import numpy as np
from flax import nnx

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


@runtime_checkable
class SequenceScorer(Protocol):
    """Scores the next item after any given item sequence, with no per-user parameters:
    what streaming evaluation (`jaxrec.metrics.streaming`) and live sessions
    (``recommend(history=...)``) need from a next-item model (SASRec, BERT4Rec, GRU4Rec, ...).

    ``seq_BxL`` is int32, time-ordered and left-padded with ``N`` (the number of items);
    ``L <= max_len`` (longer histories keep their last ``max_len`` items). Returns float
    ``[B, N]``, the score of every item as the one after the sequence. Must be pure and
    jittable, and a prediction must depend on the given items only.
    """

    max_len: int

    def score_sequence(self, seq_BxL: jax.Array) -> jax.Array: ...


@runtime_checkable
class UserFactors(Protocol):
    """Scores every item from a user vector: what a gradient fold-in (streaming
    ``eval.fold_in=sgd``, `jaxrec.metrics.streaming`) updates for MF-style models.

    ``score_factors(user_factors(users_B), users_B)`` must equal ``score_all(users_B)``;
    ``score_factors`` must be differentiable in ``p_BxD``.
    """

    def user_factors(self, users_B: jax.Array) -> jax.Array: ...

    def score_factors(self, p_BxD: jax.Array, users_B: jax.Array) -> jax.Array: ...


@runtime_checkable
class ContextInput(Protocol):
    """Scores a (user, item) pair in the context of the request (``model.context``:
    hour, weekday, gap, extra interaction columns; `jaxrec.models.layers.context`).

    ``context_ids(interactions)`` gives int32 ``[E, C]`` ids per row: the training rows'
    reach the model as ``batch["context"]`` (`row_inputs`), and the losses pass them as
    ``model(users, items, context=ids)`` (``score_candidates`` likewise).
    ``score_all(users_U)`` and ``__call__`` without ``context`` read the per-user
    request table, which each split's evaluators replace with
    ``request_tables(known, heldout)`` (`jaxrec.metrics.inputs`). A model with no
    context fields (``context_fields == ()``) is scored as any other.
    """

    context_fields: tuple[str, ...]

    def context_ids(self, interactions: Any) -> np.ndarray: ...

    def request_tables(self, known: Any, heldout: Any) -> dict[str, Any]: ...


def uses_context(model: Any) -> bool:
    """Whether ``model`` reads per-interaction context (a :class:`ContextInput` with fields)."""
    return isinstance(model, ContextInput) and bool(model.context_fields)


def row_inputs(model: Any, train: Any) -> dict[str, np.ndarray]:
    """The per-training-row arrays ``model`` reads from its batch beyond users, items and
    ratings: ``{"context": [E, C]}`` for a :class:`ContextInput` with fields, else ``{}``."""
    return {"context": model.context_ids(train)} if uses_context(model) else {}


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


def build_model(factory: Callable, info: DataInfo, seed: int, **ctx: Any) -> Any:
    """``factory(ModelContext(info, **ctx), rngs=nnx.Rngs(params=seed, default=seed))``: the
    model of a ``_partial_`` model config, through `jitted_init` when its class allows."""
    cls = getattr(factory, "func", None)
    if getattr(cls, "init_from_info", False):  # one compiled init, shared by every seed
        return jitted_init(cls, factory.keywords, info, seed)
    return factory(ModelContext(info=info, **ctx), rngs=nnx.Rngs(params=seed, default=seed))


_INIT_FNS: dict = {}


def jitted_init(cls, keywords: dict, info: DataInfo, seed: int):
    """``cls(ModelContext(info), **keywords, rngs=nnx.Rngs(seed))`` as one jitted program.

    For a model class whose constructor reads only ``ctx.info`` and its hyperparameters
    (``init_from_info = True``): its parameters are drawn by one program instead of one
    eager op per array, and later members and trials with the same class,
    hyperparameters and data sizes reuse it (the same values up to float rounding).
    """
    key = (cls, repr(sorted(keywords.items())), info)
    if key not in _INIT_FNS:
        ctx = ModelContext(info=info)
        if len(_INIT_FNS) > 32:
            _INIT_FNS.clear()

        def init(seed):  # the keys nnx.Rngs(params=seed, default=seed) makes from an int
            rngs = nnx.Rngs(params=jax.random.key(seed), default=jax.random.key(seed))
            return cls(ctx, **keywords, rngs=rngs)

        _INIT_FNS[key] = nnx.jit(init)
    return _INIT_FNS[key](np.uint32(seed))
