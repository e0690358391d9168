"""Biased matrix factorisation (Koren, Bell and Volinsky 2009).

``score(u, i) = mu + b_u + b_i + <p_u, q_i>``
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext


class MF(nnx.Module):
    """Biased MF: global mean, user and item biases, and a dot product.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes, training rating mean).
      dim: embedding dimension D.
      init_std: standard deviation of the normal initialiser of the factors.
      use_bias: include the global mean and user / item biases. The global
        mean starts at the training mean rating.
      bias_l2_scale: the L2 penalty on the bias terms relative to the factors
        (the global mean is never penalised).
      rngs: Flax random streams (``params`` is used).
    """

    default_loss: ClassVar[str] = "mse"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("mse", "bce", "bpr", "sampled_softmax")
    init_from_info: ClassVar[bool] = True  # builds from ctx.info alone (jitted init)
    sparse_rows: ClassVar[bool] = True  # user/item tables get gradient only at batch rows

    def __init__(self, ctx: ModelContext, *, dim: int = 64, init_std: float = 0.01,
                 use_bias: bool = True, bias_l2_scale: float = 0.1, rngs: nnx.Rngs):
        info = ctx.info
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
        self.use_bias = use_bias
        self.bias_l2_scale = bias_l2_scale
        if use_bias:
            self.user_bias_U = nnx.Param(jnp.zeros((info.num_users,)))
            self.item_bias_N = nnx.Param(jnp.zeros((info.num_items,)))
            self.global_bias = nnx.Param(jnp.asarray(info.rating_mean, jnp.float32))

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        p = self.user_emb_UxD[...][users]
        q = self.item_emb_NxD[...][items]
        scores = jnp.sum(p * q, axis=-1)
        if self.use_bias:
            scores = (scores + self.user_bias_U[...][users] + self.item_bias_N[...][items]
                      + self.global_bias[...])
        return scores

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.score_factors(self.user_factors(users_U), users_U)

    def user_factors(self, users_B: jax.Array) -> jax.Array:
        """The trained user vectors ``[B, D]`` (`jaxrec.models.base.UserFactors`)."""
        return self.user_emb_UxD[...][users_B]

    def score_factors(self, p_BxD: jax.Array, users_B: jax.Array) -> jax.Array:
        """Scores ``[B, N]`` of user vectors ``p_BxD`` (with the users' biases)."""
        scores_BxN = p_BxD @ self.item_emb_NxD[...].T
        if self.use_bias:
            scores_BxN = (scores_BxN + self.user_bias_U[...][users_B][:, None]
                          + self.item_bias_N[...][None, :] + self.global_bias[...])
        return scores_BxN

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        rows = [self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]]
        if self.use_bias:
            scale = self.bias_l2_scale ** 0.5  # rows are squared by the regulariser
            rows += [scale * self.user_bias_U[...][users], scale * self.item_bias_N[...][items]]
        return rows
