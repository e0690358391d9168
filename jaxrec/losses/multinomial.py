"""Multinomial log-likelihood with an annealed KL term (Mult-VAE / Mult-DAE, Liang et al. 2018).

Rows ``users``: each example is one training user; the model encodes the
user's whole history ``x_u`` (a 0/1 row over the catalogue) and returns logits
over every item. For the paper's "Variational Autoencoders for Collaborative
Filtering" (WWW 2018)::

    loss_u = -sum_i x_ui log softmax(logits_u)_i  +  beta(step) KL(q(z | x_u) || N(0, I))
    beta(step) = min(anneal_cap, step / total_anneal_steps)

Mult-DAE returns ``KL = 0`` (the denoising autoencoder has no latent prior).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.base import check_gradient_model
from jaxrec.losses.pointwise import _masked_mean
from jaxrec.models.base import UserLogits


def kl_beta(step: jax.Array, *, anneal_cap: float, total_anneal_steps: int) -> jax.Array:
    """The KL weight ``min(anneal_cap, step / total_anneal_steps)`` (linear annealing)."""
    ramp = jnp.asarray(step, jnp.float32) / max(total_anneal_steps, 1)
    return jnp.minimum(jnp.float32(anneal_cap), ramp)


def multinomial_loss(logits_BxN: jax.Array, targets_BxN: jax.Array, kl_B: jax.Array, *,
                     mask_B: jax.Array, beta: jax.Array | float = 0.0) -> jax.Array:
    """Negative multinomial log-likelihood plus ``beta`` times the KL term, per user.

    Args:
      logits_BxN: decoder logits over all N items ``[B, N]``.
      targets_BxN: the users' training histories (0/1 counts) ``[B, N]``.
      kl_B: KL divergence of each user's posterior from the prior ``[B]`` (0 for DAE).
      mask_B: 1 for real users, 0 for padding ``[B]``.
      beta: the KL weight (a scalar, possibly traced).

    Returns:
      ``mean_b [-sum_i x_bi log softmax(logits_b)_i + beta kl_b]`` over unmasked users.
    """
    log_softmax_BxN = jax.nn.log_softmax(logits_BxN, axis=-1)
    neg_ll_B = -jnp.sum(log_softmax_BxN * targets_BxN, axis=-1)
    return _masked_mean(neg_ll_B + beta * kl_B, mask_B)


@dataclasses.dataclass(frozen=True)
class Multinomial:
    """Multinomial likelihood + annealed KL over whole users (``rows = "users"``).

    Attributes:
      anneal_cap: the largest KL weight beta (paper: 0.2).
      total_anneal_steps: gradient steps over which beta rises linearly from 0
        (paper: 200,000 on ML-20M; scale it to the data's steps per epoch).

    The model must provide ``user_logits(users_B, key, *, train) -> (logits_BxN,
    kl_B, targets_BxN)`` (`jaxrec.models.multvae.MultVAE`).
    """

    anneal_cap: float = 0.2
    total_anneal_steps: int = 20000
    name: ClassVar[str] = "multinomial"  # its configs/loss file
    rows: ClassVar[str] = "users"
    samples_unseen: ClassVar[bool] = False  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/ndcg@10"
    l2: ClassVar[float] = 0.0  # weight decay: optim.weight_decay

    def __post_init__(self):
        if not self.anneal_cap >= 0:
            raise ValueError(f"loss.anneal_cap: must be >= 0, got {self.anneal_cap}")
        if not (isinstance(self.total_anneal_steps, int) and self.total_anneal_steps >= 1):
            raise ValueError(f"loss.total_anneal_steps: must be an integer >= 1, got "
                             f"{self.total_anneal_steps}")

    def __call__(self, logits_BxN, targets_BxN, kl_B, *, mask_B, step):
        beta = kl_beta(step, anneal_cap=self.anneal_cap,
                       total_anneal_steps=self.total_anneal_steps)
        return multinomial_loss(logits_BxN, targets_BxN, kl_B, mask_B=mask_B, beta=beta)

    def check_model(self, model) -> None:
        check_gradient_model(self, model, needs=(UserLogits,))

    def objective(self, model, batch, data, key, step):
        """The batch loss over whole users: the model encodes them (dropout keyed by ``key``)."""
        del data
        logits_BxN, kl_B, targets_BxN = model.user_logits(batch["users"], key, train=True)
        value = self(logits_BxN, targets_BxN, kl_B, mask_B=batch["mask"], step=step)
        return value, batch["items"]
