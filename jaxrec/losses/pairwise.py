"""Pairwise ranking losses."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.base import check_gradient_model
from jaxrec.losses.pointwise import _masked_mean, check_loss_options, negatives_objective


def bpr_loss(pos_B: jax.Array, neg_BxM: jax.Array, *, mask_B: jax.Array) -> jax.Array:
    """Bayesian personalised ranking (Rendle et al. 2009).

    ``l_b = -mean_m log sigmoid(s_pos_b - s_neg_bm)``, averaged over unmasked examples.

    Args:
      pos_B: scores of observed pairs ``[B]``.
      neg_BxM: scores of M sampled negatives per example ``[B, M]``.
      mask_B: 1 for real examples, 0 for padding.
    """
    per_example = -jnp.mean(jax.nn.log_sigmoid(pos_B[:, None] - neg_BxM), axis=-1)
    return _masked_mean(per_example, mask_B)


@dataclasses.dataclass(frozen=True)
class BPR:
    """BPR against uniformly sampled negatives (batch kind ``negatives``).

    Attributes:
      num_negatives: negatives M per positive (their pair losses are averaged).
      l2: weight of the L2 penalty on the parameter rows used by the batch.
    """

    num_negatives: int = 1
    l2: float = 0.0
    name: ClassVar[str] = "bpr"  # its configs/loss file
    sparse_rows: ClassVar[bool] = True  # touched: every item row the gradient reaches
    passes_context: ClassVar[bool] = True  # batch["context"] reaches the model
    rows: ClassVar[str] = "interactions"
    samples_unseen: ClassVar[bool] = True  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/ndcg@10"

    def __post_init__(self):
        check_loss_options(self)

    def __call__(self, pos_B, neg_BxM, *, mask_B):
        return bpr_loss(pos_B, neg_BxM, mask_B=mask_B)

    def check_model(self, model) -> None:
        check_gradient_model(self, model)

    def objective(self, model, batch, data, key, step):
        del step
        return negatives_objective(self, model, batch, data, key)
