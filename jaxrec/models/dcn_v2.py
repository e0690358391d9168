"""DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network and Practical Lessons
for Web-scale Learning to Rank Systems"): explicit feature crosses plus an MLP.

The input is the concatenation of the field embeddings of a (user, item) pair, ``x_0 =
[v_1; ...; v_F]`` in R^{F D} (user id, user feature fields, with ``history`` the user's
history profile, item id, item feature fields; ``FieldEmbeddings``). Each cross layer
(paper eq. 1) is::

    x_{l+1} = x_0 * (W_l x_l + b_l) + x_l          (* elementwise)

with a full-rank ``W_l`` or, with ``rank=r``, the low-rank ``W_l = U_l V_l^T`` (eq. 2,
``U_l, V_l`` in R^{FD x r}). ``structure="parallel"`` feeds ``x_0`` to the cross network
and to a ReLU MLP side by side and concatenates their outputs; ``"stacked"`` puts the
MLP on top of the cross network. A final linear layer gives the logit.

The id field of an item without training interactions is zero (``Features.item_warm``),
so a cold item is scored from its features. The first cross layer's ``W_0 x_0`` (and,
in parallel, the first MLP layer) splits into user and item terms, computed once per
user and per item in full ranking (``score_all``, ``block`` users at a time).
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

STRUCTURES = ("parallel", "stacked")


class CrossLayer(nnx.Module):
    """``x_{l+1} = x_0 * (W x_l + b) + x_l``; ``W`` full rank or ``U V^T`` of rank ``rank``."""

    def __init__(self, width: int, rank: int | None, *, rngs: nnx.Rngs):
        self.down = nnx.Linear(width, rank, use_bias=False, rngs=rngs) if rank else None
        self.out = nnx.Linear(rank or width, width, rngs=rngs)

    def first(self, x: jax.Array, start: int, *, bias: bool) -> jax.Array:
        """The share of input columns ``[start, start + X)`` in ``W x`` (``V^T x`` when low
        rank): :func:`~jaxrec.models.layers.fields.partial_dense` of the first layer."""
        if self.down is not None:
            return partial_dense(self.down, x, start, bias=False)
        return partial_dense(self.out, x, start, bias=bias)

    def finish(self, x0: jax.Array, mixed: jax.Array, x: jax.Array) -> jax.Array:
        """``x_0 * (W x + b) + x`` from ``mixed``, the summed :meth:`first` terms."""
        if self.down is not None:
            mixed = self.out(mixed)
        return x0 * mixed + x

    def __call__(self, x0: jax.Array, x: jax.Array) -> jax.Array:
        return self.finish(x0, self.first(x, 0, bias=True), x)


class DCNv2(FieldInteractionModel):
    """Cross network and MLP over the concatenated field embeddings, one logit per pair.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary.
      ctx.features: item (and optionally user) features; None: the user and item id fields only.
      dim: field embedding dimension D (the cross width is F * D).
      cross_layers: number of cross layers (>= 1).
      rank: None for full-rank ``W``, else the rank r of ``U V^T``.
      hidden: ReLU layers of the deep network (empty: cross network only).
      structure: ``parallel`` (cross and deep side by side) or ``stacked`` (deep on cross).
      init_std: standard deviation of the embedding initialisers.
      item_ids: include the item-id field (masked for cold items).
      history: add the user's history profile (``Features.history``) as a user field.
      context: context fields of each interaction as extra user (request) fields:
        ``hour``, ``weekday``, ``gap`` and extra interaction columns of the data (e.g.
        ``device``); training rows use their own, scoring the user's request
        (`jaxrec.models.layers.context`). Empty: none.
      block: users per block in ``score_all`` (bounds the ``[block, N, F D]`` tensors).
      rngs: Flax random streams.
    """

    default_loss: ClassVar[str] = "bce"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("bce", "mse", "bpr")

    def __init__(self, ctx: ModelContext, *, dim: int = 16,
                 cross_layers: int = 2, rank: int | None = None,
                 hidden: Sequence[int] = (64, 32), structure: str = "parallel",
                 init_std: float = 0.05, item_ids: bool = True, history: bool = False,
                 context: Sequence[str] = (), block: int = 32, rngs: nnx.Rngs):
        info = ctx.info
        features = ctx.features
        if structure not in STRUCTURES:
            raise ValueError(f"model.structure={structure!r} must be one of "
                             f"{', '.join(STRUCTURES)}")
        check_positive_int("cross_layers", cross_layers)
        if rank is not None:
            check_positive_int("rank", rank)
        hidden = check_positive_ints("hidden", hidden)
        self.block = check_positive_int("block", block)
        self.structure = structure
        self.fields = FieldEmbeddings(info, features, dim, init_std=init_std,
                                      item_ids=item_ids, history=history,
                                      context=tuple(context), train=ctx.train, rngs=rngs)
        self.scores_cold_items = self.fields.scores_cold_items
        self.scores_cold_users = self.fields.scores_cold_users
        width = self.fields.num_fields * dim
        self.cross = nnx.List([CrossLayer(width, rank, rngs=rngs) for _ in range(cross_layers)])
        sizes = [width, *hidden]
        self.deep = nnx.List([nnx.Linear(a, b, rngs=rngs)
                              for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        out = (width + sizes[-1] if hidden else width) if structure == "parallel" else sizes[-1]
        self.logit = nnx.Linear(out, 1, rngs=rngs)

    def _parts(self, fields_xFxD: jax.Array, start: int) -> dict:
        """One side's terms: its slice of ``x_0`` and its share of the first layers."""
        x = fields_xFxD.reshape(fields_xFxD.shape[:-2] + (-1,))
        bias = start > 0  # the item side carries the biases
        parts = {"x0": x, "cross": self.cross[0].first(x, start, bias=bias)}
        if self.structure == "parallel" and len(self.deep):
            parts["deep"] = partial_dense(self.deep[0], x, start, bias=bias)
        return parts

    def user_parts(self, users: jax.Array, context: jax.Array | None = None) -> dict:
        return self._parts(self.fields.users(users, context)[0], 0)

    def item_parts(self, items: jax.Array) -> dict:
        return self._parts(self.fields.items(items)[0],
                           self.fields.num_user_fields * self.fields.dim)

    def _deep(self, h: jax.Array, first: int) -> jax.Array:
        """ReLU layers ``deep[first:]`` (``h`` is the first layer's output when ``first=1``)."""
        if first:
            h = jax.nn.relu(h)
        for layer in self.deep[first:]:
            h = jax.nn.relu(layer(h))
        return h

    def combine(self, u: dict, i: dict) -> jax.Array:
        """Logits of broadcastable user / item parts (:meth:`user_parts`, :meth:`item_parts`)."""
        shape = jnp.broadcast_shapes(u["x0"].shape[:-1], i["x0"].shape[:-1])
        x0 = jnp.concatenate([jnp.broadcast_to(u["x0"], shape + u["x0"].shape[-1:]),
                              jnp.broadcast_to(i["x0"], shape + i["x0"].shape[-1:])], axis=-1)
        x = self.cross[0].finish(x0, u["cross"] + i["cross"], x0)
        for layer in self.cross[1:]:
            x = layer(x0, x)
        if self.structure == "stacked":
            out = self._deep(x, 0)
        elif len(self.deep):
            out = jnp.concatenate([x, self._deep(u["deep"] + i["deep"], 1)], axis=-1)
        else:
            out = x
        return self.logit(out)[..., 0]
