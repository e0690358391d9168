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
