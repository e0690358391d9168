"""Training-free TF-IDF content baseline (the classic content-based recommender;
Pazzani and Billsus 2007, "Content-Based Recommendation Systems").

    x_i  = tf_i * idf,  idf_f = log((1 + N) / (1 + df_f)) + 1
    x_i <- x_i / ((1 - s) * pivot + s * ||x_i||)      (pivoted length normalisation)
    P_u  = sum_{i in train(u)} r_ui x_i               (rating-weighted profile)
    score(u, i) = <P_u, x_i> / ||P_u||

With the slope ``s = 1`` (``pivot_slope``, the default) the score is the
cosine similarity of the textbook baseline. Cosine favours items with short
feature vectors (Singhal, Buckley and Mitra 1996, "Pivoted Document Length
Normalization"): on MovieLens those are the obscure items (no tags, few title
words), while held-out interactions go mostly to the richly described popular
ones, so on the item cold-start split cosine ranks below even an uninformed
ordering (NDCG@10 0.038 vs popularity's 0.071). ``s < 1`` normalises towards
the mean norm ``pivot``; ``s = 0`` is the plain dot product with the unit
user profile, chosen on validation by ``configs/experiment/tfidf_cold_item.yaml``
(cold-item NDCG@10 0.147; see docs/benchmarks.md).

``tf`` is the item's feature bag (``data.features``: genre flags, tag counts,
title tokens, year bucket). One closed-form :meth:`solve_epoch` builds the
profiles (``loss=none``, ``trainer.epochs=1``). ``center=true`` subtracts each
user's mean rating first, so disliked items push the profile away.

Memory: dense ``[N, V]`` item vectors and ``[U, V]`` profiles (V = feature
vocabulary; ml-latest-small with genres, year, tags and title: about 3,300).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.data.features import id_bag
from jaxrec.models.base import ModelContext
from jaxrec.models.layers.features import FeatureTable


class TfIdf(nnx.Module):
    """Cosine (or pivoted) similarity of a user's rating-weighted TF-IDF profile and each
    item's TF-IDF vector.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      ctx.features: item features (None: the item id is the only feature).
      idf: weight features by inverse document frequency.
      center: weight items by the rating minus the user's mean rating.
      pivot_slope: item length normalisation slope in [0, 1]: 1 cosine, 0 none.
      rngs: unused (deterministic); kept for the common signature.
    """

    default_loss: ClassVar[str] = "none"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(self, ctx: ModelContext, *, idf: bool = True,
                 center: bool = False, pivot_slope: float = 1.0, rngs: nnx.Rngs):
        info = ctx.info
        features = ctx.features
        del rngs
        if not 0.0 <= pivot_slope <= 1.0:
            raise ValueError(f"model.pivot_slope: must be in [0, 1], got {pivot_slope}")
        bag = features.item if features is not None and features.item is not None else None
        self.scores_cold_items = bag is not None
        bag = bag if bag is not None else id_bag(info.num_items)
        x = bag.dense().astype(np.float64)
        if idf:
            df = (x > 0).sum(0)
            x = x * (np.log((1 + x.shape[0]) / (1 + df)) + 1.0)[None, :]
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        pivot = norm[norm > 0].mean() if np.any(norm > 0) else 1.0
        x = x / np.maximum((1.0 - pivot_slope) * pivot + pivot_slope * norm, 1e-12)
        self.items_NxV = FeatureTable(jnp.asarray(x, jnp.float32))
        self.center = center
        self.profiles_UxV = nnx.Param(jnp.zeros((info.num_users, x.shape[1]), jnp.float32))

    def solve_epoch(self, data: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        """Build the unit-norm user profiles; returns 0 (there is no objective)."""
        del key
        users, items, r = data["users"], data["items"], data["ratings"]
        num_users = self.profiles_UxV.shape[0]
        if self.center:
            total = jax.ops.segment_sum(r, users, num_segments=num_users)
            count = jax.ops.segment_sum(jnp.ones_like(r), users, num_segments=num_users)
            r = r - (total / jnp.maximum(count, 1.0))[users]
        p = jax.ops.segment_sum(r[:, None] * self.items_NxV[...][items], users,
                                num_segments=num_users)
        norm = jnp.linalg.norm(p, axis=1, keepdims=True)
        self.profiles_UxV[...] = p / jnp.maximum(norm, 1e-12)
        return jnp.zeros(())

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return jnp.sum(self.profiles_UxV[...][users] * self.items_NxV[...][items], axis=-1)

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.profiles_UxV[...][users_U] @ self.items_NxV[...].T

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []

