"""Layers shared by the feature models: constant feature tables, bag embeddings, id
embeddings masked for cold rows, and a plain MLP.

A :class:`FeatureBag` (``jaxrec.data.features``) is stored as two
:class:`FeatureTable` variables (``ids_RxL``, ``weights_RxL``): not
``nnx.Param``, so they are never differentiated or updated, but they travel
with the model state (``TrainState.rest``) and score items the training data
never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.data.features import FeatureBag


class FeatureTable(nnx.Variable):
    """A constant table built from the data (feature ids and weights, warm masks)."""


class BagEmbedding(nnx.Module):
    """``vec_r = sum_l w[r, l] E[ids[r, l]]`` (and ``bias_r = sum_l w[r, l] b[ids[r, l]]``).

    Args:
      bag: the rows' feature bags ``[R, L]`` over a vocabulary of size V.
      dim: embedding dimension D.
      init_std: standard deviation of the normal initialiser of ``E``.
      bias: also learn a scalar per feature.
      table: share the embedding (and bias) of another ``BagEmbedding`` with the
        same vocabulary instead of creating one (e.g. user history profiles over
        the item vocabulary).
      rngs: Flax random streams (``params``).
    """

    def __init__(self, bag: FeatureBag, dim: int, *, init_std: float = 0.05,
                 bias: bool = False, table: BagEmbedding | None = None, rngs: nnx.Rngs):
        self.ids_RxL = FeatureTable(jnp.asarray(bag.ids, jnp.int32))
        self.weights_RxL = FeatureTable(jnp.asarray(bag.weights, jnp.float32))
        self.slots = tuple(bag.slots)
        self.shared = table is not None
        if table is not None:
            if table.emb_VxD.shape[0] != bag.vocab_size:
                raise ValueError(f"shared feature table has {table.emb_VxD.shape[0]} rows, "
                                 f"bag vocabulary has {bag.vocab_size}")
            self.emb_VxD, self.has_bias = table.emb_VxD, table.has_bias
            if table.has_bias:
                self.bias_V = table.bias_V
            return
        init = jax.nn.initializers.normal(init_std)
        self.emb_VxD = nnx.Param(init(rngs.params(), (bag.vocab_size, dim)))
        self.has_bias = bias
        if bias:
            self.bias_V = nnx.Param(jnp.zeros((bag.vocab_size,)))

    def _rows(self, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.ids_RxL[...][rows], self.weights_RxL[...][rows]

    def __call__(self, rows: jax.Array) -> jax.Array:
        """``[..., D]`` pooled vectors of ``rows`` (any shape)."""
        ids, w = self._rows(rows)
        return jnp.einsum("...l,...ld->...d", w, self.emb_VxD[...][ids])

    def all(self) -> jax.Array:
        """``[R, D]`` for every row."""
        return jnp.einsum("rl,rld->rd", self.weights_RxL[...], self.emb_VxD[...][self.ids_RxL[...]])

    def bias(self, rows: jax.Array) -> jax.Array:
        ids, w = self._rows(rows)
        return jnp.sum(w * self.bias_V[...][ids], axis=-1)

    def all_bias(self) -> jax.Array:
        return jnp.sum(self.weights_RxL[...] * self.bias_V[...][self.ids_RxL[...]], axis=-1)

    def fields(self, rows: jax.Array) -> jax.Array:
        """``[..., F, D]``: one pooled vector per field (per ``bag.slots``)."""
        ids, w = self._rows(rows)
        e = self.emb_VxD[...][ids] * w[..., None]
        return jnp.stack([jnp.sum(e[..., s:t, :], axis=-2) for s, t in self.slots], axis=-2)

    def l2_rows(self, rows: jax.Array) -> list[jax.Array]:
        """The embedding rows ``rows`` use (padding zeroed) for the per-batch L2 penalty."""
        ids, w = self._rows(rows)
        used = (w != 0)[..., None].astype(jnp.float32)
        out = [self.emb_VxD[...][ids] * used]
        if self.has_bias:
            out.append(self.bias_V[...][ids] * used[..., 0])
        return out


class MLP(nnx.Module):
    """ReLU layers ``hidden`` then a linear output of size ``out`` (identity when both empty)."""

    def __init__(self, dim_in: int, hidden: Sequence[int], out: int | None, *, rngs: nnx.Rngs):
        sizes = [dim_in, *hidden] + ([out] if out is not None and hidden else [])
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.out_dim = sizes[-1]

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jax.nn.relu(x)
        return x


class IdEmbedding(nnx.Module):
    """``(m_r E[r], m_r w[r])``: an id's embedding and first-order weight, both masked to 0
    for rows without training interactions (``m = warm``: their rows are never trained).

    Args:
      warm: ``[R]`` 1 for rows with training interactions.
      dim: embedding dimension D.
      init_std: standard deviation of the normal initialiser of ``E``.
      rngs: Flax random streams (``params``).
    """

    def __init__(self, warm, dim: int, *, init_std: float, rngs: nnx.Rngs):
        self.warm_R = FeatureTable(jnp.asarray(warm, jnp.float32))
        self.emb_RxD = nnx.Param(jax.nn.initializers.normal(init_std)(rngs.params(),
                                                                     (len(warm), dim)))
        self.w_R = nnx.Param(jnp.zeros((len(warm),)))

    def __call__(self, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``([..., D] vectors, [...] weights)`` of ``rows`` (any shape)."""
        m = self.warm_R[...][rows]
        return m[..., None] * self.emb_RxD[...][rows], m * self.w_R[...][rows]

    def l2_rows(self, rows: jax.Array) -> list[jax.Array]:
        return [self.emb_RxD[...][rows], self.w_R[...][rows]]
