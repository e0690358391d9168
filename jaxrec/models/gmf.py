"""Generalized matrix factorisation, GMF (He et al. 2017, "Neural Collaborative Filtering").

``score(u, i) = h^T (p_u * q_i) + b``: an element-wise product of the user and
item embeddings weighted by a learned output vector ``h``. The score is a
logit; train with ``loss=bce`` (the paper: 4 sampled negatives per positive).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext


class GMF(nnx.Module):
    """GMF: ``h^T (p_u * q_i) + b``.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      dim: embedding dimension D (the paper's "predictive factors").
      init_std: standard deviation of the normal initialiser of the embeddings
        (the paper: 0.01).
      head: include the output layer ``(h, b)``. ``False`` builds the GMF branch
        of :class:`~jaxrec.models.neumf.NeuMF`, whose output layer is shared.
      rngs: Flax random streams (``params`` is used).
    """

    default_loss: ClassVar[str] = "bce"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("bce", "bpr", "sampled_softmax")
    init_from_info: ClassVar[bool] = True  # builds from ctx.info alone (jitted init)

    def __init__(self, ctx: ModelContext, *, dim: int = 32, init_std: float = 0.01,
                 head: bool = True, rngs: nnx.Rngs):
        info = ctx.info
        if dim < 1:
            raise ValueError(f"model.dim: must be >= 1, got {dim}")
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
        self.dim = dim
        self.head = head
        if head:
            # lecun_uniform, as the reference implementation's prediction layer
            bound = (3.0 / dim) ** 0.5
            self.out_kernel_D = nnx.Param(jax.random.uniform(rngs.params(), (dim,),
                                                             minval=-bound, maxval=bound))
            self.out_bias = nnx.Param(jnp.zeros(()))

    def weighted(self, users: jax.Array, items: jax.Array, kernel_D: jax.Array) -> jax.Array:
        """``kernel^T (p_u * q_i)`` for same-shaped index arrays (any leading shape)."""
        p = self.user_emb_UxD[...][users]
        kernel = kernel_D.reshape((1,) * (p.ndim - 1) + (-1,))  # explicit: no rank promotion
        return jnp.sum(p * kernel * self.item_emb_NxD[...][items], axis=-1)

    def weighted_all(self, users_U: jax.Array, kernel_D: jax.Array) -> jax.Array:
        """``kernel^T (p_u * q_i)`` for every item: ``[U, N]``."""
        return (self.user_emb_UxD[...][users_U] * kernel_D[None, :]) @ self.item_emb_NxD[...].T

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        users = jnp.broadcast_to(users, items.shape)
        return self.weighted(users, items, self.out_kernel_D[...]) + self.out_bias[...]

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.weighted_all(users_U, self.out_kernel_D[...]) + self.out_bias[...]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        rows = [self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]]
        if self.head:
            # h joins the penalty (once per example): p * q * h is invariant to scaling p, q
            # down and h up, so an L2 on the embeddings alone could be dodged.
            rows.append(jnp.broadcast_to(self.out_kernel_D[...], (users.shape[0], self.dim)))
        return rows
