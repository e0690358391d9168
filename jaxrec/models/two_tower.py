"""Two-tower retrieval model (Covington et al. 2016; Yi et al. 2019), trained with a
sampled softmax (``loss=sampled_softmax``: in-batch negatives, logQ correction).

    user tower:  u = norm(MLP(m_u e_u + sum E'[user features] + sum E[history profile]))
    item tower:  v = norm(MLP(m_i e_i + sum E[item features]))
    score(u, i) = <u, v>          (cosine with ``normalize``; the loss divides by T)

With ``context`` the user tower also sums the embeddings of the request's context
fields (hour, weekday, gap, extra interaction columns; `jaxrec.models.layers.context`):
each training row's own, and for scoring the user's request table.

``m`` masks ids without training interactions (cold items / users fall back to
their features). The history profile is the mean feature bag of the user's
training items, embedded with the item feature table (so the user tower sees
what the user watched). Full ranking is one ``[U, D] x [D, N]`` matmul.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.context import ContextFields, ContextInputs
from jaxrec.models.layers.features import MLP, BagEmbedding, FeatureTable


class TwoTower(ContextInputs, nnx.Module):
    """User and item towers over ids and features; dot-product (cosine) scores.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      ctx.features: item / user features and history profiles; None: ids only.
      dim: embedding dimension of the tower inputs.
      hidden: ReLU layers of each tower (empty: linear towers).
      out_dim: output dimension (None: ``dim``; used only with ``hidden``).
      item_ids: add an item-id embedding (masked for cold items).
      user_ids: add a user-id embedding (masked for cold users).
      history: add the user's history profile to the user tower.
      normalize: L2-normalise both towers' outputs (cosine scores).
      init_std: standard deviation of the embedding initialisers.
      context: context fields of each interaction added to the user tower's input
        (``hour``, ``weekday``, ``gap``, extra interaction columns). Empty: none.
      rngs: Flax random streams.
    """

    default_loss: ClassVar[str] = "sampled_softmax"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("sampled_softmax", "bpr", "bce")

    def __init__(self, ctx: ModelContext, *, dim: int = 64,
                 hidden: tuple[int, ...] = (), out_dim: int | None = None,
                 item_ids: bool = True, user_ids: bool = True, history: bool = True,
                 normalize: bool = True, init_std: float = 0.05,
                 context: Sequence[str] = (), rngs: nnx.Rngs):
        info = ctx.info
        features = ctx.features
        init = jax.nn.initializers.normal(init_std)
        item_bag = features.item if features is not None else None
        user_bag = features.user if features is not None else None
        self.scores_cold_items = item_bag is not None
        self.scores_cold_users = user_bag is not None or (history and item_bag is not None)
        self.item_ids = item_ids or item_bag is None
        self.user_ids = user_ids or (user_bag is None and not (history and item_bag is not None))
        if self.item_ids:
            self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
            warm = features.item_warm if features is not None else jnp.ones(info.num_items)
            self.item_warm_N = FeatureTable(jnp.asarray(warm, jnp.float32))
        if self.user_ids:
            self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
            warm = features.user_warm if features is not None else jnp.ones(info.num_users)
            self.user_warm_U = FeatureTable(jnp.asarray(warm, jnp.float32))
        self.item_feats = (BagEmbedding(item_bag, dim, init_std=init_std, rngs=rngs)
                           if item_bag is not None else None)
        self.user_feats = (BagEmbedding(user_bag, dim, init_std=init_std, rngs=rngs)
                           if user_bag is not None else None)
        self.history = (BagEmbedding(features.history, dim, table=self.item_feats, rngs=rngs)
                        if history and item_bag is not None else None)
        self.user_tower = MLP(dim, list(hidden), out_dim or dim, rngs=rngs)
        self.item_tower = MLP(dim, list(hidden), out_dim or dim, rngs=rngs)
        self.normalize = normalize
        self.num_items = info.num_items
        self.dim = dim
        # created last: without context the parameters (and their keys) are unchanged
        self.context = (ContextFields(ctx.train, tuple(context), info.num_users, dim,
                                      init_std=init_std, rngs=rngs) if context else None)

    def _out(self, x: jax.Array) -> jax.Array:
        if self.normalize:
            x = x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12)
        return x

    def user_vectors(self, users: jax.Array, context: jax.Array | None = None) -> jax.Array:
        """``[..., D']`` user tower outputs; ``context`` ``users.shape + (C,)``: per-row
        context ids (None: the request table)."""
        x = jnp.zeros(users.shape + (self.dim,))
        if self.context is not None:
            x = x + jnp.sum(self.context.fields(users, context), axis=-2)
        if self.user_ids:
            x = x + self.user_warm_U[...][users][..., None] * self.user_emb_UxD[...][users]
        if self.user_feats is not None:
            x = x + self.user_feats(users)
        if self.history is not None:
            x = x + self.history(users)
        return self._out(self.user_tower(x))

    def item_vectors(self, items: jax.Array) -> jax.Array:
        """``[..., D']`` item tower outputs."""
        x = jnp.zeros(items.shape + (self.dim,))
        if self.item_ids:
            x = x + self.item_warm_N[...][items][..., None] * self.item_emb_NxD[...][items]
        if self.item_feats is not None:
            x = x + self.item_feats(items)
        return self._out(self.item_tower(x))

    def __call__(self, users: jax.Array, items: jax.Array, context: jax.Array | None = None
                 ) -> jax.Array:
        return jnp.sum(self.user_vectors(users, context) * self.item_vectors(items), axis=-1)

    def score_candidates(self, users_B: jax.Array, cand_C: jax.Array,
                         context: jax.Array | None = None) -> jax.Array:
        """``[B, C]`` scores of shared candidates (one matmul; sampled softmax)."""
        return self.user_vectors(users_B, context) @ self.item_vectors(cand_C).T

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.score_candidates(users_U, jnp.arange(self.num_items))

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        rows = []
        if self.user_ids:
            rows.append(self.user_emb_UxD[...][users])
        if self.item_ids:
            rows.append(self.item_emb_NxD[...][items])
        if self.item_feats is not None:
            rows += self.item_feats.l2_rows(items)
        if self.user_feats is not None:
            rows += self.user_feats.l2_rows(users)
        return rows
