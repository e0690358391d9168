"""Evaluators: full-ranking top-k metrics and rating errors, computed on device.

`RankingEvaluator` ranks every item for every evaluated user. Users are taken
in fixed-size blocks; for each block one jitted function scores all items,
sets the user's excluded items (e.g. train, or train + valid for test) to
``-inf``, takes ``lax.top_k`` with ``K = max(ks)``, reads the relevance of the
top-K items and computes per-user metrics. All blocks go through one
``lax.map`` inside that jit, so only per-block sums (or, for `per_user`, the
per-user values) come back to the host. Peak memory is a few ``[U, N]``
arrays for a block of ``U`` users, never ``num_users x num_items``.

The exclusion and relevance pairs are prepared once on the host, as int32
keys ``row * N + item`` (``row`` = the user's position in its block) stacked
into ``[n_blocks, E_max]`` and padded with an out-of-range key that the
on-device scatter (``mode="drop"``) ignores.

Conventions:

* Relevant items of a user = its distinct target items that are not excluded
  (an excluded item can never be recommended, so it is neither counted in
  ``R`` nor ranked). Only users with at least one relevant item are evaluated;
  every reported value is a mean over those users.
* Ties: ``lax.top_k`` puts the lower item index first among equal scores, so a
  model's ties are broken in favour of lower item ids (a stable sort on
  ``-score``). Excluded items rank last; NaN scores are not supported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics.ranking import check_ranking_metrics, metric_key, ranking_metrics
from jaxrec.metrics.rating import absolute_error, squared_error

if TYPE_CHECKING:
    from jaxrec.config import EvalConfig
    from jaxrec.data.interactions import Interactions

ScoreFn = Callable[[Any, jax.Array], jax.Array]  # (params, users_U int32) -> scores_UxN
PredictFn = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, users_B, items_B) -> [B]

_INT32_MAX = np.iinfo(np.int32).max


def _balanced_blocks(n: int, cap: int) -> tuple[int, int]:
    """Fewest blocks of size <= ``cap`` covering ``n`` rows, sized evenly (least padding)."""
    n_blocks = max(1, math.ceil(n / cap))
    return n_blocks, max(1, math.ceil(n / n_blocks))


def _pair_keys(users: np.ndarray, items: np.ndarray, num_items: int) -> np.ndarray:
    return users.astype(np.int64) * num_items + items.astype(np.int64)


def _stack_block_keys(pos_E: np.ndarray, items_E: np.ndarray, n_blocks: int, block: int,
                      num_items: int) -> np.ndarray:
    """Pairs (evaluated-user position, item) -> int32 ``[n_blocks, E_max]`` block-local keys.

    The key of a pair is ``(pos % block) * num_items + item``; padding is
    ``block * num_items``, one past the last valid key.
    """
    blk_E = pos_E // block
    order = np.argsort(blk_E, kind="stable")
    blk_E = blk_E[order]
    keys_E = (pos_E[order] % block) * num_items + items_E[order]
    counts = np.bincount(blk_E, minlength=n_blocks)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((n_blocks, max(1, int(counts.max(initial=0)))), block * num_items, np.int32)
    out[blk_E, np.arange(len(blk_E)) - starts[blk_E]] = keys_E
    return out


class RankingEvaluator:
    """Full-ranking evaluation on device.

    Args:
      split: prefix of the metric keys, e.g. ``valid`` -> ``valid/ndcg@10``.
      target: held-out interactions; their items are the relevant ones.
      exclude: interaction sets whose items are removed from each user's
        ranking (train; train and valid when evaluating test).
      ks: cut-offs; ``K = max(ks)`` items are retrieved per user.
      metrics: names from `jaxrec.metrics.RANKING_METRICS`.
      user_block: most users scored at once (bounds memory to ``[U, N]``).
        Blocks are sized evenly, so the block used is ``<= user_block``.

    ``score_fn(params, users_U int32) -> scores_UxN float`` must be a pure,
    jittable function. The evaluator compiles one function per ``score_fn``
    object (pass the same object every epoch) with fixed shapes.
    """

    def __init__(self, split: str, target: Interactions, exclude: Sequence[Interactions], *,
                 ks: Sequence[int], metrics: Sequence[str], user_block: int = 256):
        ks, metrics = [int(k) if isinstance(k, np.integer) else k for k in ks], list(metrics)
        check_ranking_metrics(metrics, ks)
        if not ks or not metrics:
            raise ValueError(f"eval: ks={ks} and metrics={metrics} must both be non-empty")
        num_users, num_items = target.num_users, target.num_items
        if max(ks) > num_items:
            raise ValueError(f"eval.ks: cut-off {max(ks)} exceeds the number of items {num_items}")
        if isinstance(user_block, bool) or not isinstance(user_block, int) or user_block < 1:
            raise ValueError(f"eval.user_block: {user_block!r} must be a positive int")
        for other in exclude:
            if (other.num_users, other.num_items) != (num_users, num_items):
                raise ValueError(
                    f"{split}: exclude set {other.name!r} has {other.num_users} users x "
                    f"{other.num_items} items, target has {num_users} x {num_items}")

        self.split, self.ks, self.metrics = split, ks, metrics
        self.keys = [f"{split}/{metric_key(m, k)}" for m in metrics for k in ks]
        self.num_items = num_items

        # Relevant = distinct target pairs minus excluded pairs.
        target_keys = np.unique(_pair_keys(target.users, target.items, num_items))
        if exclude:
            excl_keys = np.unique(np.concatenate(
                [_pair_keys(e.users, e.items, num_items) for e in exclude]))
            target_keys = target_keys[~np.isin(target_keys, excl_keys, assume_unique=True)]
        else:
            excl_keys = np.zeros(0, np.int64)
        rel_users, rel_items = target_keys // num_items, target_keys % num_items
        num_rel_all = np.bincount(rel_users, minlength=num_users)
        self.users = np.flatnonzero(num_rel_all).astype(np.int32)  # evaluated users, ascending
        if len(self.users) == 0:
            raise ValueError(f"{split}: no user has a target item outside the excluded sets")

        n_eval = len(self.users)
        n_blocks, block = _balanced_blocks(n_eval, user_block)
        if (block + 1) * num_items > _INT32_MAX:
            raise ValueError(f"eval.user_block: {user_block} x {num_items} items overflows int32 "
                             "block keys; lower eval.user_block")
        self.block = block
        pos_of_user = np.full(num_users, -1, np.int64)
        pos_of_user[self.users] = np.arange(n_eval)

        users_pad = np.zeros(n_blocks * block, np.int32)
        users_pad[:n_eval] = self.users
        num_rel_pad = np.zeros(n_blocks * block, np.int32)
        num_rel_pad[:n_eval] = num_rel_all[self.users]

        excl_pos = pos_of_user[excl_keys // num_items]
        keep = excl_pos >= 0
        excl_BxE = _stack_block_keys(excl_pos[keep], (excl_keys % num_items)[keep],
                                     n_blocks, block, num_items)
        rel_BxE = _stack_block_keys(pos_of_user[rel_users], rel_items, n_blocks, block, num_items)

        self._blocks = jax.device_put({
            "users": users_pad.reshape(n_blocks, block),
            "num_relevant": num_rel_pad.reshape(n_blocks, block),
            "exclude": excl_BxE,
            "relevant": rel_BxE,
        })
        self._compiled: dict[str, tuple[ScoreFn, Callable]] = {}

    @property
    def num_users(self) -> int:
        """Number of evaluated users (those with at least one relevant item)."""
        return len(self.users)

    def _block_values(self, score_fn: ScoreFn, params: Any, blk: dict[str, jax.Array]):
        """One block -> (per-user metric values ``[M, U]``, evaluated-user mask ``[U]``)."""
        users_U = blk["users"]
        n_users, n_items = users_U.shape[0], self.num_items
        scores_UxN = score_fn(params, users_U)
        if scores_UxN.shape != (n_users, n_items):
            raise ValueError(f"{self.split}: score_fn returned shape {scores_UxN.shape}, "
                             f"expected (users, num_items) = {(n_users, n_items)}")
        scores_X = scores_UxN.astype(jnp.float32).reshape(-1)
        scores_X = scores_X.at[blk["exclude"]].set(-jnp.inf, mode="drop")
        _, top_UxK = jax.lax.top_k(scores_X.reshape(n_users, n_items), max(self.ks))
        relevant_X = jnp.zeros(n_users * n_items, jnp.bool_)
        relevant_X = relevant_X.at[blk["relevant"]].set(True, mode="drop")
        hits_UxK = jnp.take_along_axis(relevant_X.reshape(n_users, n_items), top_UxK, axis=1)
        num_rel_U = blk["num_relevant"]
        values = ranking_metrics(hits_UxK, num_rel_U, self.metrics, self.ks)
        return jnp.stack(list(values.values())), num_rel_U > 0

    def _compile(self, mode: str, score_fn: ScoreFn) -> Callable:
        cached = self._compiled.get(mode)
        if cached is not None and cached[0] is score_fn:
            return cached[1]

        if mode == "sum":
            def body(params, blk):
                values_MxU, mask_U = self._block_values(score_fn, params, blk)
                return jnp.where(mask_U, values_MxU, 0.0).sum(-1)
        else:
            def body(params, blk):
                return self._block_values(score_fn, params, blk)[0]

        fn = jax.jit(lambda params, blocks: jax.lax.map(lambda b: body(params, b), blocks))
        self._compiled[mode] = (score_fn, fn)
        return fn

    def run(self, score_fn: ScoreFn, params: Any) -> dict[str, float]:
        """Mean of each metric over the evaluated users: ``{"valid/ndcg@10": 0.31, ...}``."""
        sums_BxM = np.asarray(self._compile("sum", score_fn)(params, self._blocks), np.float64)
        means_M = sums_BxM.sum(0) / self.num_users
        return dict(zip(self.keys, means_M.tolist(), strict=True))

    def per_user(self, score_fn: ScoreFn, params: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-user values, e.g. for paired significance tests.

        Returns:
          ``(users [V] int32, {"valid/ndcg@10": float32 [V], ...})`` over the
          ``V`` evaluated users in ascending id order; each vector's mean is the
          value `run` reports.
        """
        values_BxMxU = np.asarray(self._compile("per_user", score_fn)(params, self._blocks))
        values_MxV = values_BxMxU.transpose(1, 0, 2).reshape(len(self.keys), -1)
        values_MxV = values_MxV[:, :self.num_users]
        return self.users.copy(), {key: values_MxV[i] for i, key in enumerate(self.keys)}


class RatingEvaluator:
    """RMSE and MAE of predicted ratings over all target interactions, on device.

    Args:
      split: prefix of the metric keys (``valid/rmse``, ``valid/mae``).
      target: interactions with the true ratings.
      batch: most pairs predicted at once; batches are sized evenly and the
        last one is padded and masked.

    ``predict_fn(params, users_B int32, items_B int32) -> preds_B`` must be pure
    and jittable; one function is compiled per ``predict_fn`` object.
    """

    def __init__(self, split: str, target: Interactions, *, batch: int = 65536):
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"eval.rating_batch: {batch!r} must be a positive int")
        if len(target) == 0:
            raise ValueError(f"{split}: no target interactions to compute rmse / mae on")
        self.split = split
        self.num_pairs = len(target)
        n_batches, size = _balanced_blocks(self.num_pairs, batch)
        self.batch = size

        def pad(x: np.ndarray, dtype) -> np.ndarray:
            out = np.zeros(n_batches * size, dtype)
            out[:self.num_pairs] = x
            return out.reshape(n_batches, size)

        self._batches = jax.device_put({
            "users": pad(target.users, np.int32),
            "items": pad(target.items, np.int32),
            "ratings": pad(target.ratings, np.float32),
            "mask": pad(np.ones(self.num_pairs, bool), bool),
        })
        self._compiled: tuple[PredictFn, Callable] | None = None

    def _compile(self, predict_fn: PredictFn) -> Callable:
        if self._compiled is not None and self._compiled[0] is predict_fn:
            return self._compiled[1]

        def body(params, b):
            preds_B = predict_fn(params, b["users"], b["items"])
            if preds_B.shape != b["users"].shape:
                raise ValueError(f"{self.split}: predict_fn returned shape {preds_B.shape}, "
                                 f"expected {b['users'].shape}")
            se_B = jnp.where(b["mask"], squared_error(preds_B, b["ratings"]), 0.0)
            ae_B = jnp.where(b["mask"], absolute_error(preds_B, b["ratings"]), 0.0)
            return jnp.stack([se_B.sum(), ae_B.sum()])

        fn = jax.jit(lambda params, batches: jax.lax.map(lambda b: body(params, b), batches))
        self._compiled = (predict_fn, fn)
        return fn

    def run(self, predict_fn: PredictFn, params: Any) -> dict[str, float]:
        """``{f"{split}/rmse": ..., f"{split}/mae": ...}`` over all target pairs."""
        sums = np.asarray(self._compile(predict_fn)(params, self._batches), np.float64).sum(0)
        return {f"{self.split}/rmse": float(np.sqrt(sums[0] / self.num_pairs)),
                f"{self.split}/mae": float(sums[1] / self.num_pairs)}


Evaluator = RankingEvaluator | RatingEvaluator


def make_evaluators(split: str, target: Interactions, exclude: Sequence[Interactions],
                    eval_cfg: EvalConfig, *, explicit: bool) -> list[Evaluator]:
    """The evaluators an ``eval`` config asks for on one split.

    Args:
      split: ``valid`` or ``test`` (the metric key prefix).
      target: held-out interactions of the split; empty -> no evaluators.
      exclude: sets masked out of the ranking (train; train + valid for test).
      eval_cfg: ks, metrics, user_block, rating_metrics, rating_batch.
      explicit: whether ratings are explicit (adds rmse / mae when
        ``eval_cfg.rating_metrics``).

    Returns:
      A ranking evaluator when ``eval_cfg.metrics`` and ``eval_cfg.ks`` are
      non-empty, then a rating evaluator when asked for.
    """
    if len(target) == 0:
        return []
    evaluators: list[Evaluator] = []
    if eval_cfg.metrics and eval_cfg.ks:
        evaluators.append(RankingEvaluator(split, target, exclude, ks=list(eval_cfg.ks),
                                           metrics=list(eval_cfg.metrics),
                                           user_block=eval_cfg.user_block))
    if explicit and eval_cfg.rating_metrics:
        evaluators.append(RatingEvaluator(split, target, batch=eval_cfg.rating_batch))
    return evaluators
