"""The classic MovieLens tutorial model: concatenated embeddings and a dense head.

A user embedding and an item embedding (50 each) are concatenated and fed to
an optional stack of ReLU layers, then ``Dense(1)``, trained with MSE. With no
hidden layers (the default) this is the tutorial model; with hidden layers it
is the MLP variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext


class SeedConcat(nnx.Module):
    """Concatenate user and item embeddings, then an MLP ending in ``Dense(1)``.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      user_dim: user embedding size.
      item_dim: item embedding size.
      hidden: sizes of the ReLU hidden layers between the concatenation and
        the output unit (empty: the linear tutorial model).
      init_std: standard deviation of the embedding initialiser.
      rngs: Flax random streams.

    The output is offset by the training mean rating so training starts from
    the mean predictor.
    """

    default_loss: ClassVar[str] = "mse"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("mse", "bce", "bpr")

    def __init__(self, ctx: ModelContext, *, user_dim: int = 50, item_dim: int = 50,
                 hidden: Sequence[int] = (), init_std: float = 0.05, rngs: nnx.Rngs):
        info = ctx.info
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, user_dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, item_dim)))
        sizes = [user_dim + item_dim, *hidden, 1]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.user_dim = user_dim
        self.offset = float(info.rating_mean)

    def _head(self, h: jax.Array) -> jax.Array:
        """Layers after the first pre-activation ``h`` -> scores (last axis dropped)."""
        for layer in self.layers[1:]:
            h = layer(jax.nn.relu(h))
        return h[..., 0] + self.offset

    def _first_layer_parts(self, user_vecs, item_vecs):
        # Dense(concat(u, i)) = u @ W_u + i @ W_i + b: splitting the first kernel lets
        # score_all combine U user rows with N item rows without a [U, N, 2D] concat.
        first = self.layers[0]
        w = first.kernel[...]
        item_part = item_vecs @ w[self.user_dim:]
        bias = first.bias[...].reshape((1,) * (item_part.ndim - 1) + (-1,))
        return user_vecs @ w[: self.user_dim], item_part + bias

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        users = jnp.broadcast_to(users, items.shape)
        u_part, i_part = self._first_layer_parts(self.user_emb_UxD[...][users],
                                                 self.item_emb_NxD[...][items])
        return self._head(u_part + i_part)

    def score_all(self, users_U: jax.Array) -> jax.Array:
        u_part_UxH, i_part_NxH = self._first_layer_parts(self.user_emb_UxD[...][users_U],
                                                         self.item_emb_NxD[...])
        return self._head(u_part_UxH[:, None, :] + i_part_NxH[None, :, :])

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return [self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]]
