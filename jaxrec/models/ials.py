"""iALS: implicit alternating least squares (Hu, Koren and Volinsky 2008), with the
recipe of Rendle, Krichene, Zhang and Koren 2021 ("Revisiting the Performance of
iALS on Item Recommendation Benchmarks", RecSys 2022).

User factors ``W`` (``U x D``) and item factors ``H`` (``N x D``) minimise::

    L = sum_{(u,i) observed} c_ui (<w_u, h_i> - 1)^2  +  alpha0 * sum_{u,i} <w_u, h_i>^2
        + lambda * ( sum_u (n_u + alpha0 N)^nu ||w_u||^2 + sum_i (n_i + alpha0 U)^nu ||h_i||^2 )

with the unobserved weight ``alpha0`` applied to every (user, item) pair, the
observed weight ``c_ui = 1 + alpha * r_ui`` (``alpha = 0``: Rendle's recipe)
and the frequency-scaled L2 penalty (``nu = 0``: a plain penalty ``lambda``).
With ``H`` fixed the loss separates over users::

    (alpha0 H^T H + H_u^T C_u H_u + lambda_u I) w_u = H_u^T C_u 1

and symmetrically for items. One epoch solves all users, then all items. The
batched solves work on the interaction list (``E`` rows, no padding to the
longest history): ``solver="cg"`` runs ``cg_steps`` Jacobi-preconditioned
conjugate-gradient steps per row, warm-started from the current factors
(``O(E D + (U + N) D^2)`` per step, the ``implicit`` library's default
solver); ``solver="cholesky"`` builds every row's ``D x D`` system and solves
it exactly (``O(E D^2 + (U + N) D^3)``, ``(U + N) D^2`` floats of memory).
Both gather the fixed side's factors per interaction (``E x D`` floats: 37 MB
for ml-latest-small at D = 128, about 7 GB for ml-20m).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.ops import rowdot

_SOLVERS = ("cg", "cholesky")


class IALS(nnx.Module):
    """Implicit ALS with an unobserved weight and frequency-scaled L2 (``loss=none``).

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      dim: factor dimension D.
      unobserved_weight: ``alpha0``, the weight of the squared score of every pair.
      reg: ``lambda``, the L2 penalty.
      reg_exponent: ``nu``: row ``r``'s penalty is ``lambda (n_r + alpha0 * n_other)^nu``
        (1: Rendle's recipe, 0: a plain ``lambda``).
      alpha: observed weight ``1 + alpha * rating`` (0: every observation weighs 1).
      init_std: standard deviation of the normal initialiser of both factors.
      solver: ``cg`` (warm-started conjugate gradient) or ``cholesky`` (exact).
      cg_steps: conjugate-gradient steps per row and half-epoch (``solver="cg"``).
      rngs: Flax random streams (``params`` initialises the factors).
    """

    default_loss: ClassVar[str] = "none"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(self, ctx: ModelContext, *, dim: int = 64, unobserved_weight: float = 0.3,
                 reg: float = 0.01, reg_exponent: float = 1.0, alpha: float = 0.0,
                 init_std: float = 0.01, solver: str = "cg", cg_steps: int = 4,
                 rngs: nnx.Rngs):
        info = ctx.info
        if solver not in _SOLVERS:
            raise ValueError(f"model.solver: expected one of {', '.join(_SOLVERS)}, "
                             f"got {solver!r}")
        for name, value in (("dim", dim), ("cg_steps", cg_steps)):
            if value < 1:
                raise ValueError(f"model.{name}: must be >= 1, got {value}")
        for name, value in (("unobserved_weight", unobserved_weight), ("reg", reg),
                            ("alpha", alpha)):
            if value < 0:
                raise ValueError(f"model.{name}: must be >= 0, got {value}")
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
        self.unobserved_weight = float(unobserved_weight)
        self.reg, self.reg_exponent, self.alpha = float(reg), float(reg_exponent), float(alpha)
        self.solver, self.cg_steps = solver, int(cg_steps)

    def solve_epoch(self, data: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        """One alternating sweep (users, then items); returns the loss ``L / E`` after it."""
        del key
        users_E, items_E = data["users"], data["items"]
        c_E = 1.0 + self.alpha * data["ratings"] if self.alpha else jnp.ones(users_E.shape)
        w_UxD, h_NxD = self.user_emb_UxD[...], self.item_emb_NxD[...]
        reg_U = self._row_reg(users_E, w_UxD.shape[0], h_NxD.shape[0])
        reg_N = self._row_reg(items_E, h_NxD.shape[0], w_UxD.shape[0])
        w_UxD = self._solve_side(w_UxD, h_NxD, users_E, items_E, c_E, reg_U)
        h_NxD = self._solve_side(h_NxD, w_UxD, items_E, users_E, c_E, reg_N)
        self.user_emb_UxD[...], self.item_emb_NxD[...] = w_UxD, h_NxD
        return self.objective(w_UxD, h_NxD, users_E, items_E, c_E, reg_U, reg_N)

    def objective(self, w_UxD, h_NxD, users_E, items_E, c_E, reg_U, reg_N) -> jax.Array:
        """The loss ``L`` of the module docstring divided by the number of interactions E."""
        hi = jax.lax.Precision.HIGHEST
        pred_E = rowdot(w_UxD[users_E], h_NxD[items_E])
        all_pairs = jnp.sum(jnp.matmul(w_UxD.T, w_UxD, precision=hi)
                            * jnp.matmul(h_NxD.T, h_NxD, precision=hi))  # sum_{u,i} <w_u, h_i>^2
        loss = (jnp.sum(c_E * (pred_E - 1.0) ** 2) + self.unobserved_weight * all_pairs
                + jnp.sum(reg_U * jnp.sum(w_UxD * w_UxD, axis=-1))
                + jnp.sum(reg_N * jnp.sum(h_NxD * h_NxD, axis=-1)))
        return loss / users_E.shape[0]

    def _row_reg(self, rows_E: jax.Array, num_rows: int, num_other: int) -> jax.Array:
        counts_R = jnp.zeros((num_rows,)).at[rows_E].add(1.0)
        return self.reg * (counts_R + self.unobserved_weight * num_other) ** self.reg_exponent

    def _solve_side(self, x_RxD, h_CxD, rows_E, cols_E, c_E, reg_R) -> jax.Array:
        """Minimise L over the rows ``x`` with the other side ``h`` fixed."""
        hi = jax.lax.Precision.HIGHEST
        num_rows = x_RxD.shape[0]
        gram_DxD = self.unobserved_weight * jnp.matmul(h_CxD.T, h_CxD, precision=hi)
        h_ExD = h_CxD[cols_E]
        b_RxD = jax.ops.segment_sum(c_E[:, None] * h_ExD, rows_E, num_rows)
        if self.solver == "cholesky":
            a_RxDxD = _row_systems(gram_DxD, h_ExD, rows_E, c_E, reg_R)
            return jax.vmap(lambda a, b: jsl.cho_solve(jsl.cho_factor(a), b))(a_RxDxD, b_RxD)

        def matvec(v_RxD):
            s_E = rowdot(h_ExD, v_RxD[rows_E])
            observed = jax.ops.segment_sum((c_E * s_E)[:, None] * h_ExD, rows_E, num_rows)
            return (jnp.matmul(v_RxD, gram_DxD, precision=hi) + reg_R[:, None] * v_RxD
                    + observed)

        diag_RxD = (jnp.diag(gram_DxD)[None, :] + reg_R[:, None]
                    + jax.ops.segment_sum(c_E[:, None] * h_ExD * h_ExD, rows_E, num_rows))
        return _pcg(matvec, b_RxD, x_RxD, 1.0 / jnp.maximum(diag_RxD, 1e-30), self.cg_steps)

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return rowdot(self.user_emb_UxD[...][users], self.item_emb_NxD[...][items])

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.user_emb_UxD[...][users_U] @ self.item_emb_NxD[...].T

    def score_history(self, history_UxN: jax.Array) -> jax.Array:
        """Scores of every item for users folded in from 0/1 histories ``[U, N]``: each
        row's user factor solved exactly with the items fixed (the user half of an epoch,
        observed weight ``1 + alpha``), ``w_u = (alpha0 H^T H + H^T C_u H + lambda_u I)^-1
        H^T C_u 1``, then ``w_u H^T``. Costs ``U N D^2``; for new users (strong
        generalisation) and streaming evaluation (`jaxrec.metrics.streaming`)."""
        hi = jax.lax.Precision.HIGHEST
        h_NxD = self.item_emb_NxD[...]
        c_UxN = history_UxN.astype(jnp.float32) * (1.0 + self.alpha)
        n_items, dim = h_NxD.shape
        reg_U = self.reg * (jnp.sum(history_UxN > 0, axis=1)
                            + self.unobserved_weight * n_items) ** self.reg_exponent
        a_UxDxD = (self.unobserved_weight * jnp.matmul(h_NxD.T, h_NxD, precision=hi)[None]
                   + jnp.einsum("un,nd,ne->ude", c_UxN, h_NxD, h_NxD, precision=hi)
                   + reg_U[:, None, None] * jnp.eye(dim)[None])
        b_UxD = jnp.matmul(c_UxN, h_NxD, precision=hi)
        w_UxD = jax.vmap(lambda a, b: jsl.cho_solve(jsl.cho_factor(a), b))(a_UxDxD, b_UxD)
        return w_UxD @ h_NxD.T

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []


def _row_systems(gram_DxD, h_ExD, rows_E, c_E, reg_R) -> jax.Array:
    """Every row's matrix ``gram + sum_e c_e h_e h_e^T + reg_r I`` as ``[R, D, D]``.

    The outer products are accumulated over chunks of interactions, so the
    temporary ``[chunk, D, D]`` stays near 64 MB whatever E is.
    """
    dim = gram_DxD.shape[0]
    chunk = max(1, min(h_ExD.shape[0], (1 << 24) // (dim * dim)))
    pad = -h_ExD.shape[0] % chunk
    h_ExD = jnp.pad(h_ExD, ((0, pad), (0, 0)))
    c_E = jnp.pad(c_E, (0, pad))  # padded rows weigh 0
    rows_E = jnp.pad(rows_E, (0, pad))
    a_RxDxD = gram_DxD[None] + reg_R[:, None, None] * jnp.eye(dim)[None]

    def add_chunk(a, xs):
        h_CxD, c_C, rows_C = xs
        outer = c_C[:, None, None] * h_CxD[:, :, None] * h_CxD[:, None, :]
        return a.at[rows_C].add(outer), None

    xs = (h_ExD.reshape(-1, chunk, dim), c_E.reshape(-1, chunk), rows_E.reshape(-1, chunk))
    return jax.lax.scan(add_chunk, a_RxDxD, xs)[0]


def _pcg(matvec, b_RxD, x_RxD, inv_diag_RxD, steps: int) -> jax.Array:
    """``steps`` of Jacobi-preconditioned conjugate gradient on every row's system at once.

    Each row runs its own CG (its own step sizes); a row whose residual has
    vanished stops moving. From any start, each step lowers every row's
    quadratic, so warm starts never increase the loss.
    """
    r = b_RxD - matvec(x_RxD)
    z = r * inv_diag_RxD
    rz_R = jnp.sum(r * z, axis=-1)

    def step(_, carry):
        x, r, p, rz_R = carry
        ap = matvec(p)
        pap_R = jnp.sum(p * ap, axis=-1)
        a_R = jnp.where(pap_R > 0, rz_R / jnp.where(pap_R > 0, pap_R, 1.0), 0.0)
        x = x + a_R[:, None] * p
        r = r - a_R[:, None] * ap
        z = r * inv_diag_RxD
        rz_new_R = jnp.sum(r * z, axis=-1)
        beta_R = jnp.where(rz_R > 0, rz_new_R / jnp.where(rz_R > 0, rz_R, 1.0), 0.0)
        return x, r, z + beta_R[:, None] * p, rz_new_R

    return jax.lax.fori_loop(0, steps, step, (x_RxD, r, z, rz_R))[0]
