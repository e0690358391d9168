"""Rating-prediction errors in pure ``jnp``: per-example values and masked reductions.

With predictions ``p_e``, targets ``r_e`` and a 0/1 mask ``m_e`` (padding = 0)::

    rmse = sqrt(sum_e m_e (p_e - r_e)^2 / sum_e m_e)
    mae  = sum_e m_e |p_e - r_e| / sum_e m_e

Reductions over an empty mask return NaN (an undefined mean, not a score of 0).
Both are errors: lower is better (`HIGHER_IS_BETTER`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

HIGHER_IS_BETTER: dict[str, bool] = {"rmse": False, "mae": False}
"""Direction of each rating metric (``valid/rmse``, ``test/mae``): errors, lower is better."""


def squared_error(preds_B: jax.Array, targets_B: jax.Array) -> jax.Array:
    """``(p - r)^2`` per example, float32 ``[B]``."""
    return jnp.square(preds_B.astype(jnp.float32) - targets_B.astype(jnp.float32))


def absolute_error(preds_B: jax.Array, targets_B: jax.Array) -> jax.Array:
    """``|p - r|`` per example, float32 ``[B]``."""
    return jnp.abs(preds_B.astype(jnp.float32) - targets_B.astype(jnp.float32))


def _masked_mean(values_B: jax.Array, mask_B: jax.Array | None) -> jax.Array:
    if mask_B is None:
        return values_B.mean()
    mask_B = mask_B.astype(jnp.float32)
    return (values_B * mask_B).sum() / mask_B.sum()


def rmse(preds_B: jax.Array, targets_B: jax.Array, mask_B: jax.Array | None = None) -> jax.Array:
    """Root mean squared error over the examples where ``mask_B`` is true (all if None).

    Args:
      preds_B: predicted ratings ``[B]``.
      targets_B: true ratings ``[B]``.
      mask_B: optional bool/float ``[B]``; 0 marks padding.

    Returns:
      float32 scalar.
    """
    return jnp.sqrt(_masked_mean(squared_error(preds_B, targets_B), mask_B))


def mae(preds_B: jax.Array, targets_B: jax.Array, mask_B: jax.Array | None = None) -> jax.Array:
    """Mean absolute error over the examples where ``mask_B`` is true. Arguments as in `rmse`."""
    return _masked_mean(absolute_error(preds_B, targets_B), mask_B)
