"""Evaluators: top-k metrics of per-user rankings and rating errors, computed on device.

`RankingEvaluator` ranks every item for every evaluated user (full ranking).
Users are taken in fixed-size blocks; for each block one jitted function
scores all items, sets the user's excluded items (e.g. train, or train +
valid for test) to ``-inf``, takes ``lax.top_k`` with ``K = max(ks)``, reads
the relevance of the top-K items and computes per-user metrics. All blocks go
through one ``lax.scan`` inside that jit, so only the per-user values ``[M, U]``
come back to the host (the metrics are their means, and `per_user` returns them
from the same pass), plus one ``[N]`` exposure count per cut-off when coverage or
Gini is asked for. `share_layout` pads the valid and test evaluators to the same
block shapes, so both splits run one executable. Peak memory is
a few ``[U, N]`` arrays for a block of ``U`` users, never ``num_users x
num_items``. The sampled protocol (`jaxrec.metrics.sampled`) shares the
block machinery (`ListEvaluator`) and ranks fixed candidates instead.

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
  ``-score``). Excluded items rank last and are not counted as recommended by
  the beyond-accuracy metrics; NaN scores are not supported.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics.catalog import MetricSet
from jaxrec.metrics.item_shards import can_shard_items, sharded_top_k
from jaxrec.metrics.lists import ListEvaluator
from jaxrec.metrics.rating_evaluator import RatingEvaluator

if TYPE_CHECKING:
    from jaxrec.config import EvalConfig
    from jaxrec.data.interactions import Interactions

ScoreFn = Callable[[Any, jax.Array], jax.Array]  # (params, users_U int32) -> scores_UxN

_INT32_MAX = np.iinfo(np.int32).max


def _balanced_blocks(n: int, cap: int) -> tuple[int, int]:
    """Fewest blocks of size <= ``cap`` covering ``n`` rows, sized evenly (least padding)."""
    n_blocks = max(1, math.ceil(n / cap))
    return n_blocks, max(1, math.ceil(n / n_blocks))


def _pair_keys(users: np.ndarray, items: np.ndarray, num_items: int) -> np.ndarray:
    return users.astype(np.int64) * num_items + items.astype(np.int64)


def relevant_pairs(target: Interactions, exclude: Sequence[Interactions]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(relevant, excluded)``: sorted distinct int64 keys ``user * N + item``.

    Relevant = the distinct target pairs that are in no exclude set.
    """
    num_items = target.num_items
    target_keys = np.unique(_pair_keys(target.users, target.items, num_items))
    if not exclude:
        return target_keys, np.zeros(0, np.int64)
    excl_keys = np.unique(np.concatenate(
        [_pair_keys(e.users, e.items, num_items) for e in exclude]))
    return target_keys[~np.isin(target_keys, excl_keys, assume_unique=True)], excl_keys


def _block_width(pos_E: np.ndarray, n_blocks: int, block: int) -> int:
    """The most pairs any block holds (the width `_stack_block_keys` pads to)."""
    return max(1, int(np.bincount(pos_E // block, minlength=n_blocks).max(initial=0)))


def _stack_block_keys(pos_E: np.ndarray, items_E: np.ndarray, n_blocks: int, block: int,
                      num_items: int, width: int = 1) -> np.ndarray:
    """Pairs (evaluated-user position, item) -> int32 ``[n_blocks, E_max]`` block-local keys.

    The key of a pair is ``(pos % block) * num_items + item``; padding is
    ``block * num_items``, one past the last valid key. Rows are at least ``width`` wide.
    """
    blk_E = pos_E // block
    order = np.argsort(blk_E, kind="stable")
    blk_E = blk_E[order]
    keys_E = (pos_E[order] % block) * num_items + items_E[order]
    counts = np.bincount(blk_E, minlength=n_blocks)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((n_blocks, max(width, int(counts.max(initial=0)))), block * num_items,
                  np.int32)
    out[blk_E, np.arange(len(blk_E)) - starts[blk_E]] = keys_E
    return out


class RankingEvaluator(ListEvaluator):
    """Full-ranking evaluation on device.

    Args:
      split: prefix of the metric keys, e.g. ``valid`` -> ``valid/ndcg@10``.
      target: held-out interactions; their items are the relevant ones.
      exclude: interaction sets whose items are removed from each user's
        ranking (train; train and valid when evaluating test).
      ks: cut-offs; ``K = max(ks)`` items are retrieved per user.
      metrics: names from `jaxrec.metrics.catalog.ALL_METRICS` (accuracy and
        beyond-accuracy).
      user_block: most users scored at once (bounds memory to ``[U, N]``).
        Blocks are sized evenly, so the block used is ``<= user_block``.
      train: training interactions, the item popularity source of
        ``avg_popularity`` and ``novelty``.
      item_features: float ``[N, G]`` item vectors for ``ild``.
      fold_in: strong generalisation: each evaluated user's fold-in history.
        The scoring function then takes ``(params, history_UxN float32)`` (the
        block's users' fold-in items as a 0/1 matrix) instead of user indices,
        and the fold-in items are excluded from the ranking.

    ``score_fn(params, users_U int32) -> scores_UxN float`` (or
    ``(params, history_UxN)`` with ``fold_in``) must be a pure, jittable
    function. The evaluator compiles one function per ``score_fn`` object
    (pass the same object every epoch) with fixed shapes.
    """

    def __init__(self, split: str, target: Interactions, exclude: Sequence[Interactions], *,
                 ks: Sequence[int], metrics: Sequence[str], user_block: int = 256,
                 train: Interactions | None = None, item_features: np.ndarray | None = None,
                 fold_in: Interactions | None = None):
        num_users, num_items = target.num_users, target.num_items
        self.metric_set = MetricSet(split, metrics, ks, num_items=num_items, train=train,
                                    item_features=item_features)
        ks, metrics = self.metric_set.ks, self.metric_set.metrics
        if max(ks) > num_items:
            raise ValueError(f"eval.ks: cut-off {max(ks)} exceeds the number of items {num_items}")
        if isinstance(user_block, bool) or not isinstance(user_block, int) or user_block < 1:
            raise ValueError(f"eval.user_block: {user_block!r} must be a positive int")
        exclude = list(exclude) + ([fold_in] if fold_in is not None else [])
        for other in exclude:
            if (other.num_users, other.num_items) != (num_users, num_items):
                raise ValueError(
                    f"{split}: exclude set {other.name!r} has {other.num_users} users x "
                    f"{other.num_items} items, target has {num_users} x {num_items}")

        self.split, self.ks, self.metrics = split, ks, metrics
        self.num_items = num_items
        self.item_mesh = None  # a (data, model) mesh splitting the items (`shard_items`)
        self.inputs = "users" if fold_in is None else "history"

        target_keys, excl_keys = relevant_pairs(target, exclude)
        rel_users, rel_items = target_keys // num_items, target_keys % num_items
        num_rel_all = np.bincount(rel_users, minlength=num_users)
        self.users = np.flatnonzero(num_rel_all).astype(np.int32)  # evaluated users, ascending
        if len(self.users) == 0:
            raise ValueError(f"{split}: no user has a target item outside the excluded sets")

        self.user_block = user_block
        pos_of_user = np.full(num_users, -1, np.int64)
        pos_of_user[self.users] = np.arange(len(self.users))

        def pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pos = pos_of_user[keys // num_items]
            keep = pos >= 0
            return pos[keep], (keys % num_items)[keep]

        # (evaluated-user position, item) pairs, kept until the blocks are final (`layout`)
        self._pairs = {"exclude": pairs(excl_keys),
                       "relevant": (pos_of_user[rel_users], rel_items)}
        if fold_in is not None:
            self._pairs["history"] = pairs(np.unique(_pair_keys(fold_in.users, fold_in.items,
                                                                num_items)))
        self._num_rel = num_rel_all[self.users]
        self._compiled: dict[str, tuple[Callable, Callable]] = {}
        self.layout(len(self.users))

    def layout(self, slots: int, widths: dict[str, int] | None = None) -> None:
        """Lay the evaluated users out in even blocks of <= ``eval.user_block`` covering
        ``slots >= num_users`` (padding users have no relevant item), each pair array at
        least ``widths[name]`` wide: evaluators laid out alike run one executable
        (`share_layout`)."""
        if self._pairs is None:
            raise RuntimeError(f"{self.split}: layout() after the first evaluation")
        n_blocks, block = _balanced_blocks(max(slots, len(self.users)), self.user_block)
        if (block + 1) * self.num_items > _INT32_MAX:
            raise ValueError(f"eval.user_block: {self.user_block} x {self.num_items} items "
                             "overflows int32 block keys; lower eval.user_block")
        self.block, n_eval = block, len(self.users)
        users_pad = np.zeros(n_blocks * block, np.int32)
        users_pad[:n_eval] = self.users
        num_rel_pad = np.zeros(n_blocks * block, np.int32)
        num_rel_pad[:n_eval] = self._num_rel
        blocks = {"users": users_pad.reshape(n_blocks, block),
                  "num_relevant": num_rel_pad.reshape(n_blocks, block)}
        for name, (pos, items) in self._pairs.items():
            blocks[name] = _stack_block_keys(pos, items, n_blocks, block, self.num_items,
                                             (widths or {}).get(name, 1))
        self._blocks = jax.device_put(blocks)
        self._compiled.clear()

    def widths(self, slots: int) -> dict[str, int]:
        """Each pair array's width under ``layout(slots)``."""
        n_blocks, block = _balanced_blocks(max(slots, len(self.users)), self.user_block)
        return {name: _block_width(pos, n_blocks, block) for name, (pos, _) in self._pairs.items()}

    def _program_key(self) -> tuple | None:
        if type(self) is not RankingEvaluator:  # subclasses read more of self
            return None
        return ("ranking", self.num_items, self.inputs, tuple(self.ks),
                tuple(self.metric_set.metrics), self.item_mesh)

    def _static(self) -> Any:
        return types.SimpleNamespace(split=self.split, num_items=self.num_items,
                                     inputs=self.inputs, ks=self.ks, item_mesh=self.item_mesh)

    def shard_items(self, mesh) -> bool:
        """Score each block's items split over ``mesh``'s ``model`` axis and merge the tiles'
        top-k on device (`jaxrec.metrics.item_shards`); False (nothing changed) when the
        ``data`` axis does not divide the block, or the model scores fold-in histories."""
        if self.inputs != "users" or not can_shard_items(mesh, self.block):
            return False
        self.item_mesh = mesh
        self._compiled.clear()
        return True

    def evaluate(self, score_fn, params):
        self._pairs = None  # the blocks are final: free the host copy of the pairs
        return super().evaluate(score_fn, params)

    def _block_lists(self, score_fn, params, blk):
        users_U = blk["users"]
        n_users, n_items = users_U.shape[0], self.num_items
        if self.inputs == "history":
            history_X = jnp.zeros(n_users * n_items, jnp.float32)
            history_X = history_X.at[blk["history"]].set(1.0, mode="drop")
            scores_UxN = score_fn(params, history_X.reshape(n_users, n_items))
        else:
            scores_UxN = score_fn(params, users_U)
        if scores_UxN.shape != (n_users, n_items):
            raise ValueError(f"{self.split}: score_fn returned shape {scores_UxN.shape}, "
                             f"expected (users, num_items) = {(n_users, n_items)}")
        if self.item_mesh is not None:  # no device holds the whole [U, N] block
            top_scores_UxK, top_UxK, hits_UxK = sharded_top_k(
                scores_UxN, blk["exclude"], blk["relevant"], k=max(self.ks), mesh=self.item_mesh)
            return hits_UxK, blk["num_relevant"], top_UxK, top_scores_UxK > -jnp.inf
        scores_X = scores_UxN.astype(jnp.float32).reshape(-1)
        scores_X = scores_X.at[blk["exclude"]].set(-jnp.inf, mode="drop")
        top_scores_UxK, top_UxK = jax.lax.top_k(scores_X.reshape(n_users, n_items),
                                                max(self.ks))
        relevant_X = jnp.zeros(n_users * n_items, jnp.bool_)
        relevant_X = relevant_X.at[blk["relevant"]].set(True, mode="drop")
        hits_UxK = jnp.take_along_axis(relevant_X.reshape(n_users, n_items), top_UxK, axis=1)
        return hits_UxK, blk["num_relevant"], top_UxK, top_scores_UxK > -jnp.inf


Evaluator = ListEvaluator | RatingEvaluator


def list_metric_inputs(train: Interactions | None, target: Interactions, eval_cfg: EvalConfig
                       ) -> dict[str, Any]:
    """The ``train`` / ``item_features`` keywords a `ListEvaluator` needs for ``eval_cfg.metrics``.

    Item features come from ``target.item_features[eval_cfg.diversity_feature]``,
    and only when ``ild`` is asked for; a missing feature is a one-line error.
    """
    features = None
    if "ild" in eval_cfg.metrics:
        name = eval_cfg.diversity_feature
        features = target.item_features.get(name)
        if features is None or np.ndim(features) != 2:
            raise ValueError(f"eval.diversity_feature: {target.name or 'the data'} has no "
                             f"[items, G] item feature {name!r} for ild (has: "
                             f"{', '.join(sorted(target.item_features)) or 'none'})")
    return {"train": train, "item_features": features}


def make_evaluators(split: str, target: Interactions, exclude: Sequence[Interactions],
                    eval_cfg: EvalConfig, *, explicit: bool) -> list[Evaluator]:
    """The full-ranking evaluators an ``eval`` config asks for on one split.

    Args:
      split: ``valid`` or ``test`` (the metric key prefix).
      target: held-out interactions of the split; empty -> no evaluators.
      exclude: sets masked out of the ranking (train; train + valid for test).
        The first one is the training set: the item popularity source of
        ``avg_popularity`` and ``novelty``.
      eval_cfg: ks, metrics, user_block, rating_metrics, rating_batch,
        diversity_feature. ``eval_cfg.protocol`` must be ``full_ranking``; the
        sampled and strong protocols need the whole dataset and the seed:
        `jaxrec.metrics.protocols.build_evaluators`.
      explicit: whether ratings are explicit (adds rmse / mae when
        ``eval_cfg.rating_metrics``).

    Returns:
      A ranking evaluator when ``eval_cfg.metrics`` and ``eval_cfg.ks`` are
      non-empty, then a rating evaluator when asked for.
    """
    if eval_cfg.protocol != "full_ranking":
        raise ValueError(f"eval.protocol={eval_cfg.protocol}: build these evaluators with "
                         "jaxrec.metrics.protocols.build_evaluators (make_evaluators is "
                         "full ranking only)")
    if len(target) == 0:
        return []
    evaluators: list[Evaluator] = []
    if eval_cfg.metrics and eval_cfg.ks:
        extra = list_metric_inputs(exclude[0] if exclude else None, target, eval_cfg)
        evaluators.append(RankingEvaluator(split, target, exclude, ks=list(eval_cfg.ks),
                                           metrics=list(eval_cfg.metrics),
                                           user_block=eval_cfg.user_block, **extra))
    if explicit and eval_cfg.rating_metrics:
        evaluators.append(RatingEvaluator(split, target, batch=eval_cfg.rating_batch))
    return evaluators


def share_layout(evaluators: Sequence[Any]) -> None:
    """Lay out evaluators of the same kind alike (valid and test, padded to the larger), so
    each kind compiles one program for both splits. Ranking evaluators are left as they are
    when sharing would more than double the smaller one's work (rating pairs are cheap)."""
    kinds: dict[Any, list] = {}
    for ev in evaluators:
        if isinstance(ev, RatingEvaluator):
            kinds.setdefault(("rating", ev.max_batch), []).append(ev)
        elif isinstance(ev, RankingEvaluator) and ev._program_key() is not None:
            kinds.setdefault((ev._program_key(), ev.user_block), []).append(ev)
    for group in kinds.values():
        if len(group) < 2:
            continue
        sizes = [ev.num_pairs if isinstance(ev, RatingEvaluator) else ev.num_users
                 for ev in group]
        slots = max(sizes)
        if isinstance(group[0], RatingEvaluator):
            for ev in group:
                ev.layout(slots)
            continue
        if slots > 2 * min(sizes):
            continue
        widths: dict[str, int] = {}
        for ev in group:
            for name, w in ev.widths(slots).items():
                widths[name] = max(widths.get(name, 1), w)
        for ev in group:
            ev.layout(slots, widths)
