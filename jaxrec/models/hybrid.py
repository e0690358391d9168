"""Hybrid factorisation (LightFM; Kula 2015, "Metadata Embeddings for User and Item
Cold-start Recommendations").

A user or item is the sum of the embeddings of its features, its own id among them::

    q_i = m_i e_i + sum_l w_il E[f_il],      b_i = m_i c_i + sum_l w_il c[f_il]
    p_u = m_u e_u + sum_l w_ul E'[g_ul],     b_u likewise
    score(u, i) = <p_u, q_i> + b_u + b_i

``m_i`` is 1 for items with training interactions and 0 otherwise (the same
for users): the id embedding of an item nobody rated is never trained, so a
cold item falls back to its features.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.features import BagEmbedding, FeatureTable


class Hybrid(nnx.Module):
    """LightFM-style sum of id and feature embeddings, with biases.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      ctx.features: item (and optionally user) features; None: ids only (plain biased MF).
      dim: embedding dimension D.
      init_std: standard deviation of the embedding initialisers.
      item_ids: include the item-id embedding (False: items are their features only).
      rngs: Flax random streams.
    """

    default_loss: ClassVar[str] = "sampled_softmax"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("sampled_softmax", "bpr", "bce")

    def __init__(self, ctx: ModelContext, *, dim: int = 64,
                 init_std: float = 0.05, item_ids: bool = True, rngs: nnx.Rngs):
        info = ctx.info
        features = ctx.features
        init = jax.nn.initializers.normal(init_std)
        item_bag = features.item if features is not None else None
        user_bag = features.user if features is not None else None
        self.scores_cold_items = item_bag is not None
        self.scores_cold_users = user_bag is not None
        self.item_ids = item_ids or item_bag is None
        if self.item_ids:
            self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
            self.item_bias_N = nnx.Param(jnp.zeros((info.num_items,)))
            warm = features.item_warm if features is not None else jnp.ones(info.num_items)
            self.item_warm_N = FeatureTable(jnp.asarray(warm, jnp.float32))
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.user_bias_U = nnx.Param(jnp.zeros((info.num_users,)))
        warm = features.user_warm if features is not None else jnp.ones(info.num_users)
        self.user_warm_U = FeatureTable(jnp.asarray(warm, jnp.float32))
        self.item_feats = (BagEmbedding(item_bag, dim, init_std=init_std, bias=True, rngs=rngs)
                           if item_bag is not None else None)
        self.user_feats = (BagEmbedding(user_bag, dim, init_std=init_std, bias=True, rngs=rngs)
                           if user_bag is not None else None)

    def item_vectors(self, items: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``([..., D] vectors, [...] biases)`` of ``items``."""
        q = jnp.zeros(items.shape + (self.user_emb_UxD.shape[1],))
        b = jnp.zeros(items.shape)
        if self.item_ids:
            m = self.item_warm_N[...][items]
            q = q + m[..., None] * self.item_emb_NxD[...][items]
            b = b + m * self.item_bias_N[...][items]
        if self.item_feats is not None:
            q, b = q + self.item_feats(items), b + self.item_feats.bias(items)
        return q, b

    def user_vectors(self, users: jax.Array) -> tuple[jax.Array, jax.Array]:
        m = self.user_warm_U[...][users]
        p = m[..., None] * self.user_emb_UxD[...][users]
        b = m * self.user_bias_U[...][users]
        if self.user_feats is not None:
            p, b = p + self.user_feats(users), b + self.user_feats.bias(users)
        return p, b

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        p, bu = self.user_vectors(users)
        q, bi = self.item_vectors(items)
        return jnp.sum(p * q, axis=-1) + bu + bi

    def score_all(self, users_U: jax.Array) -> jax.Array:
        p_UxD, bu_U = self.user_vectors(users_U)
        q_NxD, bi_N = self.item_vectors(jnp.arange(self._num_items()))
        return p_UxD @ q_NxD.T + bu_U[:, None] + bi_N[None, :]

    def _num_items(self) -> int:
        if self.item_ids:
            return self.item_emb_NxD.shape[0]
        return self.item_feats.ids_RxL.shape[0]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        rows = [self.user_emb_UxD[...][users], self.user_bias_U[...][users]]
        if self.item_ids:
            rows += [self.item_emb_NxD[...][items], self.item_bias_N[...][items]]
        if self.item_feats is not None:
            rows += self.item_feats.l2_rows(items)
        if self.user_feats is not None:
            rows += self.user_feats.l2_rows(users)
        return rows

    def score_candidates(self, users_B: jax.Array, cand_C: jax.Array) -> jax.Array:
        """``[B, C]`` scores of shared candidates (one matmul; sampled softmax)."""
        p_BxD, bu_B = self.user_vectors(users_B)
        q_CxD, bi_C = self.item_vectors(cand_C)
        return p_BxD @ q_CxD.T + bu_B[:, None] + bi_C[None, :]
