"""The block machinery shared by the ranking evaluators (full ranking, sampled candidates)."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics.catalog import MetricSet
from jaxrec.multihost import fetch

_SHARED: OrderedDict = OrderedDict()  # (score_fn, program key) -> jitted program
_SHARED_MAX = 64


def _program(block_lists: Callable, score_fn: Callable, ms: MetricSet) -> Callable:
    """``(params, blocks, ctx) -> (values_BxMxU, aggregates_A)`` over every block (one scan)."""

    def program(params, blocks, ctx):
        def body(exposure_AxN, blk):
            hits_UxK, num_rel_U, items_UxK, valid_UxK = block_lists(score_fn, params, blk)
            values_MxU = ms.per_user(hits_UxK, num_rel_U, items_UxK, valid_UxK, ctx)
            weight_UxK = valid_UxK & (num_rel_U > 0)[:, None]
            return exposure_AxN + ms.exposure(items_UxK, weight_UxK), values_MxU

        init = jnp.zeros((len(ms.exposure_ks), ms.num_items), jnp.float32)
        exposure_AxN, values_BxMxU = jax.lax.scan(body, init, blocks)
        return values_BxMxU, ms.aggregates(exposure_AxN)

    return program


class ListEvaluator:
    """Shared machinery of the evaluators that rank items for blocks of users on device.

    A subclass prepares ``self._blocks`` (a pytree of arrays with a leading
    ``n_blocks`` axis, holding at least ``num_relevant`` ``[n_blocks, U]``),
    ``self.users`` (evaluated users, ascending) and ``self.metric_set``, and
    implements `_block_lists`: one block -> its top-K lists. This class
    compiles one function per scoring function that maps all blocks with
    ``lax.scan`` and reduces them to per-user values or their sums, plus the
    item exposure counts that coverage and Gini need.

    ``inputs`` names what the scoring function takes: ``users`` (user indices
    -> ``[U, N]`` scores), ``pairs`` (users, items -> ``[B]``) or ``history``
    (a ``[U, N]`` fold-in matrix -> ``[U, N]`` scores). ``input_tables``: None, or
    the model's per-user input tables this part is scored from (`jaxrec.metrics.inputs`;
    `jaxrec.metrics.scoring.scoring_state` swaps them into the state).
    """

    inputs = "users"
    input_tables: dict[str, jax.Array] | None = None
    split: str
    users: np.ndarray
    metric_set: MetricSet
    _blocks: dict[str, jax.Array]

    def _block_lists(self, score_fn: Callable, params: Any, blk: dict[str, jax.Array]
                     ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """One block -> ``(hits_UxK, num_relevant_U, items_UxK int32, valid_UxK bool)``."""
        raise NotImplementedError

    @property
    def keys(self) -> list[str]:
        """Every metric key, metric-major (``split/name@k``)."""
        return self.metric_set.keys

    @property
    def num_users(self) -> int:
        """Number of evaluated users (those with at least one relevant item)."""
        return len(self.users)

    def place(self, sharding_of: Callable[[str, jax.Array], Any]) -> None:
        """Re-place the block arrays, ``sharding_of(name, array) -> jax.sharding.Sharding``
        (a device mesh splits each block's users over its devices)."""
        self._blocks = {k: jax.device_put(v, sharding_of(k, v)) for k, v in self._blocks.items()}
        self._compiled.clear()

    def _program_key(self) -> tuple | None:
        """What `_block_lists` and the metric set read besides the arrays passed in: evaluators
        with equal keys share one compiled program (valid and test, trials of a sweep);
        None: this evaluator compiles its own."""
        return None

    def _program(self, score_fn: Callable) -> Callable:
        """The one jitted program of this evaluator and scoring function: every block's
        per-user values ``[B, M, U]`` and the aggregates (coverage, Gini) in one pass."""
        cached = self._compiled.get("program")
        if cached is not None and cached[0] is score_fn:
            return cached[1]
        key = self._program_key()
        fn = None if key is None else _SHARED.get((score_fn, key))
        if fn is None:
            block_lists = self._block_lists if key is None else functools.partial(
                type(self)._block_lists, self._static())
            fn = jax.jit(_program(block_lists, score_fn, self.metric_set))
            if key is not None:
                _SHARED[(score_fn, key)] = fn
                while len(_SHARED) > _SHARED_MAX:
                    _SHARED.popitem(last=False)
        self._compiled["program"] = (score_fn, fn)
        return fn

    def _static(self) -> Any:
        """A stand-in for ``self`` holding only what `_program_key` names (shared programs
        must not keep an evaluator's arrays alive)."""
        raise NotImplementedError

    def evaluate(self, score_fn: Callable, params: Any
                 ) -> tuple[dict[str, float], tuple[np.ndarray, dict[str, np.ndarray]]]:
        """`run`'s metrics and `per_user`'s vectors, from one pass over the blocks."""
        values_BxMxU, aggregates_A = self._program(score_fn)(params, self._blocks,
                                                             self.metric_set.ctx)
        keys = self.metric_set.user_keys
        values_BxMxU = fetch(values_BxMxU)  # gathered from every process's shards
        values_MxV = values_BxMxU.transpose(1, 0, 2).reshape(len(keys), -1)[:, :self.num_users] \
            if keys else np.zeros((0, self.num_users), np.float32)
        means_M = values_MxV.astype(np.float64).sum(1) / self.num_users
        values = dict(zip(keys, means_M.tolist(), strict=True))
        values.update(zip(self.metric_set.aggregate_keys, fetch(aggregates_A).tolist(),
                          strict=True))
        per_user = {key: values_MxV[i] for i, key in enumerate(keys)}
        return {key: float(values[key]) for key in self.keys}, (self.users.copy(), per_user)

    def run(self, score_fn: Callable, params: Any) -> dict[str, float]:
        """Each metric: the mean over the evaluated users (coverage and Gini: over all lists).

        Returns ``{"valid/ndcg@10": 0.31, ...}`` in `keys` order.
        """
        return self.evaluate(score_fn, params)[0]

    def per_user(self, score_fn: Callable, params: Any
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-user values, e.g. for paired significance tests.

        Returns:
          ``(users [V] int32, {"valid/ndcg@10": float32 [V], ...})`` over the
          ``V`` evaluated users in ascending id order, for every per-user key
          (coverage and Gini have none); each vector's mean is the value `run`
          reports.
        """
        return self.evaluate(score_fn, params)[1]
