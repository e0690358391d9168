"""Full softmax cross-entropy over all items at every sequence position (SASRec, BERT4Rec).

At each real position t the hidden state ``h_t`` scores every item,
``r_tj = <h_t, e_j> / T``, and the true next item is one class of N::

    loss = sum_{b,t valid} [logsumexp_j r_btj - r_bt,target] / #valid positions

Exact (no sampling), so no negatives and no correction; memory is one ``[B, L, N]``
logit block per step (``trainer.batch_size x model.max_len x N`` floats). Klenitskiy
and Vasilev (RecSys 2023, "Turning Dross Into Gold Loss: is BERT4Rec really better
than SASRec?") report SASRec trained this way beating BERT4Rec.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.pointwise import _masked_mean
from jaxrec.losses.sequence import NextItemLoss


def softmax_ce_loss(logits_BxLxN: jax.Array, targets_BxL: jax.Array, *, valid_BxL: jax.Array,
                    temperature: float = 1.0) -> jax.Array:
    """Mean over valid positions of ``-log softmax(logits / T)[target]``.

    Args:
      logits_BxLxN: every item's logit at each position ``[B, L, N]``.
      targets_BxL: the true next item ``[B, L]`` (any valid index where padded).
      valid_BxL: 1 for real positions, 0 for padding ``[B, L]``.
      temperature: T.
    """
    logits = logits_BxLxN / temperature
    target = jnp.take_along_axis(logits, targets_BxL[..., None], axis=-1)[..., 0]
    return _masked_mean(jax.nn.logsumexp(logits, axis=-1) - target, valid_BxL)


@dataclasses.dataclass(frozen=True)
class SoftmaxCE(NextItemLoss):
    """Full softmax cross-entropy over the catalogue at every position (``rows = "users"``).

    Attributes:
      temperature: T, the logits are divided by it (1: plain cross-entropy).
    """

    temperature: float = 1.0
    name: ClassVar[str] = "softmax_ce"  # its configs/loss file

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"loss.temperature: must be > 0, got {self.temperature}")

    def position_loss(self, model, h_BxLxD, targets_BxL, valid_BxL, users_B, data, key):
        del users_B, data, key
        logits_BxLxN = h_BxLxD @ model.item_vectors().T
        return softmax_ce_loss(logits_BxLxN, targets_BxL, valid_BxL=valid_BxL,
                               temperature=self.temperature)
