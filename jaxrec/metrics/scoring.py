"""The model functions evaluators consume, and one call that runs a list of evaluators.

An evaluator declares its ``inputs``: ``users`` (full ranking: ``score_all``),
``pairs`` (rating metrics, sampled candidates: ``__call__``), ``history``
(fold-in: ``score_history``) or ``stream`` (`jaxrec.metrics.streaming`). The
functions are pure over ``(params, rest)``
and cached per graph definition, so each evaluator compiles once per model.
An evaluator's ``input_tables`` (the test part of a time-ordered split:
`jaxrec.metrics.inputs`) replace the model's per-user input tables in the state it
scores (`scoring_state`).
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
    if evaluator.inputs == "stream":  # jaxrec.metrics.streaming: the mode the model resolved
        from jaxrec.metrics.streaming import stream_score_fn

        return stream_score_fn(graphdef, evaluator.mode, evaluator.sgd_steps, evaluator.sgd_lr)
    score_fn, predict_fn = model_fns(graphdef)
    return score_fn if evaluator.inputs == "users" else predict_fn


def scoring_state(evaluator: Any, graphdef, state):
    """``state`` with the model variables named in ``evaluator.input_tables`` set to those
    tables (same variable type; `jaxrec.models.base.HistoryInput`; a dotted name is a
    path of submodules: ``fields.context.request_UxC``), or ``state`` itself.

    The variables are replaced, not written into, so ``state`` is left as it was.
    """
    tables = getattr(evaluator, "input_tables", None)
    if not tables:
        return state
    model = nnx.merge(graphdef, *state)
    for path, value in tables.items():
        *parents, name = path.split(".")
        owner = model
        for part in parents:
            owner = getattr(owner, part)
        setattr(owner, name, type(getattr(owner, name))(value))
    _, params, rest = nnx.split(model, nnx.Param, ...)
    return params, rest


def evaluate(evaluators, graphdef, state, per_user: list | None = None) -> dict[str, float]:
    """Every evaluator's metrics for the model ``(graphdef, state)``, state = ``(params, rest)``.

    ``per_user``: a list that receives ``(users, {key: values})`` of each evaluator that has
    per-user values, computed in the same pass (`jaxrec.metrics.per_user.write_per_user`).
    """
    out: dict[str, float] = {}
    for ev in evaluators:
        fn, ev_state = scoring_fn(ev, graphdef), scoring_state(ev, graphdef, state)
        if per_user is not None and hasattr(ev, "evaluate"):
            metrics, vectors = ev.evaluate(fn, ev_state)
            per_user.append(vectors)
        else:
            metrics = ev.run(fn, ev_state)
        out.update(metrics)
    return out
