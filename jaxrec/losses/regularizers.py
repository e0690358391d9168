"""Regularisers on the parameters a batch touches."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def l2_rows(rows: Sequence[jax.Array], *, mask_B: jax.Array) -> jax.Array:
    """Mean over unmasked examples of the squared L2 norm of the rows they use.

    Args:
      rows: arrays with leading dims matching ``mask_B`` (``[B]``, ``[B, D]``,
        ``[B, M, D]``): one entry per example (or per example and negative).
      mask_B: 1 for real examples, 0 for padding ``[B]``.

    Returns:
      ``sum_b mask_b sum_r ||row_r[b]||^2 / sum_b mask_b``.
    """
    mask_B = mask_B.astype(jnp.float32)
    total = jnp.zeros(())
    for row in rows:
        per_example = jnp.sum(jnp.square(row).reshape(row.shape[0], -1), axis=-1)
        total = total + jnp.sum(per_example * mask_B)
    return total / jnp.maximum(jnp.sum(mask_B), 1.0)
