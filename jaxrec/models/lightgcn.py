"""LightGCN (He et al. 2020): linear graph propagation over the user-item graph.

With ``A = [[0, R], [R^T, 0]]`` the bipartite adjacency of the training
interactions ``R`` (users x items, 0/1) and ``D`` its degree matrix, the layers
are ``E^(k+1) = D^-1/2 A D^-1/2 E^(k)`` from the free embeddings ``E^(0)``, and
the final embeddings are their mean ``(E^(0) + ... + E^(K)) / (K + 1)``;
``score(u, i) = <e_u, e_i>``. Train with ``loss=bpr``.

The normalised adjacency is never materialised: it is the edge list (one entry
per distinct training pair, weight ``1 / sqrt(d_u d_i)``), and one layer is two sparse
products over it (items -> users, users -> items; `jaxrec.models.layers.ops.edge_sum`,
in cache-sized chunks on CPU), ``O(E D)`` on device. The gradient runs the same
propagation on the cotangents (the operator is symmetric; see ``_propagate``).

``score_all`` propagates on every call and keeps no cache: inside the evaluator's
``lax.scan`` over user blocks the propagation is loop-invariant and XLA hoists it
out of the loop (the compiled validation program holds all ``2 K`` segment sums
in its entry computation, none in the loop body), so one evaluation pass
propagates once. Measured on ml-latest-small (2-core CPU, shared): one
propagation 55 ms; a validation pass 131 ms with 3 user blocks, 112 ms with one.
The negatives-based losses (bpr, bce) score a positive and its negatives in one
model call, so a gradient step propagates once (two calls, which XLA does not merge,
took 170 ms per step against 107 ms for one shared propagation, batch 4096).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.ops import edge_sum

EDGE_KEYS = tuple(f"{order}_{col}" for order in ("by_user", "by_item")
                  for col in ("users", "items", "weight"))


class GraphEdges(nnx.Variable):
    """Constant graph arrays: carried in the model's non-parameter state, never trained."""


def normalized_edges(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int
                     ) -> dict[str, np.ndarray]:
    """The symmetric-normalised bipartite adjacency as edge lists (host, numpy).

    Duplicate pairs count once. Returns ``by_user_*`` (sorted by user) and
    ``by_item_*`` (sorted by item) copies of ``users``, ``items`` (int32) and
    ``weight`` (float32, ``1 / sqrt(d_u d_i)``), each ``[E]``.
    """
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    if users.size and (users.min() < 0 or users.max() >= num_users
                       or items.min() < 0 or items.max() >= num_items):
        raise ValueError(f"model.train: indices out of range for {num_users} users x "
                         f"{num_items} items")
    keys = np.unique(users * num_items + items)  # sorted by user, then item
    users, items = keys // num_items, keys % num_items
    deg_u = np.bincount(users, minlength=num_users).astype(np.float64)
    deg_i = np.bincount(items, minlength=num_items).astype(np.float64)
    weight = 1.0 / np.sqrt(deg_u[users] * deg_i[items]) if keys.size else np.zeros(0)
    by_item = np.argsort(items, kind="stable")
    out = {}
    for prefix, order in (("by_user", slice(None)), ("by_item", by_item)):
        out[f"{prefix}_users"] = users[order].astype(np.int32)
        out[f"{prefix}_items"] = items[order].astype(np.int32)
        out[f"{prefix}_weight"] = weight[order].astype(np.float32)
    return out


class LightGCN(nnx.Module):
    """LightGCN: mean of K linear propagation layers of free user and item embeddings.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      dim: embedding dimension D.
      num_layers: propagation layers K (0 gives plain MF).
      init_std: standard deviation of the normal initialiser of ``E^(0)``
        (the reference implementation: 0.1).
      ctx.train: the training interactions the graph is built from (an
        ``Interactions``, or anything with int ``users`` and ``items`` arrays);
        ``jaxrec train`` passes the training split. None: a graph without edges,
        for shape tests only (every layer past ``E^(0)`` is then zero).
      rngs: Flax random streams (``params`` is used).

    The L2 penalty (``loss.l2``) applies to the rows of ``E^(0)`` a batch uses,
    as in the paper.
    """

    default_loss: ClassVar[str] = "bpr"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("bpr", "bce", "sampled_softmax")

    def __init__(self, ctx: ModelContext, *, dim: int = 64, num_layers: int = 3,
                 init_std: float = 0.1, rngs: nnx.Rngs):
        info = ctx.info
        train = ctx.train
        if num_layers < 0:
            raise ValueError(f"model.num_layers: must be >= 0, got {num_layers}")
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (info.num_users, dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
        self.num_layers = num_layers
        empty = np.zeros(0, np.int32)
        users, items = (empty, empty) if train is None else (train.users, train.items)
        edges = normalized_edges(users, items, info.num_users, info.num_items)
        for key, value in edges.items():
            setattr(self, f"{key}_E", GraphEdges(jnp.asarray(value)))

    def propagate(self) -> tuple[jax.Array, jax.Array]:
        """Final embeddings ``(users_UxD, items_NxD)``: the mean of layers 0..K."""
        g = {key: getattr(self, f"{key}_E")[...] for key in EDGE_KEYS}
        return _propagate(self.user_emb_UxD[...], self.item_emb_NxD[...], g, self.num_layers)

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        users = jnp.broadcast_to(users, items.shape)
        users_UxD, items_NxD = self.propagate()
        return jnp.sum(users_UxD[users] * items_NxD[items], axis=-1)

    def score_all(self, users_U: jax.Array) -> jax.Array:
        users_UxD, items_NxD = self.propagate()
        return users_UxD[users_U] @ items_NxD.T

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return [self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]]


def _layers(users_UxD, items_NxD, g, num_layers: int) -> tuple[jax.Array, jax.Array]:
    """``(E^(0) + ... + E^(K)) / (K + 1)`` of ``E^(0) = (users, items)``."""
    num_users, num_items = users_UxD.shape[0], items_NxD.shape[0]
    sum_u, sum_i = users_UxD, items_NxD
    for _ in range(num_layers):
        # one layer of D^-1/2 A D^-1/2: items -> users and users -> items
        users_UxD, items_NxD = (
            edge_sum(items_NxD, g["by_user_items"], g["by_user_users"], g["by_user_weight"],
                     num_users),
            edge_sum(users_UxD, g["by_item_users"], g["by_item_items"], g["by_item_weight"],
                     num_items))
        sum_u, sum_i = sum_u + users_UxD, sum_i + items_NxD
    scale = 1.0 / (num_layers + 1)
    return sum_u * scale, sum_i * scale


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _propagate(users_UxD, items_NxD, g, num_layers: int) -> tuple[jax.Array, jax.Array]:
    """:func:`_layers` with its own gradient: the propagation is linear and symmetric
    (``(sum_k L^k / (K + 1))^T = sum_k L^k / (K + 1)`` for the symmetric-normalised
    adjacency ``L``), so the gradient propagates the cotangents through the same sorted
    edge lists. Autodiff's transpose scatters into the other side's unsorted rows and
    took ~18% longer per step (ml-1m-sized graph, 2 layers, 2-core CPU)."""
    return _layers(users_UxD, items_NxD, g, num_layers)


def _propagate_fwd(users_UxD, items_NxD, g, num_layers):
    return _layers(users_UxD, items_NxD, g, num_layers), g


def _propagate_bwd(num_layers, g, cotangents):
    grad_u, grad_i = _layers(cotangents[0], cotangents[1], g, num_layers)
    return grad_u, grad_i, None  # the graph is constant


_propagate.defvjp(_propagate_fwd, _propagate_bwd)
