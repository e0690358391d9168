"""The block machinery shared by the ranking evaluators (full ranking, sampled candidates)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics.catalog import MetricSet
from jaxrec.multihost import fetch


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

    def _compile(self, mode: str, score_fn: Callable) -> Callable:
        cached = self._compiled.get(mode)
        if cached is not None and cached[0] is score_fn:
            return cached[1]
        ms = self.metric_set

        def lists(params, blk, ctx):
            hits_UxK, num_rel_U, items_UxK, valid_UxK = self._block_lists(score_fn, params, blk)
            values_MxU = ms.per_user(hits_UxK, num_rel_U, items_UxK, valid_UxK, ctx)
            return values_MxU, num_rel_U > 0, items_UxK, valid_UxK

        if mode == "sum":
            def run_all(params, blocks, ctx):
                def body(exposure_AxN, blk):
                    values_MxU, mask_U, items_UxK, valid_UxK = lists(params, blk, ctx)
                    weight_UxK = valid_UxK & mask_U[:, None]
                    exposure_AxN = exposure_AxN + ms.exposure(items_UxK, weight_UxK)
                    return exposure_AxN, jnp.where(mask_U[None, :], values_MxU, 0.0).sum(-1)

                init = jnp.zeros((len(ms.exposure_ks), ms.num_items), jnp.float32)
                exposure_AxN, sums_BxM = jax.lax.scan(body, init, blocks)
                return sums_BxM, ms.aggregates(exposure_AxN)
        else:
            def run_all(params, blocks, ctx):
                return jax.lax.map(lambda b: lists(params, b, ctx)[0], blocks)

        fn = jax.jit(run_all)
        self._compiled[mode] = (score_fn, fn)
        return fn

    def run(self, score_fn: Callable, params: Any) -> dict[str, float]:
        """Each metric: the mean over the evaluated users (coverage and Gini: over all lists).

        Returns ``{"valid/ndcg@10": 0.31, ...}`` in `keys` order.
        """
        sums_BxM, aggregates_A = self._compile("sum", score_fn)(params, self._blocks,
                                                               self.metric_set.ctx)
        means_M = fetch(sums_BxM).astype(np.float64).sum(0) / self.num_users
        values = dict(zip(self.metric_set.user_keys, means_M.tolist(), strict=True))
        values.update(zip(self.metric_set.aggregate_keys, fetch(aggregates_A).tolist(),
                          strict=True))
        return {key: float(values[key]) for key in self.keys}

    def per_user(self, score_fn: Callable, params: Any
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-user values, e.g. for paired significance tests.

        Returns:
          ``(users [V] int32, {"valid/ndcg@10": float32 [V], ...})`` over the
          ``V`` evaluated users in ascending id order, for every per-user key
          (coverage and Gini have none); each vector's mean is the value `run`
          reports.
        """
        keys = self.metric_set.user_keys
        if not keys:
            return self.users.copy(), {}
        values_BxMxU = fetch(self._compile("per_user", score_fn)(
            params, self._blocks, self.metric_set.ctx))
        values_MxV = values_BxMxU.transpose(1, 0, 2).reshape(len(keys), -1)
        values_MxV = values_MxV[:, :self.num_users]
        return self.users.copy(), {key: values_MxV[i] for i, key in enumerate(keys)}
