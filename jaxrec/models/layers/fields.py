"""Per-field embeddings and the pair-scoring base of the feature-interaction models
(DeepFM, DCN-V2): a (user, item) pair is a list of field vectors, and a score splits
into user and item terms so full ranking computes each side once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.models.layers.context import ContextFields, ContextInputs
from jaxrec.models.layers.features import BagEmbedding, IdEmbedding


class FieldEmbeddings(nnx.Module):
    """One ``D``-vector per field of a (user, item) pair, plus first-order weights, for the
    feature-interaction models (DeepFM, DCN-V2).

    User fields: the user id, then each user feature field; item fields: the item id,
    then each item feature field (``FeatureBag.slots``). A field with several values
    (genres, tags) is the weighted sum of their embeddings (``BagEmbedding.fields``;
    the bag weights are means by default). The id vector and id weight of an item
    (user) without training interactions are masked to 0 (``Features.item_warm``), so
    a cold item is scored from its feature fields::

        v_id(i) = m_i E[i],   w_id(i) = m_i w[i],   v_f(i) = sum_{l in f} w_il E'[f_il]

    The first-order weight of a side is its id weight plus ``sum_l w_il b[f_il]``. With
    ``history``, the user's history profile (the mean feature bag of its training items,
    ``Features.history``, embedded with the item feature table) is one more user field.
    With ``context``, each context field (hour, weekday, gap, an interaction column;
    `jaxrec.models.layers.context`) is one more user (request) field with its own
    first-order weight.

    Args:
      info: dataset summary (vocabulary sizes).
      features: item (and optionally user) features; None: the two id fields only.
      dim: embedding dimension D.
      init_std: standard deviation of the normal embedding initialisers.
      item_ids: include the item-id field (False: items are their features only).
      history: add the user's history profile as a user field (needs item features).
      context: context fields of each interaction (empty: none).
      train: the training interactions (read only with ``context``).
      rngs: Flax random streams.
    """

    def __init__(self, info, features, dim: int, *, init_std: float = 0.05,
                 item_ids: bool = True, history: bool = False, context: Sequence[str] = (),
                 train: Any = None, rngs: nnx.Rngs):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"model.dim={dim!r} must be a positive int")
        has = features is not None
        item_bag, user_bag = (features.item, features.user) if has else (None, None)
        self.scores_cold_items = item_bag is not None
        self.scores_cold_users = user_bag is not None
        self.num_items, self.dim = info.num_items, dim
        self.user_id = IdEmbedding(features.user_warm if has else np.ones(info.num_users), dim,
                                   init_std=init_std, rngs=rngs)
        self.item_id = (IdEmbedding(features.item_warm if has else np.ones(info.num_items), dim,
                                    init_std=init_std, rngs=rngs)
                        if item_ids or item_bag is None else None)
        self.user_feats, self.item_feats = (
            BagEmbedding(bag, dim, init_std=init_std, bias=True, rngs=rngs)
            if bag is not None else None for bag in (user_bag, item_bag))
        self.history = (BagEmbedding(features.history, dim, table=self.item_feats, rngs=rngs)
                        if history and item_bag is not None else None)
        # created last: without context the parameters (and their keys) are unchanged
        self.context = (ContextFields(train, context, info.num_users, dim, init_std=init_std,
                                      bias=True, rngs=rngs) if context else None)
        self.num_user_fields = (1 + (len(user_bag.slots) if user_bag is not None else 0)
                                + int(self.history is not None)
                                + (self.context.num_fields if self.context is not None else 0))
        self.num_item_fields = (int(self.item_id is not None)
                                + (len(item_bag.slots) if item_bag is not None else 0))
        self.num_fields = self.num_user_fields + self.num_item_fields

    @staticmethod
    def _side(rows: jax.Array, ids: IdEmbedding | None, bag: BagEmbedding | None
              ) -> tuple[jax.Array, jax.Array]:
        parts, w = [], jnp.zeros(rows.shape)
        if ids is not None:
            v, w = ids(rows)
            parts.append(v[..., None, :])
        if bag is not None:
            parts.append(bag.fields(rows))
            w = w + bag.bias(rows)
        return jnp.concatenate(parts, axis=-2), w

    def users(self, users: jax.Array, context: jax.Array | None = None
              ) -> tuple[jax.Array, jax.Array]:
        """``(fields [..., F_u, D], first-order weight [...])`` of ``users`` (any shape);
        ``context`` ``users.shape + (C,)``: the rows' context ids (None: the request table)."""
        fields, w = self._side(users, self.user_id, self.user_feats)
        if self.history is not None:
            fields = jnp.concatenate([fields, self.history.fields(users)], axis=-2)
        if self.context is not None:
            fields = jnp.concatenate([fields, self.context.fields(users, context)], axis=-2)
            w = w + self.context.first_order(users, context)
        return fields, w

    def items(self, items: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(fields [..., F_i, D], first-order weight [...])`` of ``items`` (any shape)."""
        return self._side(items, self.item_id, self.item_feats)

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        """The embedding and weight rows the batch uses (per-batch L2 penalty)."""
        rows = []
        for ids, bag, idx in ((self.user_id, self.user_feats, users),
                              (self.item_id, self.item_feats, items)):
            rows += ids.l2_rows(idx) if ids is not None else []
            rows += bag.l2_rows(idx) if bag is not None else []
        return rows


class FieldInteractionModel(ContextInputs, nnx.Module):
    """Base of the models that score a pair from per-side terms of their
    :class:`FieldEmbeddings` (DeepFM, DCN-V2): ``score(u, i) = combine(user_parts(u),
    item_parts(i))``, where the parts are pytrees of ``[..., X]`` arrays and ``combine``
    broadcasts them. Subclasses set ``fields``, ``block`` and define the three methods;
    ``user_parts`` takes the rows' context ids (`jaxrec.models.layers.context`).
    """

    fields: FieldEmbeddings
    block: int
    context_path = "fields.context"

    def user_parts(self, users: jax.Array, context: jax.Array | None = None) -> dict:
        raise NotImplementedError

    def item_parts(self, items: jax.Array) -> dict:
        raise NotImplementedError

    def combine(self, u: dict, i: dict) -> jax.Array:
        raise NotImplementedError

    def __call__(self, users: jax.Array, items: jax.Array, context: jax.Array | None = None
                 ) -> jax.Array:
        """Logits ``[...]`` of (user, item) index arrays of broadcastable shapes;
        ``context`` ``users.shape + (C,)``: per-row context ids (None: the request table)."""
        aligned, items = align_ranks(users, items)
        if context is not None:
            context = context.reshape(aligned.shape + context.shape[-1:])
        return self.combine(self.user_parts(aligned, context), self.item_parts(items))

    def score_all(self, users_U: jax.Array) -> jax.Array:
        """``[U, N]`` logits over the catalogue (item terms computed once, ``block`` users
        at a time)."""
        return blocked_pair_scores(self.combine, self.user_parts(users_U),
                                   self.item_parts(jnp.arange(self.fields.num_items)), self.block)

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return self.fields.l2_rows(users, items)


def partial_dense(layer: nnx.Linear, x: jax.Array, start: int, *, bias: bool) -> jax.Array:
    """``x @ W[start:start + x.shape[-1]]`` (``+ b`` with ``bias``): the share of the input
    columns ``[start, start + X)`` in ``layer(x_full)``.

    A layer over a concatenation splits into per-side terms, ``layer([a, b]) =
    partial_dense(layer, a, 0, bias=False) + partial_dense(layer, b, len(a), bias=True)``,
    so full ranking computes the user and item terms once and adds them per pair.
    """
    out = x @ layer.kernel[...][start:start + x.shape[-1]]
    if not bias:
        return out
    return out + layer.bias[...].reshape((1,) * (out.ndim - 1) + (-1,))


def align_ranks(users: jax.Array, items: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Left-pad the lower-rank index array with 1-sized axes, so the two broadcast without
    rank promotion (``[B]`` with ``[B, M]`` is an error, not a silent outer product)."""
    ndim = max(users.ndim, items.ndim)
    return (users.reshape((1,) * (ndim - users.ndim) + users.shape),
            items.reshape((1,) * (ndim - items.ndim) + items.shape))


def blocked_pair_scores(combine, user_parts, item_parts, block: int) -> jax.Array:
    """``[U, N]`` scores of every (user, item) pair, ``block`` users at a time.

    ``combine(u, i)`` scores broadcastable per-side pytrees (leaves ``[..., X]``);
    it gets user leaves ``[b, 1, X]`` and item leaves ``[1, N, X]``, so the pair
    tensors it builds are at most ``[block, N, X]`` (``lax.map`` over user blocks).

    Args:
      combine: the model's pair function.
      user_parts: pytree of ``[U, ...]`` per-user terms.
      item_parts: pytree of ``[N, ...]`` per-item terms (computed once).
      block: users per block.
    """
    num_users = jax.tree.leaves(user_parts)[0].shape[0]
    items = jax.tree.map(lambda a: a[None], item_parts)

    def score(u):
        return combine(jax.tree.map(lambda a: a[:, None], u), items)

    if num_users <= block:
        return score(user_parts)
    num_blocks = -(-num_users // block)
    pad = num_blocks * block - num_users

    def blocks(a):
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape((num_blocks, block) + a.shape[1:])

    scores_KxBxN = jax.lax.map(score, jax.tree.map(blocks, user_parts))
    return scores_KxBxN.reshape(num_blocks * block, -1)[:num_users]
