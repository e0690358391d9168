"""Evaluation slices: metrics for cold / warm items and users and for user-activity buckets.

A slice evaluator is a full-ranking evaluator over a subset of the target
rows, reporting under ``<split>/<slice>/<metric>@k`` (``test/cold_item/ndcg@10``):

``cold_item``
    targets on items with no training interaction, ranked among the cold items
    only (the item cold-start protocol: a new item competes with new items).
``warm_item``
    targets on items with training interactions, ranked among the warm items.
``cold_user`` / ``warm_user``
    targets of users without / with training interactions, ranked among all items.
``activity``
    users bucketed by their number of training interactions
    (``activity_0-19``, ``activity_20-99``, ``activity_100+`` for the default
    edges ``(20, 100)``), ranked among all items.

On a ``cold_item`` (``cold_user``) split the ``cold_item`` (``cold_user``)
slice is always added. A model that cannot score cold items (``cold_item``
slice) or cold users (``cold_user``) -- one whose class does not set
``scores_cold_items = True`` / ``scores_cold_users = True``, such as MF with
its per-item embeddings -- gets NaN for every key of that slice and a note in
``results.json`` saying why, instead of numbers from untrained embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics.evaluator import RankingEvaluator, list_metric_inputs
from jaxrec.models.base import scores_cold

SLICES = ("cold_item", "warm_item", "cold_user", "warm_user", "activity")
ACTIVITY_EDGES = (20, 100)


class SliceEvaluator(RankingEvaluator):
    """A :class:`RankingEvaluator` whose ranking is restricted to candidate items.

    Args:
      split: key prefix, e.g. ``test/cold_item``.
      target, exclude, **kwargs: as for :class:`RankingEvaluator`.
      candidates_N: bool ``[N]``, the items that may be recommended (None: all).
        Non-candidates score ``-inf`` (never recommended, never counted).
    """

    def __init__(self, split: str, target, exclude, *, candidates_N: np.ndarray | None = None,
                 **kwargs):
        super().__init__(split, target, exclude, **kwargs)
        self.candidates_N = None if candidates_N is None else jax.device_put(
            np.asarray(candidates_N, bool))

    def _block_lists(self, score_fn, params, blk):
        if self.candidates_N is None:
            return super()._block_lists(score_fn, params, blk)
        cand_N = self.candidates_N

        def masked(p, users_U):
            scores_UxN = score_fn(p, users_U)
            return jnp.where(cand_N[None, :], scores_UxN.astype(jnp.float32), -jnp.inf)

        return super()._block_lists(masked, params, blk)


class UnableEvaluator:
    """Reports NaN for every key of a slice the model cannot score, with the reason."""

    inputs = "users"

    def __init__(self, keys: Sequence[str], note: str):
        self.keys, self.note = list(keys), note

    def run(self, score_fn, params) -> dict[str, float]:
        del score_fn, params
        return {k: float("nan") for k in self.keys}


def _metric_keys(prefix: str, eval_cfg) -> list[str]:
    return [f"{prefix}/{m}@{k}" for m in eval_cfg.metrics for k in eval_cfg.ks]


def slice_rows(name: str, target, train, *, activity_edges: Sequence[int] = ACTIVITY_EDGES
               ) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``[(slice_name, row_mask [E_target], candidates_N or None), ...]`` of one slice."""
    item_warm = np.bincount(train.items, minlength=target.num_items) > 0
    user_count = np.bincount(train.users, minlength=target.num_users)
    if name == "cold_item":
        return [(name, ~item_warm[target.items], ~item_warm)]
    if name == "warm_item":
        return [(name, item_warm[target.items], item_warm)]
    if name in ("cold_user", "warm_user"):
        warm = user_count[target.users] > 0
        return [(name, ~warm if name == "cold_user" else warm, None)]
    if name == "activity":
        edges = [0, *activity_edges, np.inf]
        out = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            label = f"activity_{lo}+" if hi == np.inf else f"activity_{lo}-{int(hi) - 1}"
            counts = user_count[target.users]
            out.append((label, (counts >= lo) & (counts < hi), None))
        return out
    raise ValueError(f"eval.slices: {name!r} is not one of {', '.join(SLICES)}")


def requested_slices(eval_cfg, split_cfg) -> list[str]:
    """``eval.slices`` plus the cold slice a cold split implies."""
    names = list(getattr(eval_cfg, "slices", None) or [])
    method = getattr(split_cfg, "method", None)
    if method in ("cold_item", "cold_user") and method not in names:
        names.insert(0, method)
    for n in names:
        if n not in SLICES:
            raise ValueError(f"eval.slices: {n!r} is not one of {', '.join(SLICES)}")
    return names


def unable_reason(model: Any, slice_name: str) -> str | None:
    """Why ``model`` cannot be evaluated on a cold slice, or None when it can."""
    if model is None:
        return None
    kind = {"cold_item": "items", "cold_user": "users"}.get(slice_name)
    if kind is None or scores_cold(model, kind):
        return None
    return (f"{type(model).__name__} cannot score cold {kind} (it needs a trained ID "
            f"embedding for each of them); its {slice_name} metrics are NaN. Use a feature "
            "model (content, hybrid, two_tower, deepfm, dcn_v2, tfidf) with data.features")


def _sliced(dataset, eval_cfg) -> list[str]:
    """The slices a run evaluates (only ``full_ranking`` with ranking metrics is sliced)."""
    names = requested_slices(eval_cfg, dataset.split)
    if not names or eval_cfg.protocol != "full_ranking" or not (eval_cfg.metrics
                                                                  and eval_cfg.ks):
        return []
    return names


def slice_notes(dataset, eval_cfg, *, model: Any = None) -> list[str]:
    """Why ``model`` gets NaN on some of the run's slices (the notes of `slice_evaluators`)."""
    return [r for r in (unable_reason(model, n) for n in _sliced(dataset, eval_cfg))
            if r is not None]


def slice_evaluators(dataset, eval_cfg, *, model: Any = None) -> tuple[list, list, list[str]]:
    """``(valid_extra, test_extra, notes)``: the slice evaluators of a run.

    Only ``full_ranking`` is sliced (over ``dataset.eval_parts()``); slices
    without target rows are skipped.
    """
    names = _sliced(dataset, eval_cfg)
    if not names:
        return [], [], []
    train, parts = dataset.train, dataset.eval_parts(eval_cfg.mask)
    out: dict[str, list] = {"valid": [], "test": []}
    notes: list[str] = []
    for name in names:
        reason = unable_reason(model, name)
        if reason is not None:
            notes.append(reason)
        for split, target, exclude in parts:
            for label, rows, cand in slice_rows(name, target, train):
                prefix = f"{split}/{label}"
                if reason is not None:
                    out[split].append(UnableEvaluator(_metric_keys(prefix, eval_cfg), reason))
                    continue
                sub = target.select(rows)
                if len(sub) == 0:
                    continue
                try:
                    ev = SliceEvaluator(prefix, sub, list(exclude), candidates_N=cand,
                                        ks=list(eval_cfg.ks), metrics=list(eval_cfg.metrics),
                                        user_block=eval_cfg.user_block,
                                        **list_metric_inputs(train, sub, eval_cfg))
                except ValueError as err:
                    if "no user has a target item" in str(err):
                        continue
                    raise
                out[split].append(ev)
    return out["valid"], out["test"], notes


def add_slices(evaluators: tuple[list, list], dataset, eval_cfg, *, model: Any = None,
               monitor: str | None = None) -> tuple[tuple[list, list], list[str]]:
    """The run's ``(valid, test)`` evaluators with the slice evaluators appended, and notes.

    Raises:
      ValueError: ``monitor`` is a slice key the model cannot compute.
    """
    valid_x, test_x, notes = slice_evaluators(dataset, eval_cfg, model=model)
    if monitor is not None:
        for ev in valid_x:
            if isinstance(ev, UnableEvaluator) and monitor in ev.keys:
                raise ValueError(f"trainer.monitor={monitor}: {ev.note.split(';')[0]}; "
                                 "monitor valid/ndcg@10 instead")
    valid, test = evaluators
    return (list(valid) + valid_x, list(test) + test_x), notes
