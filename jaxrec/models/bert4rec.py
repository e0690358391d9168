"""BERT4Rec (Sun et al. 2019, "BERT4Rec: Sequential Recommendation with Bidirectional
Encoder Representations from Transformer", CIKM).

Each user is their time-ordered training history; the model holds the last ``max_len``
items of it as a left-padded table (padding index ``N``, the [MASK] token ``N + 1``).
A stack of bidirectional (post-LN, BERT) transformer blocks reads the sequence; padded
keys are ignored, every other position attends to every other::

    x_0 = drop(LN(E[s] + P))
    x   = LN(x + drop(MHA(x, x, x)));   x = LN(x + drop(W_2 GELU(W_1 x)))   (per block)
    h   = LN(GELU(W_o x));   r_{t,j} = <h_t, e_j> + b_j     (output tied to E, item bias b)

Training is the Cloze task (``loss=masked_item_ce``, `jaxrec.losses.masked_item_ce`):
each real position is replaced by [MASK] with probability ``loss.mask_prob`` and the
model predicts the true item there with a full softmax over the N items. Scoring appends
[MASK] after the latest ``max_len - 1`` items and ranks items by the logits at that
position: the training history for validation, train + valid for test on a leave-last
split (``seq[:-1]`` predicts ``seq[-1]``; `jaxrec.metrics.inputs`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.history import UserHistory, dropout
from jaxrec.models.sasrec import sequence_table


class BERT4Rec(nnx.Module):
    """Bidirectional transformer trained by masked-item prediction.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info`` (sizes) and
        ``ctx.train`` (the training interactions: ``users``, ``items``, ``timestamps``;
        None: empty histories).
      dim: hidden size D; paper and Petrov and Macdonald (RecSys 2022): 64.
      num_blocks: transformer blocks; paper: 2.
      num_heads: attention heads (``dim`` must divide by it); paper: 2.
      ffn_dim: inner size of the feed-forward layer; paper: 4 D = 256.
      max_len: input length L (longer histories keep their last L items); paper: 200
        on MovieLens-1M.
      dropout: dropout on embeddings, attention and FFN outputs; paper: 0.1.
      rngs: Flax random streams (``params`` is used).

    Train with ``loss=masked_item_ce``.
    """

    default_loss: ClassVar[str] = "masked_item_ce"
    compatible_losses: ClassVar[tuple[str, ...]] = ("masked_item_ce",)

    def __init__(self, ctx: ModelContext, *, dim: int = 64, num_blocks: int = 2,
                 num_heads: int = 2, ffn_dim: int = 256, max_len: int = 200,
                 dropout: float = 0.1, rngs: nnx.Rngs):
        info = ctx.info
        if dim < 1 or num_heads < 1 or dim % num_heads:
            raise ValueError(f"model.dim: must be a positive multiple of model.num_heads, got "
                             f"{dim} and {num_heads}")
        if max_len < 2 or num_blocks < 0 or ffn_dim < 1:
            raise ValueError(f"model.max_len / model.num_blocks / model.ffn_dim: must be >= 2 / "
                             f">= 0 / >= 1, got {max_len} / {num_blocks} / {ffn_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout: must be in [0, 1), got {dropout}")
        self.num_users, self.num_items = info.num_users, info.num_items
        self.mask_token = info.num_items + 1
        self.max_len, self.dim, self.dropout_rate = int(max_len), int(dim), float(dropout)
        init = nnx.initializers.truncated_normal(0.02)  # BERT's initialiser
        self.item_emb = nnx.Param(init(rngs.params(), (info.num_items + 2, dim)))  # N pad, N+1 mask
        self.pos_emb = nnx.Param(init(rngs.params(), (max_len, dim)))
        self.item_bias = nnx.Param(jnp.zeros((info.num_items,)))
        lin = dict(kernel_init=init, rngs=rngs)
        self.emb_norm = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
        self.attn = nnx.List([nnx.MultiHeadAttention(num_heads, dim, qkv_features=dim,
                                                     decode=False, **lin)
                              for _ in range(num_blocks)])
        self.attn_norm = nnx.List([nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
                                   for _ in range(num_blocks)])
        self.ffn_in = nnx.List([nnx.Linear(dim, ffn_dim, **lin) for _ in range(num_blocks)])
        self.ffn_out = nnx.List([nnx.Linear(ffn_dim, dim, **lin) for _ in range(num_blocks)])
        self.ffn_norm = nnx.List([nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
                                  for _ in range(num_blocks)])
        self.head = nnx.Linear(dim, dim, **lin)
        self.head_norm = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
        self.seq_UxL = UserHistory(jnp.asarray(self.history_tables(ctx.train)["seq_UxL"]))

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``{"seq_UxL": [U, max_len]}``: the sequences of ``interactions``
        (`jaxrec.models.base.HistoryInput`; scoring reads the last ``max_len - 1``)."""
        return {"seq_UxL": sequence_table(interactions, self.num_users, self.num_items,
                                          self.max_len)}

    def cloze_sequences(self, users_B: jax.Array) -> jax.Array:
        """The stored training sequences ``[B, L]`` of ``users_B`` (left-padded with N)."""
        return self.seq_UxL[...][users_B]

    def encode(self, seq_BxL: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Output states ``[B, L, D]`` of left-padded sequences (padding N, [MASK] N + 1).

        ``key`` None: no dropout. A position attends to every real (non-padded) position.
        """
        valid_BxL = seq_BxL != self.num_items
        nkeys = 1 + 2 * len(self.attn)
        keys = list(jax.random.split(key, nkeys)) if key is not None else [None] * nkeys
        length = seq_BxL.shape[-1]
        x = self.item_emb[...][seq_BxL] + self.pos_emb[...][None, -length:]
        x = dropout(self.emb_norm(x), self.dropout_rate, keys.pop())
        # padded keys are ignored; every query sees itself (a padded row stays finite)
        allowed_Bx1xLxL = (valid_BxL[:, None, None, :]
                           | jnp.eye(length, dtype=bool)[None, None])
        for b in range(len(self.attn)):
            att = self.attn[b](x, mask=allowed_Bx1xLxL, deterministic=True)
            x = self.attn_norm[b](x + dropout(att, self.dropout_rate, keys.pop()))
            hidden = self.ffn_out[b](jax.nn.gelu(self.ffn_in[b](x), approximate=False))
            x = self.ffn_norm[b](x + dropout(hidden, self.dropout_rate, keys.pop()))
        return self.head_norm(jax.nn.gelu(self.head(x), approximate=False))

    def item_logits(self, h_BxLxD: jax.Array) -> jax.Array:
        """Every item's logit ``[..., N]`` from output states ``[..., D]``."""
        bias = self.item_bias[...].reshape((1,) * (h_BxLxD.ndim - 1) + (-1,))
        return h_BxLxD @ self.item_emb[...][:self.num_items].T + bias

    def scoring_sequence(self, users: jax.Array) -> jax.Array:
        """``[B, L]``: each user's latest ``max_len - 1`` items, then [MASK]."""
        seq = self.seq_UxL[...][users.reshape(-1)][:, 1:]
        return jnp.concatenate([seq, jnp.full((seq.shape[0], 1), self.mask_token, seq.dtype)],
                               axis=1)

    def score_sequence(self, seq_BxL: jax.Array) -> jax.Array:
        """Scores ``[B, N]`` of the next item after left-padded sequences (their latest
        ``max_len - 1`` items, then [MASK])."""
        seq_BxL = seq_BxL[:, -(self.max_len - 1):]
        seq = jnp.concatenate([seq_BxL, jnp.full((seq_BxL.shape[0], 1), self.mask_token,
                                                 seq_BxL.dtype)], axis=1)
        return self.item_logits(self.encode(seq)[:, -1])

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.item_logits(self.encode(self.scoring_sequence(users_U))[:, -1])

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        h = self.encode(self.scoring_sequence(users))[:, -1].reshape(*users.shape, self.dim)
        return jnp.sum(h * self.item_emb[...][items], axis=-1) + self.item_bias[...][items]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []  # regularise with optim.weight_decay
