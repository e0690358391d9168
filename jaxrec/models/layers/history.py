"""Per-user constant tables built from the training interactions, and keyed dropout
(Mult-VAE/DAE, SASRec).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class UserHistory(nnx.Variable):
    """Constant per-user training data: carried in the non-parameter state, never trained."""


def history_matrix(train: Any, num_users: int, num_items: int) -> np.ndarray:
    """bool ``[U, N]``: which items each user has a training interaction with (host)."""
    history = np.zeros((num_users, num_items), dtype=bool)
    if train is not None and len(train.users):
        history[np.asarray(train.users), np.asarray(train.items)] = True
    return history


def dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout with an explicit key (identity when ``key`` is None or ``rate`` is 0)."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def sparse_history_product(history_UxN: jax.Array, weights_NxM: jax.Array, *, cap: int,
                           chunk: int = 32) -> jax.Array:
    """``history_UxN @ weights_NxM`` for 0/1 histories, from their nonzeros: each user's
    scores are the sum of the weight rows of the items in its history.

    The nonzeros (at most ``cap``, a static bound) are taken in row-major order and
    summed ``chunk`` at a time (gather ``chunk`` weight rows, segment-sum them into
    their users), looping only over the chunks that hold nonzeros, so the cost is
    ``nnz x M`` instead of the dense ``U x N x M``. A history with more than ``cap``
    nonzeros takes the dense product (same result).
    """
    num_users, num_items = history_UxN.shape
    cap = -(-max(cap, 1) // chunk) * chunk
    nonzero = history_UxN != 0
    count = jnp.sum(nonzero, dtype=jnp.int32)
    weights = weights_NxM.astype(jnp.float32)

    def sparse(_):
        rows, cols = jnp.nonzero(nonzero, size=cap, fill_value=0)

        def body(k, acc):
            r = jax.lax.dynamic_slice_in_dim(rows, k * chunk, chunk)
            c = jax.lax.dynamic_slice_in_dim(cols, k * chunk, chunk)
            live = (k * chunk + jnp.arange(chunk)) < count
            r = jnp.where(live, r, num_users)  # padding: an out-of-range segment, dropped
            return acc + jax.ops.segment_sum(weights[c], r, num_segments=num_users,
                                             indices_are_sorted=True)

        init = jnp.zeros((num_users, weights.shape[1]), jnp.float32)
        return jax.lax.fori_loop(0, (count + chunk - 1) // chunk, body, init)

    def dense(_):
        return history_UxN.astype(jnp.float32) @ weights

    del num_items
    return jax.lax.cond(count <= cap, sparse, dense, None)
