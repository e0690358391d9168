"""The MLP of Neural Collaborative Filtering (He et al. 2017).

``score(u, i) = h^T phi(concat(p_u, q_i)) + b`` with ``phi`` a tower of ReLU
layers (the paper halves the width per layer: embeddings 32 + 32 -> 32 -> 16 -> 8
for 8 predictive factors). The score is a logit; train with ``loss=bce``.

The class is ``NCFMLP`` (``jaxrec.models.layers.MLP`` is a plain layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext


class NCFMLP(nnx.Module):
    """NCF's MLP: concatenated user and item embeddings through ReLU layers, then ``Dense(1)``.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      dim: user and item embedding size D each (the first layer sees ``2 D``).
      hidden: widths of the ReLU layers; the last is the number of predictive
        factors the output layer reads.
      init_std: standard deviation of the normal initialiser of the embeddings.
      head: include the output layer ``(h, b)``. ``False`` builds the MLP branch
        of :class:`~jaxrec.models.neumf.NeuMF`, whose output layer is shared.
      rngs: Flax random streams (``params`` is used).
    """

    default_loss: ClassVar[str] = "bce"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("bce", "bpr")
    init_from_info: ClassVar[bool] = True  # builds from ctx.info alone (jitted init)

    def __init__(self, ctx: ModelContext, *, dim: int = 32, hidden: Sequence[int] = (32, 16, 8),
                 init_std: float = 0.01, head: bool = True, rngs: nnx.Rngs):
        info = ctx.info
        hidden = [int(h) for h in hidden]
        if dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"model.hidden: need dim >= 1 and at least one layer of width >= 1, "
                             f"got dim={dim}, hidden={hidden}")
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
        sizes = [2 * dim, *hidden]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.dim = dim
        self.hidden = tuple(hidden)
        self.head = head
        if head:
            bound = (3.0 / hidden[-1]) ** 0.5  # lecun_uniform, as the reference implementation
            self.out_kernel_H = nnx.Param(jax.random.uniform(rngs.params(), (hidden[-1],),
                                                             minval=-bound, maxval=bound))
            self.out_bias = nnx.Param(jnp.zeros(()))

    def _first_layer_parts(self, user_vecs, item_vecs):
        # Dense(concat(p, q)) = p @ W_p + q @ W_q + b: score_all then adds U user rows to
        # N item rows instead of building a [U, N, 2D] concatenation.
        first = self.layers[0]
        w = first.kernel[...]
        item_part = item_vecs @ w[self.dim:]
        bias = first.bias[...].reshape((1,) * (item_part.ndim - 1) + (-1,))
        return user_vecs @ w[: self.dim], item_part + bias

    def _rest(self, h: jax.Array) -> jax.Array:
        h = jax.nn.relu(h)
        for layer in self.layers[1:]:
            h = jax.nn.relu(layer(h))
        return h

    def tower(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Last hidden layer ``[..., H]`` for same-shaped index arrays."""
        u_part, i_part = self._first_layer_parts(self.user_emb_UxD[...][users],
                                                 self.item_emb_NxD[...][items])
        return self._rest(u_part + i_part)

    def tower_all(self, users_U: jax.Array) -> jax.Array:
        """Last hidden layer for every item: ``[U, N, H]``."""
        u_part_UxH, i_part_NxH = self._first_layer_parts(self.user_emb_UxD[...][users_U],
                                                         self.item_emb_NxD[...])
        return self._rest(u_part_UxH[:, None, :] + i_part_NxH[None, :, :])

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        users = jnp.broadcast_to(users, items.shape)
        return self.tower(users, items) @ self.out_kernel_H[...] + self.out_bias[...]

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.tower_all(users_U) @ self.out_kernel_H[...] + self.out_bias[...]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return [self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]]
