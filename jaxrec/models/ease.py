"""EASE: embarrassingly shallow autoencoder (Steck 2019, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW).

An item-item weight matrix ``B`` with a zero diagonal, fitted in closed form::

    P = (X^T X + lambda I)^-1,    B = I - P diag(1 / diag(P))

where ``X`` is the binary user x item matrix of training interactions. A user's
scores are ``X_u B``.

Memory: the model holds ``B`` (``N x N`` float32, 378 MB for the 9,724 items
of ml-latest-small, 55 MB for ml-1m) and the training history ``X`` (``U x N``
bool, 6 MB for ml-latest-small, 22 MB for ml-1m, 2.8 GB for ml-20m); fitting
needs about three more ``N x N`` float32 buffers (ml-20m after Liang et al.'s
filtering: 20.7k items, 1.7 GB each) and, with more users than items, blocks of
``user_block`` float rows instead of a float copy of ``X``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.history import history_matrix, sparse_history_product


def ease_weights(x_UxN: jax.Array, l2: float, user_block: int = 4096) -> jax.Array:
    """The EASE weights ``B = I - P diag(1 / diag P)``, ``P = (X^T X + l2 I)^-1``.

    Args:
      x_UxN: interaction matrix (binary for EASE; bool or float).
      l2: the ridge penalty ``lambda`` (> 0).
      user_block: users per block when accumulating ``X^T X`` (the ``U >= N`` path).

    Returns:
      ``B_NxN`` with a zero diagonal.

    When there are fewer users than items (``U < N``), ``P`` comes from the
    Woodbury identity ``P = (I - X^T (l2 I_U + X X^T)^-1 X) / l2``: a ``U x U``
    Cholesky factorisation and ``O(U N^2)`` products instead of an ``N x N``
    factorisation (``O(N^3)``). Otherwise from the Cholesky factor of the
    ``N x N`` Gram matrix, accumulated over blocks of ``user_block`` users so
    no float copy of ``X`` is ever made (ml-20m: 11 GB as float32).
    """
    return _solve(x_UxN, l2, user_block)[0]


def _user_blocks(x_UxN: jax.Array, user_block: int, fn, init):
    """``fold(fn, init)`` over float32 blocks ``[user_block, N]`` of the rows of ``x_UxN``.

    The last block is shifted back to end at row U and its rows already seen are
    zeroed, so every row counts once and all blocks have one static shape.
    """
    num_users = x_UxN.shape[0]
    block = min(user_block, num_users)

    def body(k, acc):
        start = jnp.minimum(k * block, num_users - block)
        rows = jax.lax.dynamic_slice_in_dim(x_UxN, start, block).astype(jnp.float32)
        fresh = (start + jnp.arange(block)) >= k * block
        return fn(acc, rows * fresh[:, None])

    return jax.lax.fori_loop(0, -(-num_users // block), body, init)


def _solve(x_UxN: jax.Array, l2: float, user_block: int = 4096) -> tuple[jax.Array, jax.Array]:
    """``(B_NxN, ||X - X B||^2)``; the residual is ``X - X B = X P diag(1 / diag P)``."""
    num_users, num_items = x_UxN.shape
    hi = jax.lax.Precision.HIGHEST
    if num_users < num_items:
        x_UxN = x_UxN.astype(jnp.float32)
        k_UxU = jnp.matmul(x_UxN, x_UxN.T, precision=hi) + l2 * jnp.eye(num_users)
        xp_UxN = jsl.cho_solve(jsl.cho_factor(k_UxU), x_UxN)  # X P = K^-1 X (Woodbury)
        p_NxN = (jnp.eye(num_items) - jnp.matmul(x_UxN.T, xp_UxN, precision=hi)) / l2
        inv_diag_N = 1.0 / jnp.diag(p_NxN)
        residual = jnp.sum((xp_UxN * inv_diag_N[None, :]) ** 2)
    else:
        g_NxN = _user_blocks(x_UxN, user_block,
                             lambda g, x: g + jnp.matmul(x.T, x, precision=hi),
                             l2 * jnp.eye(num_items, dtype=jnp.float32))
        p_NxN = jsl.cho_solve(jsl.cho_factor(g_NxN), jnp.eye(num_items))
        inv_diag_N = 1.0 / jnp.diag(p_NxN)

        def add_residual(r, x):  # ||X_b P diag(1 / diag P)||^2 of one block
            res = jnp.matmul(x, p_NxN, precision=hi) * inv_diag_N[None, :]
            return r + jnp.sum(res * res)

        residual = _user_blocks(x_UxN, user_block, add_residual, jnp.zeros((), jnp.float32))
    b_NxN = -p_NxN * inv_diag_N[None, :]
    b_NxN = b_NxN.at[jnp.diag_indices(num_items)].set(0.0)  # I - P / diag(P): zero diagonal
    return b_NxN, residual


class EASE(nnx.Module):
    """EASE item-item model, fitted by one closed-form :meth:`solve_epoch` (``loss=none``).

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      l2: the ridge penalty ``lambda`` on ``B`` (Steck: a few hundred for
        MovieLens-sized data; ml-latest-small's validation split prefers 200).
      user_block: users per block when summing ``X^T X`` and the residual with more
        users than items (bounds the float32 rows materialised at once).
      rngs: unused (the model is deterministic); kept for the common signature.

    Before the solve every score is 0. Interactions are binarised: a rating's
    value is ignored, as in the paper.
    """

    default_loss: ClassVar[str] = "none"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(self, ctx: ModelContext, *, l2: float = 500.0, user_block: int = 4096,
                 rngs: nnx.Rngs):
        info = ctx.info
        del rngs
        if not l2 > 0:
            raise ValueError(f"model.l2: must be > 0, got {l2}")
        if not (isinstance(user_block, int) and user_block >= 1):
            raise ValueError(f"model.user_block: must be an integer >= 1, got {user_block!r}")
        self.l2 = float(l2)
        self.user_block = user_block
        self.weights_NxN = nnx.Param(jnp.zeros((info.num_items, info.num_items), jnp.float32))
        self.history_UxN = nnx.Param(jnp.zeros((info.num_users, info.num_items), jnp.bool_))
        self.num_users, self.num_items = info.num_users, info.num_items
        self.max_nonzeros = max(int(info.num_train), 1)  # static bound for sparse scoring

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``{"history_UxN": bool [U, N]}`` of ``interactions`` (`HistoryInput`): the rows
        ``X_u`` scored (the solve stores the training ones; ``B`` is never refitted)."""
        return {"history_UxN": history_matrix(interactions, self.num_users, self.num_items)}

    def solve_epoch(self, data: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        """Store the training history and solve for ``B``.

        Returns the training objective ``(||X - X B||^2 + lambda ||B||^2) / E``.
        """
        del key
        history = jnp.zeros_like(self.history_UxN[...]).at[data["users"], data["items"]].set(True)
        b_NxN, residual = _solve(history, self.l2, self.user_block)
        self.history_UxN[...] = history
        self.weights_NxN[...] = b_NxN
        objective = residual + self.l2 * jnp.sum(b_NxN * b_NxN)
        return objective / data["users"].shape[0]

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        shape = jnp.broadcast_shapes(users.shape, items.shape)
        users = jnp.broadcast_to(users, shape).reshape(-1)
        items = jnp.broadcast_to(items, shape).reshape(-1)
        history_UxN, b_NxN = self.history_UxN[...], self.weights_NxN[...]

        def score(pair):  # X_u . B[:, i]; mapped in chunks to bound the [P, N] gathers
            u, i = pair
            return jnp.dot(history_UxN[u].astype(jnp.float32), b_NxN[:, i])

        return jax.lax.map(score, (users, items), batch_size=1024).reshape(shape)

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.score_history(self.history_UxN[...][users_U])

    def score_history(self, history_UxN: jax.Array) -> jax.Array:
        """Scores of every item from 0/1 histories ``[U, N]``: ``X_u B`` (Steck 2019).

        New users (strong generalisation, `jaxrec.metrics.strong`) are scored exactly
        as a training user is by :meth:`score_all`; ``B`` comes from the training
        users' rows only and its zero diagonal keeps an item from recommending itself.
        Computed from the histories' nonzeros (`sparse_history_product`: the cost of
        the nonzeros, not of ``U x N x N``).
        """
        return sparse_history_product(history_UxN, self.weights_NxN[...],
                                      cap=self.max_nonzeros)

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []
