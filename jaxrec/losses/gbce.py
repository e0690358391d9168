"""gBCE: generalised binary cross-entropy (gSASRec, Petrov and Macdonald, RecSys 2023,
"gSASRec: Reducing Overconfidence in Sequential Recommendation Trained with Negative
Sampling").

With k sampled negatives out of N - 1, the sampling rate is ``alpha = k / (N - 1)``
and the calibration parameter ``t`` in [0, 1] sets the power the positive's
probability is raised to::

    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    loss = -sum_{b,t valid} [beta log sigmoid(r_pos) + sum_k log(1 - sigmoid(r_neg_k))]
           / #valid positions

``t = 0`` is plain BCE (``beta = 1``, SASRec's loss with k negatives); ``t = 1``
gives ``beta = alpha`` (the paper proves the predicted probabilities are then
calibrated). The paper's best on MovieLens-1M: k = 256, t = 0.75. The k negatives are
drawn per position (as the paper's code does) from the items the user has not
interacted with in training; memory is one ``[B, L, k, D]`` gather per step.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.data.sampling import sample_batch_negatives
from jaxrec.losses.pointwise import _masked_mean
from jaxrec.losses.sequence import NextItemLoss, check_positive_int


def gbce_beta(num_negatives: int, num_items: int, t: float) -> float:
    """``beta = alpha (t (1 - 1/alpha) + 1/alpha)`` with ``alpha = k / (N - 1)``, capped at 1
    (k >= N - 1 negatives, drawn with replacement, subsample nothing: ``beta = 1``)."""
    alpha = min(num_negatives / max(num_items - 1, 1), 1.0)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def gbce_loss(pos_BxL: jax.Array, neg_BxLxK: jax.Array, *, valid_BxL: jax.Array,
              beta: float) -> jax.Array:
    """Mean over valid positions of ``-beta log s(pos) - sum_k log(1 - s(neg_k))``.

    Args:
      pos_BxL: logits of the true next item ``[B, L]``.
      neg_BxLxK: logits of the k negatives at each position ``[B, L, K]``.
      valid_BxL: 1 for real positions, 0 for padding ``[B, L]``.
      beta: the power of the positive's probability (`gbce_beta`).
    """
    per_pos = (-beta * jax.nn.log_sigmoid(pos_BxL)
               - jnp.sum(jax.nn.log_sigmoid(-neg_BxLxK), axis=-1))
    return _masked_mean(per_pos, valid_BxL)


@dataclasses.dataclass(frozen=True)
class GBCE(NextItemLoss):
    """gBCE with k unseen negatives per user (``rows = "users"``).

    Attributes:
      num_negatives: k (paper: 256); drawn with replacement (``alpha`` caps at 1).
      t: calibration parameter in [0, 1] (paper: 0.75; 0 = BCE).
    """

    num_negatives: int = 256
    t: float = 0.75
    name: ClassVar[str] = "gbce"  # its configs/loss file
    samples_unseen: ClassVar[bool] = True  # rejection-samples unseen items

    def __post_init__(self):
        check_positive_int("num_negatives", self.num_negatives)
        if not 0.0 <= self.t <= 1.0:
            raise ValueError(f"loss.t: must be in [0, 1], got {self.t}")

    def position_loss(self, model, h_BxLxD, targets_BxL, valid_BxL, users_B, data, key):
        batch, length = targets_BxL.shape
        neg = sample_batch_negatives(key, users_B, length * self.num_negatives, data)
        neg_BxLxK = neg.reshape(batch, length, self.num_negatives)
        pos_BxL = jnp.sum(h_BxLxD * model.item_vectors(targets_BxL), axis=-1)
        neg_BxLxK = jnp.einsum("bld,blkd->blk", h_BxLxD, model.item_vectors(neg_BxLxK))
        beta = gbce_beta(self.num_negatives, data.num_items, self.t)
        return gbce_loss(pos_BxL, neg_BxLxK, valid_BxL=valid_BxL, beta=beta)
