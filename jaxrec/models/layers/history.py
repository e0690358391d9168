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
            r = jnp.where(live, r, num_users)  # padding: an out-of-range row, dropped
            # in place: only the chunk's rows are written (adding a [U, M] segment sum
            # per chunk cost U x M per chunk)
            return acc.at[r].add(weights[c], mode="drop", indices_are_sorted=True)

        init = jnp.zeros((num_users, weights.shape[1]), jnp.float32)
        return jax.lax.fori_loop(0, (count + chunk - 1) // chunk, body, init)

    def dense(_):
        return history_UxN.astype(jnp.float32) @ weights

    del num_items
    return jax.lax.cond(count <= cap, sparse, dense, None)


def sequence_slots(train: Any, num_users: int, length: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, users, cols)``: the rows of ``train`` that are each user's last ``length``
    in time order, and their cells in a left-padded ``[U, length]`` table (host).

    Ties in time are ordered by item index, then row, as the leave-last split
    orders them (`jaxrec.data.splits`).
    """
    if train is None or len(train.users) == 0:
        return (np.zeros(0, np.int64),) * 3
    users, items = np.asarray(train.users), np.asarray(train.items)
    rows = np.lexsort((np.arange(len(users)), items, np.asarray(train.timestamps), users))
    users = users[rows]
    ends = np.cumsum(np.bincount(users, minlength=num_users))
    from_end = ends[users] - 1 - np.arange(len(users))  # 0 = latest
    keep = from_end < length
    return rows[keep], users[keep], length - 1 - from_end[keep]


def sequence_tables(train: Any, num_users: int, num_items: int, length: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each user's last ``length`` training items in time order, and their times (host).

    Returns ``(items, times)``, both int32 ``[U, length]``: items left-padded with
    ``num_items``; times in seconds since the user's first kept item (so they fit
    int32; only differences are used), padding repeats the first kept time (0).
    Order: `sequence_slots`.
    """
    table = np.full((num_users, length), num_items, dtype=np.int32)
    times = np.zeros((num_users, length), dtype=np.int32)
    rows, users, cols = sequence_slots(train, num_users, length)
    if len(rows) == 0:
        return table, times
    timestamps = np.asarray(train.timestamps).astype(np.int64)[rows]
    first = np.full(num_users, np.iinfo(np.int64).max)
    np.minimum.at(first, users, timestamps)
    table[users, cols] = np.asarray(train.items)[rows]
    times[users, cols] = np.clip(timestamps - first[users], 0, 2**31 - 1).astype(np.int32)
    return table, times
