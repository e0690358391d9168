"""Small array operations that the models' hot paths share."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rowdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """``sum(a * b, axis=-1)`` of broadcastable ``[..., D]`` arrays, as a product with a
    ones vector.

    XLA:CPU fuses gathers, the product and a last-axis ``sum`` into one reduction loop
    that it does not vectorise: for ``w[users] * h[items]`` over ml-latest-small's 72k
    training rows at D = 64 that loop takes ~9 ms, the matrix-vector product ~1 ms
    (measured on the 2-core CI CPU; iALS's conjugate-gradient steps are made of it).
    Accelerators run either form at memory speed. Only the summation order differs
    from ``jnp.sum``.
    """
    a, b = jnp.broadcast_arrays(a, b)
    return (a * b) @ jnp.ones((a.shape[-1],), a.dtype)
