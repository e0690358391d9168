"""Pointwise losses: squared error on ratings, binary cross-entropy against sampled negatives."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.data.sampling import sample_batch_negatives
from jaxrec.losses.base import check_gradient_model, check_loss_suits_model, context_kwargs
from jaxrec.models.base import ClosedForm


def _masked_mean(values_B: jax.Array, mask_B: jax.Array) -> jax.Array:
    mask_B = mask_B.astype(values_B.dtype)
    return jnp.sum(values_B * mask_B) / jnp.maximum(jnp.sum(mask_B), 1.0)


def mse_loss(preds_B: jax.Array, targets_B: jax.Array, *, mask_B: jax.Array) -> jax.Array:
    """Mean squared error over the unmasked examples.

    Args:
      preds_B: predicted ratings ``[B]``.
      targets_B: observed ratings ``[B]``.
      mask_B: 1 for real examples, 0 for padding ``[B]``.

    Returns:
      ``sum_b mask_b (pred_b - target_b)^2 / sum_b mask_b``.
    """
    return _masked_mean(jnp.square(preds_B - targets_B), mask_B)


def bce_loss(pos_B: jax.Array, neg_BxM: jax.Array, *, mask_B: jax.Array) -> jax.Array:
    """Binary cross-entropy with logits: positives labelled 1, sampled negatives 0.

    ``l_b = -log sigmoid(s_pos) - sum_m log(1 - sigmoid(s_neg_m))``, averaged over
    unmasked examples (the negatives of one positive are summed, as in NCF).

    Args:
      pos_B: logits of the observed (user, item) pairs ``[B]``.
      neg_BxM: logits of M sampled negatives per example ``[B, M]``.
      mask_B: 1 for real examples, 0 for padding.
    """
    per_example = -jax.nn.log_sigmoid(pos_B) - jnp.sum(jax.nn.log_sigmoid(-neg_BxM), axis=-1)
    return _masked_mean(per_example, mask_B)


def check_loss_options(loss) -> None:
    """One-line errors for invalid loss settings, raised when the loss is built."""
    if not loss.l2 >= 0:
        raise ValueError(f"loss.l2: must be >= 0, got {loss.l2}")
    negatives = getattr(loss, "num_negatives", 1)
    if not (isinstance(negatives, int) and negatives >= 1):
        raise ValueError(f"loss.num_negatives: must be an integer >= 1, got {negatives}")


@dataclasses.dataclass(frozen=True)
class MSE:
    """Squared error on explicit ratings (batch kind ``rating``).

    Attributes:
      l2: weight of the L2 penalty on the parameter rows used by the batch.
    """

    l2: float = 0.12
    name: ClassVar[str] = "mse"  # its configs/loss file
    sparse_rows: ClassVar[bool] = True  # touched: every item row the gradient reaches
    passes_context: ClassVar[bool] = True  # batch["context"] reaches the model
    rows: ClassVar[str] = "interactions"
    samples_unseen: ClassVar[bool] = False  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/rmse"

    def __post_init__(self):
        check_loss_options(self)

    def __call__(self, preds_B, targets_B, *, mask_B):
        return mse_loss(preds_B, targets_B, mask_B=mask_B)

    def check_model(self, model) -> None:
        check_gradient_model(self, model)

    def objective(self, model, batch, data, key, step):
        del data, key, step
        preds_B = model(batch["users"], batch["items"], **context_kwargs(batch))
        return self(preds_B, batch["ratings"], mask_B=batch["mask"]), batch["items"]


@dataclasses.dataclass(frozen=True)
class BCE:
    """Binary cross-entropy against uniformly sampled negatives (batch kind ``negatives``).

    Attributes:
      num_negatives: negatives M sampled per positive, from items the user has
        no training interaction with.
      l2: weight of the L2 penalty on the parameter rows used by the batch.
    """

    num_negatives: int = 4
    l2: float = 0.0
    name: ClassVar[str] = "bce"  # its configs/loss file
    sparse_rows: ClassVar[bool] = True  # touched: every item row the gradient reaches
    passes_context: ClassVar[bool] = True  # batch["context"] reaches the model
    rows: ClassVar[str] = "interactions"
    samples_unseen: ClassVar[bool] = True  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/ndcg@10"

    def __post_init__(self):
        check_loss_options(self)

    def __call__(self, pos_B, neg_BxM, *, mask_B):
        return bce_loss(pos_B, neg_BxM, mask_B=mask_B)

    def check_model(self, model) -> None:
        check_gradient_model(self, model)

    def objective(self, model, batch, data, key, step):
        del step
        return negatives_objective(self, model, batch, data, key)


def negatives_objective(loss, model, batch, data, key) -> tuple[jax.Array, jax.Array]:
    """Each positive against ``loss.num_negatives`` items sampled uniformly from the
    negative pool among those the user has no training interaction with.

    Returns ``(loss(pos_B, neg_BxM), touched_Bx(1+M))``.
    """
    users, items = batch["users"], batch["items"]
    neg_BxM = sample_batch_negatives(key, users, loss.num_negatives, data)
    # one model call for the positive and its negatives: a graph model (LightGCN)
    # propagates once per step, not twice
    items_Bx1M = jnp.concatenate([items[:, None], neg_BxM], axis=1)
    scores_Bx1M = model(users[:, None], items_Bx1M, **context_kwargs(batch, axes=1))
    value = loss(scores_Bx1M[:, 0], scores_Bx1M[:, 1:], mask_B=batch["mask"])
    return value, items_Bx1M


@dataclasses.dataclass(frozen=True)
class NoLoss:
    """For models fitted in closed form by ``solve_epoch`` (``rows = "none"``: no gradient
    steps; one epoch is one solve)."""

    name: ClassVar[str] = "none"  # its configs/loss file
    rows: ClassVar[str] = "none"
    samples_unseen: ClassVar[bool] = False  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/ndcg@10"
    l2: ClassVar[float] = 0.0

    def check_model(self, model) -> None:
        check_loss_suits_model(self, model)
        if not isinstance(model, ClosedForm):
            raise ValueError(f"loss: {type(model).__name__} trains by gradient steps; choose a "
                             "loss such as mse, bce or bpr")

    def objective(self, model, batch, data, key, step):
        raise TypeError("loss=none has no objective: closed-form models train by solve_epoch")
