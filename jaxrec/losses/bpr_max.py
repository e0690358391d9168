"""BPR-max with score regularisation (Hidasi and Karatzoglou, CIKM 2018, eq. 9-10),
GRU4Rec's ranking loss.

Over row i's negatives j (in-batch and sampled, `jaxrec.losses.minibatch_negatives`)
with the softmax weights ``s_j = exp(r_j) / sum_{k neg} exp(r_k)``::

    L_i = -log(sum_j s_j sigmoid(r_i - r_j) + 1e-24) + bpreg * sum_j s_j r_j^2

The reference applies ELU(alpha = elu_param) to the scores first (its ``elu_param``,
default 0.5; 0: the scores as they are).
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


def bpr_max_rows(o_xBxC: jax.Array, neg_xBxC: jax.Array, *, bpreg: float,
                 elu_param: float = 0.0) -> jax.Array:
    """Per-row BPR-max ``[..., B]`` of logits whose column b is row b's target.

    Args:
      o_xBxC: logits of C candidates per row, the target on the diagonal.
      neg_xBxC: 1 where a column is one of the row's negatives.
      bpreg: weight of the softmax-weighted squared negative scores.
      elu_param: > 0: scores pass through ``ELU(alpha = elu_param)`` first.
    """
    if elu_param > 0:
        o_xBxC = jax.nn.elu(o_xBxC, alpha=elu_param)
    s = softmax_neg(o_xBxC, neg_xBxC)
    pos = diagonal(o_xBxC)[..., None]
    ranked = jnp.sum(s * jax.nn.sigmoid(pos - o_xBxC), axis=-1)
    return -jnp.log(ranked + 1e-24) + bpreg * jnp.sum(s * o_xBxC ** 2, axis=-1)


@dataclasses.dataclass(frozen=True)
class BPRMax(MiniBatchNegativesLoss):
    """BPR-max over in-batch plus ``n_sample`` shared negatives (``rows = "users"``).

    Attributes:
      bpreg: score regularisation (reference: 1.0; its best files 0.05 - 2.0).
      elu_param: ELU on the scores (reference: 0.5; 0 = none).
    """

    bpreg: float = 1.0
    elu_param: float = 0.5
    name: ClassVar[str] = "bpr_max"  # its configs/loss file

    def __post_init__(self):
        super().__post_init__()
        if not self.bpreg >= 0 or not self.elu_param >= 0:
            raise ValueError(f"loss.bpreg / loss.elu_param: must be >= 0, got {self.bpreg} / "
                             f"{self.elu_param}")

    def rows_loss(self, o_LxBxC, cand_LxC, log_q_LxC):
        del log_q_LxC
        return bpr_max_rows(o_LxBxC, negative_mask(cand_LxC, o_LxBxC.shape[-2]),
                            bpreg=self.bpreg, elu_param=self.elu_param)
