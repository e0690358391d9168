"""Cross-entropy over the mini-batch's candidates (GRU4Rec's ``cross-entropy`` loss,
Hidasi and Czapp, RecSys 2023; the official PyTorch and Theano implementations).

Row i's candidates are the step's in-batch targets (its own on the diagonal) and the
shared popularity samples (`jaxrec.losses.minibatch_negatives`); with ``logq > 0``
each logit is corrected by the log of its sampling weight (in-batch columns: the
target's training count ``n_c``; samples: ``n_c^alpha``)::

    o_ic = r_ic - logq * log q_c
    L_i  = -log softmax_c(o_i)[i]  = logsumexp_c o_ic - o_ii

(the reference adds 1e-24 inside the log; this is the exact form).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.minibatch_negatives import MiniBatchNegativesLoss, diagonal


def minibatch_ce_rows(o_xBxC: jax.Array, cand_xBxC: jax.Array, *,
                      log_q_xBxC: jax.Array | None = None, logq: float = 0.0) -> jax.Array:
    """Per-row cross-entropy ``[..., B]`` of logits whose column b is row b's target.

    Args:
      o_xBxC: logits of C candidates per row.
      cand_xBxC: 1 where a column is a real candidate (the diagonal always is).
      log_q_xBxC: log sampling weight of each column (used when ``logq > 0``).
      logq: weight of the correction (reference: 0 or 1).
    """
    if logq > 0:
        o_xBxC = o_xBxC - logq * log_q_xBxC
    lse = jax.nn.logsumexp(jnp.where(cand_xBxC, o_xBxC, -jnp.inf), axis=-1)
    return lse - diagonal(o_xBxC)


@dataclasses.dataclass(frozen=True)
class MiniBatchCE(MiniBatchNegativesLoss):
    """Softmax cross-entropy over in-batch plus ``n_sample`` shared candidates
    (``rows = "users"``).

    Attributes:
      logq: logQ correction weight (reference best files: 1.0 with cross-entropy).
    """

    logq: float = 1.0
    name: ClassVar[str] = "minibatch_ce"  # its configs/loss file

    def __post_init__(self):
        super().__post_init__()
        if not self.logq >= 0:
            raise ValueError(f"loss.logq: must be >= 0, got {self.logq}")

    def rows_loss(self, o_LxBxC, cand_LxC, log_q_LxC):
        cand = jnp.broadcast_to(cand_LxC[:, None, :], o_LxBxC.shape)
        return minibatch_ce_rows(o_LxBxC, cand, log_q_xBxC=log_q_LxC[:, None, :],
                                 logq=self.logq)
