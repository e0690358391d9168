"""SASRec (Kang and McAuley 2018, "Self-Attentive Sequential Recommendation", ICDM).

Each user is their time-ordered training history; the model holds the last
``max_len + 1`` items of it as a left-padded table (padding index ``N``).
A stack of causal self-attention blocks reads the sequence; the hidden state
``h_t`` at position t predicts the item at ``t + 1`` with the logit
``r_{t,j} = <h_t, e_j>`` (item embeddings shared with the input)::

    x_0   = drop(E[s] * sqrt(D) + P) * valid
    q     = LN(x);  x = q + MHA_causal(q, x, x)          (per block, as the reference code)
    x     = (LN(x) + FFN(LN(x))) * valid;   h = LN(x)

Training (``loss=sequence_bce``, batch kind ``users``) uses inputs
``s[:-1]`` and targets ``s[1:]`` of the stored table: every position is a
next-item example. Scoring uses the last ``max_len`` items ``s[1:]`` and the
state at the last position, so the prediction is for the item after the whole
history: the training one for validation, train + valid for test on a leave-last
split (``seq[:-1]`` predicts ``seq[-1]``; `jaxrec.metrics.inputs`). Attention is causal (query
t sees keys <= t) and ignores padded keys, so a prediction never depends on
later items.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.data.features.context import CONTEXT_SIZES, context_values
from jaxrec.models.base import ModelContext
from jaxrec.models.layers.history import UserHistory, dropout, sequence_slots, sequence_tables


def sequence_table(train: Any, num_users: int, num_items: int, length: int) -> np.ndarray:
    """int32 ``[U, length]``: each user's last ``length`` training items in time order,
    left-padded with ``num_items`` (`jaxrec.models.layers.history.sequence_tables`)."""
    return sequence_tables(train, num_users, num_items, length)[0]


class SASRec(nnx.Module):
    """Self-attentive sequential recommender with causal attention.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      dim: hidden size D (item and position embeddings); paper: 50.
      num_blocks: self-attention blocks; paper: 2.
      num_heads: attention heads (``dim`` must divide by it); paper: 1.
      max_len: input length L (longer histories keep their last L items);
        paper: 200 on MovieLens-1M.
      dropout: dropout rate on embeddings, attention weights and the FFN; paper: 0.2.
      l2_norm: L2-normalise the output state and the output item embeddings (Meta's
        generative-recommenders SASRec baseline; train with a low loss.temperature).
      time_features: add hour-of-day, weekday and log time-gap embeddings of each input
        interaction to its position embedding (`jaxrec.data.features.context`).
      ctx.train: the training interactions (``users``, ``items``, ``timestamps``);
        ``jaxrec train`` passes the training split. None: empty histories.
      rngs: Flax random streams (``params`` is used).

    Train with ``loss=sequence_bce`` (batch kind ``users``; the paper's), ``softmax_ce``
    (full softmax), ``sequence_sampled_softmax`` (logQ-corrected) or ``gbce``
    (gSASRec).
    """

    default_loss: ClassVar[str] = "sequence_bce"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = (
        "sequence_bce", "softmax_ce", "sequence_sampled_softmax", "gbce")

    def __init__(self, ctx: ModelContext, *, dim: int = 50, num_blocks: int = 2, num_heads: int = 1,
                 max_len: int = 200, dropout: float = 0.2, l2_norm: bool = False,
                 time_features: bool = False, rngs: nnx.Rngs):
        info = ctx.info
        train = ctx.train
        if dim < 1 or num_heads < 1 or dim % num_heads:
            raise ValueError(f"model.dim: must be a positive multiple of model.num_heads, got "
                             f"{dim} and {num_heads}")
        if max_len < 1 or num_blocks < 0:
            raise ValueError(f"model.max_len / model.num_blocks: must be >= 1 / >= 0, got "
                             f"{max_len} / {num_blocks}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout: must be in [0, 1), got {dropout}")
        self.num_items, self.max_len, self.dim = info.num_items, int(max_len), int(dim)
        self.num_heads, self.dropout_rate = int(num_heads), float(dropout)
        self.l2_norm, self.time_features = bool(l2_norm), bool(time_features)
        init = nnx.initializers.xavier_uniform()
        self.item_emb = nnx.Param(init(rngs.params(), (info.num_items + 1, dim)))  # row N: pad
        self.pos_emb = nnx.Param(init(rngs.params(), (max_len, dim)))
        lin = dict(kernel_init=init, rngs=rngs)
        self.attn_norm = nnx.List([nnx.LayerNorm(dim, epsilon=1e-8, rngs=rngs)
                                   for _ in range(num_blocks)])
        self.qkv = nnx.List([nnx.Linear(dim, 3 * dim, **lin) for _ in range(num_blocks)])
        self.attn_out = nnx.List([nnx.Linear(dim, dim, **lin) for _ in range(num_blocks)])
        self.ffn_norm = nnx.List([nnx.LayerNorm(dim, epsilon=1e-8, rngs=rngs)
                                  for _ in range(num_blocks)])
        self.ffn_in = nnx.List([nnx.Linear(dim, dim, **lin) for _ in range(num_blocks)])
        self.ffn_out = nnx.List([nnx.Linear(dim, dim, **lin) for _ in range(num_blocks)])
        self.final_norm = nnx.LayerNorm(dim, epsilon=1e-8, rngs=rngs)
        self.num_users = info.num_users
        if self.time_features:  # one table, a row range per field
            self.ctx_emb = nnx.Param(init(rngs.params(), (sum(CONTEXT_SIZES.values()), dim)))
        tables = self.history_tables(train)
        self.seq_UxL1 = UserHistory(jnp.asarray(tables["seq_UxL1"]))
        if self.time_features:
            self.ctx_UxL1xC = UserHistory(jnp.asarray(tables["ctx_UxL1xC"]))

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``{"seq_UxL1": [U, max_len + 1]}``: the sequences of ``interactions``
        (`jaxrec.models.base.HistoryInput`; scoring reads the last ``max_len``); with
        ``time_features`` also ``"ctx_UxL1xC"``: their context ids, offset per field."""
        length = self.max_len + 1
        tables = {"seq_UxL1": sequence_table(interactions, self.num_users, self.num_items,
                                             length)}
        if self.time_features:
            ctx = np.zeros((self.num_users, length, len(CONTEXT_SIZES)), np.int32)
            rows, users, cols = sequence_slots(interactions, self.num_users, length)
            if len(rows):
                offsets = np.cumsum([0, *CONTEXT_SIZES.values()])[:-1]
                ctx[users, cols] = context_values(interactions)[rows] + offsets
            tables["ctx_UxL1xC"] = ctx
        return tables

    def encode(self, seq_BxL: jax.Array, key: jax.Array | None = None,
               context_BxLxC: jax.Array | None = None) -> jax.Array:
        """Hidden states ``[B, L, D]`` of left-padded item sequences (padding = N).

        ``key`` None: no dropout (scoring). Causal: ``h_t`` depends on items ``<= t`` only.
        ``context_BxLxC``: offset context ids of each input (``time_features``).
        """
        valid_BxL = seq_BxL != self.num_items
        keys = list(jax.random.split(key, 1 + 3 * len(self.qkv))) if key is not None else None

        def next_key():
            return keys.pop() if keys is not None else None

        length = seq_BxL.shape[-1]
        mask_BxL1 = valid_BxL[..., None].astype(jnp.float32)
        x = self.item_emb[...][seq_BxL] * np.sqrt(self.dim) + self.pos_emb[...][None, -length:]
        if context_BxLxC is not None:
            x = x + jnp.sum(self.ctx_emb[...][context_BxLxC], axis=-2)
        x = dropout(x, self.dropout_rate, next_key()) * mask_BxL1
        causal_1xLxL = jnp.tril(jnp.ones((1, length, length), bool))
        # query t sees real keys <= t; itself always (a fully padded row stays finite)
        allowed_BxLxL = ((causal_1xLxL & valid_BxL[:, None, :])
                         | jnp.eye(length, dtype=bool)[None])
        heads, dh = self.num_heads, self.dim // self.num_heads
        for b in range(len(self.qkv)):
            q_in = self.attn_norm[b](x)
            # one fused projection: queries from LN(x), keys and values from x
            w, bias = self.qkv[b].kernel[...], self.qkv[b].bias[...][None, None, :]
            d = self.dim
            q = q_in @ w[:, :d] + bias[..., :d]
            k = x @ w[:, d:2 * d] + bias[..., d:2 * d]
            v = x @ w[:, 2 * d:] + bias[..., 2 * d:]
            q, k, v = (t.reshape(*t.shape[:-1], heads, dh) for t in (q, k, v))
            logits = jnp.einsum("...qhd,...khd->...hqk", q, k) / np.sqrt(dh)
            logits = jnp.where(allowed_BxLxL[:, None], logits, -1e9)
            weights = dropout(jax.nn.softmax(logits, axis=-1), self.dropout_rate, next_key())
            att = jnp.einsum("...hqk,...khd->...qhd", weights, v).reshape(x.shape)
            x = q_in + self.attn_out[b](att)
            x = self.ffn_norm[b](x)
            hidden = dropout(jax.nn.relu(self.ffn_in[b](x)), self.dropout_rate, next_key())
            x = (x + self.ffn_out[b](hidden)) * mask_BxL1
        return self.normalize(self.final_norm(x))

    def normalize(self, x: jax.Array) -> jax.Array:
        """``x / |x|`` over the last axis when ``l2_norm`` (else ``x``)."""
        if not self.l2_norm:
            return x
        # rsqrt of a clipped squared norm: finite gradients at all-zero (padded) rows
        return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))

    def next_item_states(self, users_B: jax.Array, key: jax.Array, *, train: bool = True
                         ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Per-position hidden states of training users' stored sequences.

        Returns ``(h_BxLxD, targets_BxL, valid_BxL)``: the state at each input position,
        the true next item there and 1 where the position is a real example; the logit
        of item j at a position is ``h . item_vectors(j)``.
        """
        table = self.seq_UxL1[...][users_B]
        inputs_BxL, targets_BxL = table[:, :-1], table[:, 1:]
        h_BxLxD = self.encode_users(users_B, slice(None, -1), key if train else None)
        valid_BxL = (inputs_BxL != self.num_items).astype(jnp.float32)
        return h_BxLxD, targets_BxL, valid_BxL

    def item_vectors(self, items: jax.Array | None = None) -> jax.Array:
        """Output item embeddings ``[..., D]`` of ``items`` (None: all N, ``[N, D]``)."""
        emb = self.item_emb[...]
        return self.normalize(emb[:self.num_items] if items is None else emb[items])

    def next_item_logits(self, users_B: jax.Array, negatives_BxLxM: jax.Array,
                         key: jax.Array, *, train: bool = True
                         ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Per-position training logits of training users' stored sequences.

        Returns ``(pos_BxL, neg_BxLxM, valid_BxL)``: the logit of the true next
        item, of the given negatives, and 1 where the position is a real example.
        """
        h_BxLxD, targets_BxL, valid_BxL = self.next_item_states(users_B, key, train=train)
        pos_BxL = jnp.sum(h_BxLxD * self.item_vectors(targets_BxL), axis=-1)
        neg_BxLxM = jnp.einsum("bld,blmd->blm", h_BxLxD, self.item_vectors(negatives_BxLxM))
        return pos_BxL, neg_BxLxM, valid_BxL

    def encode_users(self, users_B: jax.Array, window: slice, key: jax.Array | None = None
                     ) -> jax.Array:
        """Hidden states ``[B, L, D]`` of the columns ``window`` of the users' stored sequences."""
        context = self.ctx_UxL1xC[...][users_B][:, window] if self.time_features else None
        return self.encode(self.seq_UxL1[...][users_B][:, window], key, context)

    def user_state(self, users: jax.Array) -> jax.Array:
        """The last hidden state ``[..., D]`` of each user's latest ``max_len`` items."""
        h = self.encode_users(users.reshape(-1), slice(1, None))[:, -1]
        return h.reshape(*users.shape, h.shape[-1])

    def score_sequence(self, seq_BxL: jax.Array) -> jax.Array:
        """Scores ``[B, N]`` of the next item after left-padded sequences (padding = N)."""
        return self.encode(seq_BxL)[:, -1] @ self.item_vectors().T

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.user_state(users_U) @ self.item_vectors().T

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        h = self.user_state(users)
        return jnp.sum(h * self.item_vectors(items), axis=-1)  # broadcasts [..., D]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []  # regularise with optim.weight_decay
