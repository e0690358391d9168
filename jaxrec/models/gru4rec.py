"""GRU4Rec (Hidasi et al. 2016, "Session-based Recommendations with Recurrent Neural
Networks", ICLR; Hidasi and Karatzoglou 2018, "Recurrent Neural Networks with Top-k Gains
for Session-based Recommendations", CIKM; Hidasi and Czapp 2023, "The Effect of Third
Party Implementations on Reproducibility", RecSys).

Each user's time-ordered training history is one session; the model holds its last
``max_len + 1`` items as a left-padded table (padding index ``N``). An item embedding
feeds a stack of GRU layers (`flax.nnx.GRUCell`); the state ``h_t`` after item ``s_t``
scores the next item against output item embeddings ``W_y`` plus an item bias::

    x_t = drop_e(E[s_t])          (E = W_y: constrained_embedding, the reference default)
    h_t = GRU(h_{t-1}, x_t)       per layer, h_0 = 0, the state stays 0 over padding;
                                  drop_h between layers and on the output
    r_{t,j} = <h_t, W_y[j]> + b_j

Training (batch kind ``users``) uses inputs ``s[:-1]`` and targets ``s[1:]`` of the
stored table: every position is a next-item example. The reference losses (TOP1-max,
BPR-max, cross-entropy over the mini-batch's targets plus shared samples drawn by
popularity^alpha: `jaxrec.losses.minibatch_negatives`) or the full softmax
(``softmax_ce``) train it. Scoring feeds the last ``max_len`` items and ranks by the
state after the latest one (train + valid for test on a leave-last split). The state at
t is a function of items ``<= t`` only (a left-to-right scan).
The reference's one-hot GRU input (``embedding=0``, unconstrained) is not offered: it
equals a separate input embedding of the hidden size (``constrained_embedding=false``).
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


class GRU4Rec(nnx.Module):
    """Recurrent next-item recommender.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info`` (sizes) and
        ``ctx.train`` (training interactions with ``timestamps``; None: empty histories).
      dim: GRU hidden size D (every layer); reference: 100 (up to 512 in its best
        parameter files).
      num_layers: stacked GRU layers; reference: 1.
      constrained_embedding: the input embedding is the output one ``W_y`` (reference
        default); false: a separate input table of ``embedding`` columns.
      embedding: input embedding size when not constrained (0: D).
      dropout_embed: dropout on the input embedding; reference: 0.0 - 0.5.
      dropout_hidden: dropout on each layer's output states; reference: 0.0 - 0.5.
      max_len: input length L (longer histories keep their last L items).
      rngs: Flax random streams (``params`` is used).
    """

    default_loss: ClassVar[str] = "bpr_max"
    compatible_losses: ClassVar[tuple[str, ...]] = (
        "bpr_max", "top1_max", "minibatch_ce", "softmax_ce", "sequence_sampled_softmax")

    def __init__(self, ctx: ModelContext, *, dim: int = 100, num_layers: int = 1,
                 constrained_embedding: bool = True, embedding: int = 0,
                 dropout_embed: float = 0.0, dropout_hidden: float = 0.0, max_len: int = 200,
                 rngs: nnx.Rngs):
        info = ctx.info
        if dim < 1 or num_layers < 1 or max_len < 1 or embedding < 0:
            raise ValueError(f"model.dim / num_layers / max_len / embedding: must be >= 1 / "
                             f">= 1 / >= 1 / >= 0, got {dim} / {num_layers} / {max_len} / "
                             f"{embedding}")
        for name, rate in (("dropout_embed", dropout_embed), ("dropout_hidden", dropout_hidden)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"model.{name}: must be in [0, 1), got {rate}")
        self.num_users, self.num_items = info.num_users, info.num_items
        self.max_len, self.dim = int(max_len), int(dim)
        self.dropout_embed, self.dropout_hidden = float(dropout_embed), float(dropout_hidden)
        self.constrained = bool(constrained_embedding)
        init = nnx.initializers.xavier_uniform()
        self.out_emb = nnx.Param(init(rngs.params(), (info.num_items + 1, dim)))  # row N: pad
        self.out_bias = nnx.Param(jnp.zeros((info.num_items + 1,)))
        in_dim = dim if self.constrained else (embedding or dim)
        if not self.constrained:
            self.in_emb = nnx.Param(init(rngs.params(), (info.num_items + 1, in_dim)))
        self.cells = nnx.List([nnx.GRUCell(in_dim if i == 0 else dim, dim, rngs=rngs)
                               for i in range(num_layers)])
        self.seq_UxL1 = UserHistory(jnp.asarray(self.history_tables(ctx.train)["seq_UxL1"]))

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``{"seq_UxL1": [U, max_len + 1]}``: the sequences of ``interactions``
        (`jaxrec.models.base.HistoryInput`; scoring reads the last ``max_len``)."""
        return {"seq_UxL1": sequence_table(interactions, self.num_users, self.num_items,
                                           self.max_len + 1)}

    def encode(self, seq_BxL: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """GRU output states ``[B, L, D]`` of left-padded sequences (padding = N).

        ``key`` None: no dropout. The state at t reads items ``<= t`` only; it is 0 over
        the padding before the first item.
        """
        valid_LxB = (seq_BxL != self.num_items).T
        keys = (list(jax.random.split(key, 1 + len(self.cells))) if key is not None
                else [None] * (1 + len(self.cells)))
        table = self.out_emb[...] if self.constrained else self.in_emb[...]
        x_LxBxI = dropout(table[seq_BxL.T], self.dropout_embed, keys.pop())
        for cell in self.cells:
            def step(h_BxD, inputs, cell=cell):
                x_BxI, valid_B = inputs
                h_new, _ = cell(h_BxD, x_BxI)
                h_BxD = jnp.where(valid_B[:, None], h_new, h_BxD)
                return h_BxD, h_BxD

            h0 = jnp.zeros((seq_BxL.shape[0], self.dim), x_LxBxI.dtype)
            _, states_LxBxD = jax.lax.scan(step, h0, (x_LxBxI, valid_LxB))
            x_LxBxI = dropout(states_LxBxD, self.dropout_hidden, keys.pop())
        return jnp.swapaxes(x_LxBxI, 0, 1)

    @staticmethod
    def _with_one(h: jax.Array) -> jax.Array:
        """``[..., D + 1]``: states with a constant 1 that meets the item bias."""
        return jnp.concatenate([h, jnp.ones((*h.shape[:-1], 1), h.dtype)], axis=-1)

    def item_vectors(self, items: jax.Array | None = None) -> jax.Array:
        """``[..., D + 1]``: output embedding and bias of ``items`` (None: all N)."""
        vec = jnp.concatenate([self.out_emb[...], self.out_bias[...][:, None]], axis=-1)
        return vec[:self.num_items] if items is None else vec[items]

    def next_item_states(self, users_B: jax.Array, key: jax.Array, *, train: bool = True
                         ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(h_BxLx(D+1), targets_BxL, valid_BxL)`` of training users' stored sequences:
        the state after each input item (with a 1 for the bias, so the logit of item j is
        ``h . item_vectors(j)``), the true next item, 1 where the position is real."""
        table = self.seq_UxL1[...][users_B]
        inputs_BxL, targets_BxL = table[:, :-1], table[:, 1:]
        h_BxLxD = self.encode(inputs_BxL, key if train else None)
        valid_BxL = (inputs_BxL != self.num_items).astype(jnp.float32)
        return self._with_one(h_BxLxD), targets_BxL, valid_BxL

    def score_sequence(self, seq_BxL: jax.Array) -> jax.Array:
        """Scores ``[B, N]`` of the next item after left-padded sequences (padding = N)."""
        return self._with_one(self.encode(seq_BxL)[:, -1]) @ self.item_vectors().T

    def user_state(self, users: jax.Array) -> jax.Array:
        """``[..., D + 1]``: the state after each user's latest item, and the 1."""
        seq = self.seq_UxL1[...][users.reshape(-1)][:, 1:]
        return self._with_one(self.encode(seq)[:, -1]).reshape(*users.shape, self.dim + 1)

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.user_state(users_U) @ self.item_vectors().T

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return jnp.sum(self.user_state(users) * self.item_vectors(items), axis=-1)

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []  # regularise with optim.weight_decay
