"""Content-based model: an item tower over features only, users from their history.

    v_i = tower(sum_l w_il E[f_il])                  item i's features f, weights w
    u   = tower(sum_f p_uf E[f])    (user="history")  p_u = mean feature bag of u's
                                                     training items (its profile)
    score(u, i) = <u, v_i> + b_i,   b_i = sum_l w_il b[f_il]

With the default linear tower (``hidden: []``) the history user vector is
exactly the mean of the user's training item vectors (for profiles within
``data.features.history_len`` features). ``user="id"`` learns a user embedding
instead, ``user="both"`` adds the two. No parameter belongs to an item id, so an
item without interactions is scored from its features: the model is meant for
item cold start (``data.split.method=cold_item``).

Built without features (``features=None``), the item id is the only item
feature and the user side falls back to ``"id"``: a plain factorisation model
(it then cannot score cold items).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.data.features import id_bag
from jaxrec.models.base import ModelContext
from jaxrec.models.layers.features import MLP, BagEmbedding

USER_MODES = ("history", "id", "both")


class Content(nnx.Module):
    """Item tower over features; user = tower(history profile) and / or a user embedding.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      ctx.features: item features and user history profiles (``data.features``).
      dim: embedding dimension D.
      user: ``history`` | ``id`` | ``both`` (see the module docstring).
      hidden: ReLU layers of the shared tower (empty: linear, exact history means).
      init_std: standard deviation of the embedding initialisers.
      bias: learn a per-feature bias (item popularity from features).
      rngs: Flax random streams.
    """

    default_loss: ClassVar[str] = "sampled_softmax"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("sampled_softmax", "bpr", "bce", "mse")

    def __init__(self, ctx: ModelContext, *, dim: int = 64,
                 user: str = "history", hidden: tuple[int, ...] = (), init_std: float = 0.05,
                 bias: bool = True, rngs: nnx.Rngs):
        info = ctx.info
        features = ctx.features
        if user not in USER_MODES:
            raise ValueError(f"model.user={user!r} must be one of {', '.join(USER_MODES)}")
        item_bag = features.item if features is not None else None
        self.scores_cold_items = item_bag is not None
        if item_bag is None:
            item_bag, user = id_bag(info.num_items), "id"
        self.items = BagEmbedding(item_bag, dim, init_std=init_std, bias=bias, rngs=rngs)
        self.user_mode = user
        if user in ("history", "both"):
            self.history = BagEmbedding(features.history, dim, table=self.items, rngs=rngs)
        if user in ("id", "both"):
            init = jax.nn.initializers.normal(init_std)
            self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.tower = MLP(dim, list(hidden), dim, rngs=rngs)
        self.bias = bias

    def user_vectors(self, users: jax.Array) -> jax.Array:
        """``[..., D]`` user vectors."""
        u = jnp.zeros(users.shape + (self.items.emb_VxD.shape[1],))
        if self.user_mode in ("history", "both"):
            u = self.tower(self.history(users))
        if self.user_mode in ("id", "both"):
            u = u + self.user_emb_UxD[...][users]
        return u

    def item_vectors(self, items: jax.Array) -> jax.Array:
        """``[..., D]`` item vectors (features only)."""
        return self.tower(self.items(items))

    def item_bias(self, items: jax.Array) -> jax.Array:
        return self.items.bias(items) if self.bias else jnp.zeros(items.shape)

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return (jnp.sum(self.user_vectors(users) * self.item_vectors(items), axis=-1)
                + self.item_bias(items))

    def score_all(self, users_U: jax.Array) -> jax.Array:
        v_NxD = self.tower(self.items.all())
        scores_UxN = self.user_vectors(users_U) @ v_NxD.T
        if self.bias:
            scores_UxN = scores_UxN + self.items.all_bias()[None, :]
        return scores_UxN

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        rows = self.items.l2_rows(items)
        if self.user_mode in ("id", "both"):
            rows.append(self.user_emb_UxD[...][users])
        return rows

    def score_candidates(self, users_B: jax.Array, cand_C: jax.Array) -> jax.Array:
        """``[B, C]`` scores of shared candidates (one matmul; sampled softmax)."""
        scores_BxC = self.user_vectors(users_B) @ self.item_vectors(cand_C).T
        return scores_BxC + self.item_bias(cand_C)[None, :]
