"""The model functions evaluators consume, and one call that runs a list of evaluators.

An evaluator declares its ``inputs``: ``users`` (full ranking: ``score_all``),
``pairs`` (rating metrics, sampled candidates: ``__call__``) or ``history``
(fold-in: ``score_history``). The functions are pure over ``(params, rest)``
and cached per graph definition, so each evaluator compiles once per model.
"""

from __future__ import annotations

import functools
from typing import Any

from flax import nnx


@functools.lru_cache(maxsize=32)
def model_fns(graphdef):
    """``(score_fn(state, users_U), predict_fn(state, users_B, items_B))`` of a model."""

    def score_fn(state, users_U):
        return nnx.merge(graphdef, *state).score_all(users_U)

    def predict_fn(state, users_B, items_B):
        return nnx.merge(graphdef, *state)(users_B, items_B)

    return score_fn, predict_fn


@functools.lru_cache(maxsize=32)
def history_score_fn(graphdef):
    """``(state, history_UxN) -> scores_UxN`` through the model's ``score_history`` (fold-in)."""

    def score_history(state, history_UxN):
        return nnx.merge(graphdef, *state).score_history(history_UxN)

    return score_history


def scoring_fn(evaluator: Any, graphdef):
    """The model function an evaluator consumes, by its ``inputs``: users, pairs or history."""
    if evaluator.inputs == "history":
        return history_score_fn(graphdef)
    score_fn, predict_fn = model_fns(graphdef)
    return score_fn if evaluator.inputs == "users" else predict_fn


def evaluate(evaluators, graphdef, state) -> dict[str, float]:
    """Every evaluator's metrics for the model ``(graphdef, state)``, state = ``(params, rest)``."""
    out: dict[str, float] = {}
    for ev in evaluators:
        out.update(ev.run(scoring_fn(ev, graphdef), state))
    return out
