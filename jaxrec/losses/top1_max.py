"""TOP1-max (Hidasi and Karatzoglou, CIKM 2018, eq. 8), GRU4Rec's ranking loss.

Over row i's negatives j (in-batch and sampled, `jaxrec.losses.minibatch_negatives`)
with the softmax weights ``s_j = exp(r_j) / sum_{k neg} exp(r_k)``::

    L_i = sum_j s_j (sigmoid(r_j - r_i) + sigmoid(r_j^2))

The score of the highest-scored negatives dominates (the max of TOP1 made smooth);
the second term pushes negatives' scores to 0.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.minibatch_negatives import (
    MiniBatchNegativesLoss,
    diagonal,
    negative_mask,
    softmax_neg,
)


def top1_max_rows(o_xBxC: jax.Array, neg_xBxC: jax.Array) -> jax.Array:
    """Per-row TOP1-max ``[..., B]`` of logits whose column b is row b's target.

    Args:
      o_xBxC: logits of C candidates per row, the target on the diagonal.
      neg_xBxC: 1 where a column is one of the row's negatives.
    """
    s = softmax_neg(o_xBxC, neg_xBxC)
    pos = diagonal(o_xBxC)[..., None]
    return jnp.sum(s * (jax.nn.sigmoid(o_xBxC - pos) + jax.nn.sigmoid(o_xBxC ** 2)), axis=-1)


@dataclasses.dataclass(frozen=True)
class Top1Max(MiniBatchNegativesLoss):
    """TOP1-max over in-batch plus ``n_sample`` shared negatives (``rows = "users"``)."""

    name: ClassVar[str] = "top1_max"  # its configs/loss file

    def rows_loss(self, o_LxBxC, cand_LxC, log_q_LxC):
        del log_q_LxC
        return top1_max_rows(o_LxBxC, negative_mask(cand_LxC, o_LxBxC.shape[-2]))
