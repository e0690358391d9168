"""Next-item binary cross-entropy over a sequence (SASRec, Kang and McAuley 2018).

Rows ``users``: each example is one training user's time-ordered history.
At every position t of the (left-padded) input sequence the model predicts the
item at t + 1; the logit of that true next item is pushed up and the logits of
M sampled negatives down ("Self-Attentive Sequential Recommendation", ICDM
2018, eq. 9)::

    loss = -sum_{b,t valid} [log sigmoid(r_pos_bt) + sum_m log(1 - sigmoid(r_neg_btm))]
           / #valid positions

Negatives are drawn uniformly from the items the user has no training
interaction with (as the reference implementation does), one set per position.

The other next-item losses (``softmax_ce``, ``sequence_sampled_softmax``, ``gbce``;
one file each) share :class:`NextItemLoss`: batch kind ``users``, the model's
per-position hidden states (`jaxrec.models.base.NextItemStates`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.data.sampling import sample_batch_negatives
from jaxrec.losses.base import check_gradient_model
from jaxrec.models.base import NextItemLogits, NextItemStates


def sequence_bce_loss(pos_BxL: jax.Array, neg_BxLxM: jax.Array, *, valid_BxL: jax.Array
                      ) -> jax.Array:
    """Mean over valid positions of the next-item BCE.

    Args:
      pos_BxL: logits of the true next item at each position ``[B, L]``.
      neg_BxLxM: logits of M sampled negatives at each position ``[B, L, M]``.
      valid_BxL: 1 where position t has a real input item and a real target,
        0 for padding (and padded users) ``[B, L]``.

    Returns:
      ``sum valid * (-log s(pos) - sum_m log(1 - s(neg))) / max(sum valid, 1)``.
    """
    valid = valid_BxL.astype(pos_BxL.dtype)
    per_pos = -jax.nn.log_sigmoid(pos_BxL) - jnp.sum(jax.nn.log_sigmoid(-neg_BxLxM), axis=-1)
    return jnp.sum(per_pos * valid) / jnp.maximum(jnp.sum(valid), 1.0)


@dataclasses.dataclass(frozen=True)
class SequenceBCE:
    """Next-item BCE at every position with sampled negatives (``rows = "users"``).

    Attributes:
      num_negatives: negatives M per position (the paper: 1).

    The model must provide ``next_item_logits(users_B, negatives_BxLxM, key, *, train)
    -> (pos_BxL, neg_BxLxM, valid_BxL)`` and ``max_len`` (`jaxrec.models.sasrec.SASRec`).
    """

    num_negatives: int = 1
    name: ClassVar[str] = "sequence_bce"  # its configs/loss file
    rows: ClassVar[str] = "users"
    samples_unseen: ClassVar[bool] = True  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/ndcg@10"
    l2: ClassVar[float] = 0.0  # weight decay: optim.weight_decay

    def __post_init__(self):
        check_positive_int("num_negatives", self.num_negatives)

    def __call__(self, pos_BxL, neg_BxLxM, *, valid_BxL):
        return sequence_bce_loss(pos_BxL, neg_BxLxM, valid_BxL=valid_BxL)

    def check_model(self, model) -> None:
        check_gradient_model(self, model, needs=(NextItemLogits,))

    def objective(self, model, batch, data, key, step):
        """Negatives unseen by each user, then the model's per-position logits."""
        del step
        users_B = batch["users"]
        k_neg, k_model = jax.random.split(key)
        length = model.max_len
        neg = sample_batch_negatives(k_neg, users_B, length * self.num_negatives, data)
        neg_BxLxM = neg.reshape(users_B.shape[0], length, self.num_negatives)
        pos_BxL, neg_BxLxM, valid_BxL = model.next_item_logits(users_B, neg_BxLxM, k_model,
                                                               train=True)
        value = self(pos_BxL, neg_BxLxM, valid_BxL=valid_BxL * batch["mask"][:, None])
        return value, batch["items"]


@dataclasses.dataclass(frozen=True)
class NextItemLoss:
    """What the next-item losses over hidden states share (``rows = "users"``).

    A subclass sets ``name`` and implements ``position_loss(model, h_BxLxD, targets_BxL,
    valid_BxL, users_B, data, key)``; the objective averages it over the real positions
    of the batch's users.
    """

    rows: ClassVar[str] = "users"
    samples_unseen: ClassVar[bool] = False
    default_monitor: ClassVar[str] = "valid/ndcg@10"
    l2: ClassVar[float] = 0.0  # weight decay: optim.weight_decay

    def check_model(self, model) -> None:
        check_gradient_model(self, model, needs=(NextItemStates,))

    def objective(self, model, batch, data, key, step):
        """The model's per-position states, then the subclass's loss over them."""
        del step
        users_B = batch["users"]
        k_loss, k_model = jax.random.split(key)
        h_BxLxD, targets_BxL, valid_BxL = model.next_item_states(users_B, k_model, train=True)
        valid_BxL = valid_BxL * batch["mask"][:, None]
        targets_BxL = jnp.where(valid_BxL > 0, targets_BxL, 0)  # padding: any real item
        value = self.position_loss(model, h_BxLxD, targets_BxL, valid_BxL, users_B, data, k_loss)
        return value, batch["items"]


def check_positive_int(name: str, value) -> None:
    """One-line ``ValueError`` unless ``value`` is an int >= 1 (``loss.<name>``)."""
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
        raise ValueError(f"loss.{name}: must be an integer >= 1, got {value}")
