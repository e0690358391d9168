"""EASE: embarrassingly shallow autoencoder (Steck 2019, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW).

An item-item weight matrix ``B`` with a zero diagonal, fitted in closed form::

    P = (X^T X + lambda I)^-1,    B = I - P diag(1 / diag(P))

where ``X`` is the binary user x item matrix of training interactions. A user's
scores are ``X_u B``.

Memory: the model holds ``B`` (``N x N`` float32, 378 MB for the 9,724 items
of ml-latest-small, 55 MB for ml-1m) and the training history ``X`` (``U x N``
bool, 6 MB for ml-latest-small, 22 MB for ml-1m); fitting needs about three
more ``N x N`` float32 buffers. Catalogues beyond ~30k items (ml-20m: 27k,
3 GB per ``N x N``) need an accelerator with room for them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from flax import nnx

from jaxrec.types import DataInfo


def ease_weights(x_UxN: jax.Array, l2: float) -> jax.Array:
    """The EASE weights ``B = I - P diag(1 / diag P)``, ``P = (X^T X + l2 I)^-1``.

    Args:
      x_UxN: float interaction matrix (binary for EASE).
      l2: the ridge penalty ``lambda`` (> 0).

    Returns:
      ``B_NxN`` with a zero diagonal.

    When there are fewer users than items (``U < N``), ``P`` comes from the
    Woodbury identity ``P = (I - X^T (l2 I_U + X X^T)^-1 X) / l2``: a ``U x U``
    Cholesky factorisation and ``O(U N^2)`` products instead of an ``N x N``
    factorisation (``O(N^3)``); otherwise from the Cholesky factor of the
    ``N x N`` Gram matrix.
    """
    return _solve(x_UxN, l2)[0]


def _solve(x_UxN: jax.Array, l2: float) -> tuple[jax.Array, jax.Array]:
    """``(B_NxN, R_UxN)``: the weights and the residual ``X - X B = X P diag(1 / diag P)``."""
    num_users, num_items = x_UxN.shape
    hi = jax.lax.Precision.HIGHEST
    if num_users < num_items:
        k_UxU = jnp.matmul(x_UxN, x_UxN.T, precision=hi) + l2 * jnp.eye(num_users)
        xp_UxN = jsl.cho_solve(jsl.cho_factor(k_UxU), x_UxN)  # X P = K^-1 X (Woodbury)
        p_NxN = (jnp.eye(num_items) - jnp.matmul(x_UxN.T, xp_UxN, precision=hi)) / l2
    else:
        g_NxN = jnp.matmul(x_UxN.T, x_UxN, precision=hi) + l2 * jnp.eye(num_items)
        p_NxN = jsl.cho_solve(jsl.cho_factor(g_NxN), jnp.eye(num_items))
        xp_UxN = jnp.matmul(x_UxN, p_NxN, precision=hi)
    inv_diag_N = 1.0 / jnp.diag(p_NxN)
    b_NxN = -p_NxN * inv_diag_N[None, :]
    b_NxN = b_NxN.at[jnp.diag_indices(num_items)].set(0.0)  # I - P / diag(P): zero diagonal
    return b_NxN, xp_UxN * inv_diag_N[None, :]


class EASE(nnx.Module):
    """EASE item-item model, fitted by one closed-form :meth:`solve_epoch` (``loss=none``).

    Args:
      info: dataset summary (vocabulary sizes).
      l2: the ridge penalty ``lambda`` on ``B`` (Steck: a few hundred for
        MovieLens-sized data; ml-latest-small's validation split prefers 200).
      rngs: unused (the model is deterministic); kept for the common signature.

    Before the solve every score is 0. Interactions are binarised: a rating's
    value is ignored, as in the paper.
    """

    def __init__(self, info: DataInfo, *, l2: float = 500.0, rngs: nnx.Rngs):
        del rngs
        if not l2 > 0:
            raise ValueError(f"model.l2: must be > 0, got {l2}")
        self.l2 = float(l2)
        self.weights_NxN = nnx.Param(jnp.zeros((info.num_items, info.num_items), jnp.float32))
        self.history_UxN = nnx.Param(jnp.zeros((info.num_users, info.num_items), jnp.bool_))

    def solve_epoch(self, data: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        """Store the training history and solve for ``B``.

        Returns the training objective ``(||X - X B||^2 + lambda ||B||^2) / E``.
        """
        del key
        history = jnp.zeros_like(self.history_UxN[...]).at[data["users"], data["items"]].set(True)
        x_UxN = history.astype(jnp.float32)
        b_NxN, residual_UxN = _solve(x_UxN, self.l2)
        self.history_UxN[...] = history
        self.weights_NxN[...] = b_NxN
        objective = jnp.sum(residual_UxN * residual_UxN) + self.l2 * jnp.sum(b_NxN * b_NxN)
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
        """
        return history_UxN.astype(jnp.float32) @ self.weights_NxN[...]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []
