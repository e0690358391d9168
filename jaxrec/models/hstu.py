"""HSTU (Zhai et al. 2024, "Actions Speak Louder than Words: Trillion-Parameter Sequential
Transducers for Generative Recommendations", ICML), as in Meta's
``facebookresearch/generative-recommenders`` (``research/modeling/sequential/hstu.py``).

Each user is their time-ordered training history with its timestamps (two left-padded
``[U, max_len + 1]`` tables, `jaxrec.models.layers.history.sequence_tables`). Input
``x_0 = drop(E[s] * sqrt(D) + P) * valid``; then per HSTU layer (LN without affine
parameters, eps 1e-6)::

    U, V, Q, K = split(SiLU(LN(x) W_uvqk))                     (no bias)
    A          = SiLU(Q K^T + rab^{p,t}) / L * causal          (pointwise, no softmax)
    x          = x + W_o drop(LN(A V) * U) + b_o

with a relative attention bias per layer from positions and log-bucketised time gaps::

    rab[i, j] = w_pos[L - 1 + j - i] + w_time[bucket(t'_i - t_j)]
    bucket(d) = clip(floor(log(max(|d|, 1)) / 0.301), 0, num_buckets)

where ``t'_i`` is the time of position ``i + 1`` (the next action, the query's request
time; the last position uses its own time), exactly as Meta's
``RelativeBucketedTimeAndPositionBasedBias``. So the state at position i reads the items
at positions <= i and the times at positions <= i + 1; the scoring state (last
position) reads no held-out time. The output state and the output item embeddings (shared
with the input table) are L2-normalised (``l2_norm``; Meta's ``l2_norm`` user embedding
norm and ``item_l2_norm``), so train with a low softmax temperature (Meta: 0.05).

Training and scoring follow SASRec (`jaxrec.models.sasrec.SASRec`): inputs ``s[:-1]`` predict
``s[1:]``; scoring reads the last ``max_len`` items and times.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.history import UserHistory, dropout, sequence_tables
from jaxrec.models.sasrec import SASRec

LOG_BASE = 0.301  # Meta's bucketization_fn: log(|dt|) / 0.301, i.e. about log2 of seconds


def time_buckets(dt: jax.Array, num_buckets: int) -> jax.Array:
    """int32 buckets ``clip(floor(log(max(|dt|, 1)) / 0.301), 0, num_buckets)`` of time gaps."""
    gap = jnp.maximum(jnp.abs(dt).astype(jnp.float32), 1.0)
    return jnp.clip(jnp.floor(jnp.log(gap) / LOG_BASE), 0, num_buckets).astype(jnp.int32)


def relative_bias(pos_w: jax.Array, time_w: jax.Array, times_BxL: jax.Array) -> jax.Array:
    """``rab[b, i, j]`` ``[B, L, L]`` from position weights ``[2 M - 1]`` (M >= L) and time
    weights ``[num_buckets + 1]`` (formula in the module docstring)."""
    length = times_BxL.shape[-1]
    center = (pos_w.shape[0] - 1) // 2
    offsets = np.arange(length)[None, :] - np.arange(length)[:, None]  # j - i
    pos_LxL = pos_w[center + offsets]
    query_t = jnp.concatenate([times_BxL[:, 1:], times_BxL[:, -1:]], axis=1)
    buckets = time_buckets(query_t[:, :, None] - times_BxL[:, None, :], time_w.shape[0] - 1)
    return pos_LxL[None] + time_w[buckets]


def layer_norm(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Layer normalisation over the last axis without affine parameters."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps)


def hstu_attention(u, v, q, k, rab_BxLxL, allowed_BxLxL, num_heads: int) -> jax.Array:
    """``LN(A V) * U`` with ``A = SiLU(Q K^T + rab) / L * allowed`` per head.

    ``u, v``: ``[B, L, H dv]``; ``q, k``: ``[B, L, H dqk]``; returns ``[B, L, H dv]``.
    """
    length = q.shape[1]
    q4, k4, v4 = (t.reshape(*t.shape[:2], num_heads, -1) for t in (q, k, v))
    qk = jnp.einsum("bnhd,bmhd->bhnm", q4, k4) + rab_BxLxL[:, None]
    attn = jax.nn.silu(qk) / length * allowed_BxLxL[:, None]
    av = jnp.einsum("bhnm,bmhd->bnhd", attn, v4).reshape(u.shape)
    return layer_norm(av) * u


class HSTU(SASRec):
    """Hierarchical Sequential Transduction Units over item and time sequences.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`): ``ctx.info`` (sizes) and
        ``ctx.train`` (``users``, ``items``, ``timestamps``; None: empty histories).
      dim: item embedding size D; Meta ml-1m: 50.
      num_blocks: HSTU layers; Meta ml-1m: 2 (8 in "HSTU-large").
      num_heads: heads; Meta ml-1m: 1.
      attention_dim: per-head size of Q and K (dqk); Meta: 50.
      linear_dim: per-head size of U and V (dv); Meta: 50.
      max_len: input length L; Meta ml-1m: 200.
      dropout: on the input embeddings and before the output projection; Meta: 0.2.
      num_buckets: time-gap buckets (plus one clipped bucket); Meta: 128.
      l2_norm: L2-normalise the output state and the output item embeddings.
      rngs: Flax random streams (``params``).

    Train with ``loss=sequence_sampled_softmax`` (Meta: 128 uniform negatives,
    temperature 0.05) or ``softmax_ce`` (with a low ``loss.temperature`` when ``l2_norm``).
    """

    def __init__(self, ctx: ModelContext, *, dim: int = 50, num_blocks: int = 2,
                 num_heads: int = 1, attention_dim: int = 50, linear_dim: int = 50,
                 max_len: int = 200, dropout: float = 0.2, num_buckets: int = 128,
                 l2_norm: bool = True, rngs: nnx.Rngs):
        for name, value in (("dim", dim), ("num_heads", num_heads), ("max_len", max_len),
                            ("attention_dim", attention_dim), ("linear_dim", linear_dim),
                            ("num_buckets", num_buckets)):
            if int(value) != value or value < 1:
                raise ValueError(f"model.{name}: must be a positive integer, got {value}")
        if num_blocks < 0:
            raise ValueError(f"model.num_blocks: must be >= 0, got {num_blocks}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout: must be in [0, 1), got {dropout}")
        info = ctx.info
        self.num_items, self.num_users = info.num_items, info.num_users
        self.dim, self.max_len, self.num_heads = int(dim), int(max_len), int(num_heads)
        self.attention_dim, self.linear_dim = int(attention_dim), int(linear_dim)
        self.dropout_rate, self.l2_norm = float(dropout), bool(l2_norm)
        self.time_features = False  # HSTU reads time through its attention bias
        normal = nnx.initializers.normal(0.02)
        self.item_emb = nnx.Param(nnx.initializers.truncated_normal(0.02)(
            rngs.params(), (info.num_items + 1, dim)))  # row N: pad
        self.pos_emb = nnx.Param(nnx.initializers.truncated_normal(0.02)(
            rngs.params(), (max_len, dim)))
        width = 2 * num_heads * (linear_dim + attention_dim)
        self.uvqk = nnx.List([nnx.Param(normal(rngs.params(), (dim, width)))
                              for _ in range(num_blocks)])
        self.out = nnx.List([nnx.Linear(num_heads * linear_dim, dim, rngs=rngs,
                                        kernel_init=nnx.initializers.xavier_uniform())
                             for _ in range(num_blocks)])
        self.pos_w = nnx.List([nnx.Param(normal(rngs.params(), (2 * max_len - 1,)))
                               for _ in range(num_blocks)])
        self.time_w = nnx.List([nnx.Param(normal(rngs.params(), (num_buckets + 1,)))
                                for _ in range(num_blocks)])
        tables = self.history_tables(ctx.train)
        self.seq_UxL1 = UserHistory(jnp.asarray(tables["seq_UxL1"]))
        self.time_UxL1 = UserHistory(jnp.asarray(tables["time_UxL1"]))

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``{"seq_UxL1", "time_UxL1"}``: items and times ``[U, max_len + 1]`` of
        ``interactions`` (`jaxrec.models.base.HistoryInput`)."""
        seq, times = sequence_tables(interactions, self.num_users, self.num_items,
                                     self.max_len + 1)
        return {"seq_UxL1": seq, "time_UxL1": times}

    def encode(self, seq_BxL: jax.Array, times_BxL: jax.Array | None = None,
               key: jax.Array | None = None) -> jax.Array:
        """Output states ``[B, L, D]`` of left-padded sequences (padding = N) and their
        int32 times (None: all equal). ``key`` None: no dropout."""
        if times_BxL is None:
            times_BxL = jnp.zeros(seq_BxL.shape, jnp.int32)
        keys = list(jax.random.split(key, 1 + len(self.uvqk))) if key is not None else None
        length = seq_BxL.shape[-1]
        valid_BxL = seq_BxL != self.num_items
        mask = valid_BxL[..., None].astype(jnp.float32)
        x = self.item_emb[...][seq_BxL] * np.sqrt(self.dim) + self.pos_emb[...][None, -length:]
        x = dropout(x, self.dropout_rate, keys.pop() if keys else None) * mask
        causal = jnp.tril(jnp.ones((1, length, length), bool))
        allowed = (causal & valid_BxL[:, None, :]).astype(jnp.float32)
        split = np.cumsum([self.linear_dim, self.linear_dim, self.attention_dim])
        for b in range(len(self.uvqk)):
            uvqk = jax.nn.silu(layer_norm(x) @ self.uvqk[b][...])
            u, v, q, k = jnp.split(uvqk, self.num_heads * split, axis=-1)
            rab = relative_bias(self.pos_w[b][...], self.time_w[b][...], times_BxL)
            o = hstu_attention(u, v, q, k, rab, allowed, self.num_heads)
            o = dropout(o, self.dropout_rate, keys.pop() if keys else None)
            x = (x + self.out[b](o)) * mask  # padded rows stay 0 (Meta: jagged, no rows)
        return self.normalize(x)

    def encode_users(self, users_B: jax.Array, window: slice, key: jax.Array | None = None
                     ) -> jax.Array:
        return self.encode(self.seq_UxL1[...][users_B][:, window],
                           self.time_UxL1[...][users_B][:, window], key)

    def score_sequence(self, seq_BxL: jax.Array, times_BxL: jax.Array | None = None
                       ) -> jax.Array:
        """Scores ``[B, N]`` of the next item after left-padded sequences and times."""
        return self.encode(seq_BxL, times_BxL)[:, -1] @ self.item_vectors().T
