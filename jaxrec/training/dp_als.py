"""Private iALS (``model=ials privacy.method=als``): noisy item-side sufficient statistics.

After Chien, Jain, Krichene, Rendle, Song, Thakurta and Zhang, "Private Alternating
Least Squares", ICML 2021. One epoch:

1. **Users, exactly** (never released): every user's factor is solved from all of
   that user's data and the current (already private) item factors.
2. **Clip** every user factor to norm ``clip_norm`` (Gamma) and keep at most ``k =
   privacy.max_interactions`` of each user's interactions, drawn at random per epoch.
3. **Release noisy statistics**: the unobserved-weight Gram ``alpha0 sum_u w_u w_u^T``,
   every item's ``A_i = sum_u c_ui w_u w_u^T``, ``b_i = sum_u c_ui w_u`` and kept count
   ``n_i``, each coordinate plus ``N(0, (noise_multiplier * Delta)^2)``, where
   ``Delta^2 = (alpha0 Gamma^2)^2 + k c^2 Gamma^4 + k c^2 Gamma^2 + k`` bounds one user's
   L2 contribution to all of them together (``c``: the largest observed weight).
4. **Items** solve ``(G + A_i + reg_i I + s I) h_i = b_i`` from the noisy statistics;
   the shift ``s = 4 noise_multiplier Delta sqrt(D)`` keeps the noisy systems positive
   definite.

Each epoch is one Gaussian mechanism on the data; the accountant composes ``epochs``
of them (`jaxrec.privacy.plan`). The guarantee is joint DP: the item factors are
private, each user's factor is only that user's to see.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from flax import nnx

from jaxrec.models.ials import _row_systems
from jaxrec.privacy.accounting import sensitivity  # noqa: F401  (re-exported)
from jaxrec.training.step import TrainState


def keep_at_most(users_E: jax.Array, k: int, key: jax.Array, num_users: int) -> jax.Array:
    """``[E]`` 0/1: a random ``min(n_u, k)`` of every user's interactions."""
    order = jnp.lexsort((jax.random.uniform(key, users_E.shape), users_E))
    start_U = jnp.cumsum(jnp.bincount(users_E, length=num_users)) - jnp.bincount(
        users_E, length=num_users)
    rank_sorted = jnp.arange(users_E.shape[0]) - start_U[users_E[order]]
    rank_E = jnp.zeros_like(rank_sorted).at[order].set(rank_sorted)
    return (rank_E < k).astype(jnp.float32)


def item_statistics(model, w_UxD, users_E, items_E, c_E, key, *, clip_norm: float,
                    max_interactions: int) -> dict[str, jax.Array]:
    """What an epoch releases (before noise), from user factors clipped to ``clip_norm`` and
    at most ``max_interactions`` interactions per user: ``gram`` ``[D, D]``, ``a``
    ``[N, D, D]``, ``b`` ``[N, D]``, ``counts`` ``[N]`` (module docstring, step 3)."""
    num_users, dim = w_UxD.shape
    num_items = model.item_emb_NxD.shape[0]
    norms_U = jnp.linalg.norm(w_UxD, axis=-1, keepdims=True)
    w_UxD = w_UxD * jnp.minimum(1.0, clip_norm / jnp.maximum(norms_U, 1e-12))
    kept_E = c_E * keep_at_most(users_E, max_interactions, key, num_users)
    w_ExD = w_UxD[users_E]
    zeros = jnp.zeros((dim, dim))
    return {"gram": model.unobserved_weight * (w_UxD.T @ w_UxD),
            "a": _row_systems(zeros, w_ExD, items_E, kept_E, jnp.zeros(num_items)),
            "b": jax.ops.segment_sum(kept_E[:, None] * w_ExD, items_E, num_items),
            "counts": jax.ops.segment_sum((kept_E > 0).astype(jnp.float32), items_E,
                                          num_items)}


def private_item_step(model, w_UxD, users_E, items_E, c_E, key, *, clip_norm: float,
                      max_interactions: int, noise_std: float, shift: float):
    """Item factors from noisy statistics of clipped user factors (steps 2-4 above)."""
    k_keep, k_noise = jax.random.split(key)
    stats = item_statistics(model, w_UxD, users_E, items_E, c_E, k_keep, clip_norm=clip_norm,
                            max_interactions=max_interactions)
    keys = dict(zip(sorted(stats), jax.random.split(k_noise, len(stats)), strict=True))
    noisy = {name: x + noise_std * jax.random.normal(keys[name], x.shape)
             for name, x in stats.items()}
    symmetric = lambda x: (x + jnp.swapaxes(x, -1, -2)) / 2  # post-processing
    dim = w_UxD.shape[1]
    reg_N = model.reg * (jnp.maximum(noisy["counts"], 0.0)
                         + model.unobserved_weight * w_UxD.shape[0]) ** model.reg_exponent
    a_NxDxD = (symmetric(noisy["a"]) + symmetric(noisy["gram"])[None]
               + (reg_N + shift)[:, None, None] * jnp.eye(dim)[None])
    return jax.vmap(lambda a, b: jsl.cho_solve(jsl.cho_factor(a), b))(a_NxDxD, noisy["b"])


def make_private_als_epoch_fn(graphdef, plan):
    """The jitted private-iALS epoch, with the signature of
    `jaxrec.training.step.make_solver_epoch_fn` (``with_first``: the loss twice)."""

    def epoch(state, data, hparams, perm_NbxB, mask_NbxB, key):
        del hparams, perm_NbxB, mask_NbxB
        model = nnx.merge(graphdef, state.params, state.rest)
        users_E, items_E = data["users"], data["items"]
        c_E = 1.0 + model.alpha * data["ratings"] if model.alpha else jnp.ones(users_E.shape)
        w_UxD, h_NxD = model.user_emb_UxD[...], model.item_emb_NxD[...]
        reg_U = model._row_reg(users_E, w_UxD.shape[0], h_NxD.shape[0])
        w_UxD = model._solve_side(w_UxD, h_NxD, users_E, items_E, c_E, reg_U)
        h_NxD = private_item_step(model, w_UxD, users_E, items_E, c_E, key,
                                  clip_norm=plan.clip_norm, max_interactions=plan.per_unit,
                                  noise_std=plan.noise_multiplier * plan.sensitivity,
                                  shift=plan.shift)
        model.user_emb_UxD[...], model.item_emb_NxD[...] = w_UxD, h_NxD
        reg_N = model._row_reg(items_E, h_NxD.shape[0], w_UxD.shape[0])
        value = model.objective(w_UxD, h_NxD, users_E, items_E, c_E, reg_U, reg_N)  # not private
        _, params, rest = nnx.split(model, nnx.Param, ...)
        return TrainState(params, rest, state.opt_state, state.step + 1), jnp.stack([value, value])

    return jax.jit(epoch, donate_argnums=0)
