"""DeepFM (Guo et al. 2017, "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction"): a factorisation machine and an MLP over the same field embeddings.

Fields of a (user, item) pair: user id, user feature fields (with ``history``, also the
user's history profile), item id, item feature fields, each a vector ``v_f`` in R^D (a
multi-valued field such as genres or tags is the weighted mean of its values'
embeddings; see ``FieldEmbeddings``)::

    y(u, i) = w_0 + sum_f w_f                                  first order
            + 1/2 sum_d [(sum_f v_fd)^2 - sum_f v_fd^2]         FM: sum_{f<g} <v_f, v_g>
            + MLP([v_1; ...; v_F])                              deep part, ReLU, -> R

The id field of an item without training interactions is zero (``Features.item_warm``),
so a cold item is scored from its features. The FM term splits into user and item
parts, ``<S_u, S_i> + fm(u) + fm(i)`` with ``S = sum_f v_f``, and so does the first MLP
layer, so full ranking computes per-user and per-item terms once and adds them per
pair (``score_all``, ``block`` users at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.checks import check_positive_int, check_positive_ints
from jaxrec.models.layers.fields import FieldEmbeddings, FieldInteractionModel, partial_dense


def fm_second_order(fields_xFxD: jax.Array) -> jax.Array:
    """``[...]`` FM pairwise term ``sum_{f<g} <v_f, v_g> = 1/2 sum_d [(sum_f v_fd)^2 -
    sum_f v_fd^2]`` of field vectors ``[..., F, D]`` (Rendle 2010, Lemma 3.1)."""
    sum_xD = jnp.sum(fields_xFxD, axis=-2)
    return 0.5 * (jnp.sum(sum_xD * sum_xD, axis=-1) - jnp.sum(fields_xFxD ** 2, axis=(-2, -1)))


class DeepFM(FieldInteractionModel):
    """FM over field embeddings plus an MLP over their concatenation (shared embeddings).

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      ctx.features: item (and optionally user) features; None: the user and item id fields only.
      dim: field embedding dimension D.
      hidden: ReLU layers of the deep part, followed by a linear output (empty: plain FM).
      init_std: standard deviation of the embedding initialisers.
      item_ids: include the item-id field (masked for cold items).
      history: add the user's history profile (``Features.history``) as a user field.
      context: context fields of each interaction as extra user (request) fields:
        ``hour``, ``weekday``, ``gap`` and extra interaction columns of the data (e.g.
        ``device``); training rows use their own, scoring the user's request
        (`jaxrec.models.layers.context`). Empty: none.
      block: users per block in ``score_all`` (bounds the ``[block, N, hidden]`` tensors).
      rngs: Flax random streams.
    """

    default_loss: ClassVar[str] = "bce"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("bce", "mse", "bpr")

    def __init__(self, ctx: ModelContext, *, dim: int = 16,
                 hidden: Sequence[int] = (64, 32), init_std: float = 0.05,
                 item_ids: bool = True, history: bool = False,
                 context: Sequence[str] = (), block: int = 32, rngs: nnx.Rngs):
        info = ctx.info
        features = ctx.features
        hidden = check_positive_ints("hidden", hidden)
        self.block = check_positive_int("block", block)
        self.fields = FieldEmbeddings(info, features, dim, init_std=init_std,
                                      item_ids=item_ids, history=history,
                                      context=tuple(context), train=ctx.train, rngs=rngs)
        self.scores_cold_items = self.fields.scores_cold_items
        self.scores_cold_users = self.fields.scores_cold_users
        self.bias = nnx.Param(jnp.zeros(()))
        width = self.fields.num_fields * dim
        self.deep_in = nnx.Linear(width, hidden[0], rngs=rngs) if hidden else None
        sizes = [*hidden, 1]
        self.deep = nnx.List([nnx.Linear(a, b, rngs=rngs)
                              for a, b in zip(sizes[:-1], sizes[1:], strict=True)])

    def _parts(self, fields_xFxD: jax.Array, first_order: jax.Array, start: int) -> dict:
        """One side's terms: field sum ``S``, its own first-order + FM terms, deep input."""
        parts = {"sum": jnp.sum(fields_xFxD, axis=-2),
                 "own": first_order + fm_second_order(fields_xFxD)}
        if self.deep_in is not None:
            flat = fields_xFxD.reshape(fields_xFxD.shape[:-2] + (-1,))
            parts["deep"] = partial_dense(self.deep_in, flat, start, bias=start > 0)
        return parts

    def user_parts(self, users: jax.Array, context: jax.Array | None = None) -> dict:
        return self._parts(*self.fields.users(users, context), 0)

    def item_parts(self, items: jax.Array) -> dict:
        return self._parts(*self.fields.items(items), self.fields.num_user_fields
                           * self.fields.dim)

    def combine(self, u: dict, i: dict) -> jax.Array:
        """Logits of broadcastable user / item parts (:meth:`user_parts`, :meth:`item_parts`)."""
        logit = self.bias[...] + jnp.sum(u["sum"] * i["sum"], axis=-1) + u["own"] + i["own"]
        if self.deep_in is not None:
            h = u["deep"] + i["deep"]
            for layer in self.deep:
                h = layer(jax.nn.relu(h))
            logit = logit + h[..., 0]
        return logit
