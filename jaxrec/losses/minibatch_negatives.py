"""Mini-batch negatives with shared popularity samples (GRU4Rec's training scheme, Hidasi
and Karatzoglou, CIKM 2018, "Recurrent Neural Networks with Top-k Gains for Session-based
Recommendations").

At every sequence position t the B users of the batch form the reference's
session-parallel mini-batch: row b's candidates are the true next items of all B rows at
t (its own on the diagonal, the others in-batch negatives: popularity-proportional) plus
``n_sample`` items shared by the whole step, drawn with replacement with probability
``p_j = n_j^alpha / sum_k n_k^alpha`` (``n_j`` the training count, ``alpha =
sample_alpha``)::

    O_t[b, c] = r_{b,t}(target_{c,t})  (c < B),    O_t[b, B + s] = r_{b,t}(sample_s)

Padded rows are not examples and padded columns are not candidates. The losses built on
this (``top1_max``, ``bpr_max``, ``minibatch_ce``; one file each) implement
``rows_loss(O_LxBxC, neg_LxBxC, cand_LxBxC, log_q_LxC)`` with the reference formulas and
are averaged over the real positions.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxrec.losses.pointwise import _masked_mean
from jaxrec.losses.sequence import NextItemLoss


def popularity_samples(key: jax.Array, num: int, counts_N: jax.Array, alpha: float
                       ) -> jax.Array:
    """int32 ``[num]``: items drawn with replacement with probability ``n_j^alpha / Z``
    (``alpha = 0``: uniform over all items)."""
    weights = jnp.power(counts_N.astype(jnp.float32), alpha)
    cdf = jnp.cumsum(weights) / jnp.sum(weights)
    drawn = jnp.searchsorted(cdf, jax.random.uniform(key, (num,)), side="right")
    return jnp.minimum(drawn, counts_N.shape[0] - 1).astype(jnp.int32)


def minibatch_candidates(h_BxLxD: jax.Array, targets_BxL: jax.Array, valid_BxL: jax.Array,
                         item_vectors, samples_S: jax.Array
                         ) -> tuple[jax.Array, jax.Array]:
    """``(O_LxBxC, cand_LxC)``, C = B + S: every row's logits of the step's candidates and
    1 where a column is a real candidate (a padded row's target is not)."""
    inbatch_LxBxB = jnp.einsum("bld,cld->lbc", h_BxLxD, item_vectors(targets_BxL))
    sampled_LxBxS = jnp.einsum("bld,sd->lbs", h_BxLxD, item_vectors(samples_S))
    logits = jnp.concatenate([inbatch_LxBxB, sampled_LxBxS], axis=-1)
    cand = jnp.concatenate([valid_BxL.T > 0, jnp.ones((valid_BxL.shape[1],
                                                       samples_S.shape[0]), bool)], axis=-1)
    return logits, cand


def diagonal(o_xBxC: jax.Array) -> jax.Array:
    """``[..., B]``: row b's logit of its own target (column b)."""
    return jnp.diagonal(o_xBxC, axis1=-2, axis2=-1)


def negative_mask(cand_xC: jax.Array, batch: int) -> jax.Array:
    """bool ``[..., B, C]``: real candidates other than the row's own target."""
    eye = jnp.eye(batch, cand_xC.shape[-1], dtype=bool)
    return cand_xC[..., None, :] & ~eye.reshape((1,) * (cand_xC.ndim - 1) + eye.shape)


def softmax_neg(o_xBxC: jax.Array, neg_xBxC: jax.Array) -> jax.Array:
    """Softmax over each row's negatives only (0 elsewhere): the reference ``softmax_neg``."""
    masked = jnp.where(neg_xBxC, o_xBxC, -jnp.inf)
    top = jax.lax.stop_gradient(jnp.max(jnp.where(neg_xBxC, o_xBxC, -1e30), axis=-1,
                                        keepdims=True))
    e = jnp.where(neg_xBxC, jnp.exp(masked - top), 0.0)
    return e / jnp.maximum(jnp.sum(e, axis=-1, keepdims=True), 1e-30)


@dataclasses.dataclass(frozen=True)
class MiniBatchNegativesLoss(NextItemLoss):
    """In-batch plus shared popularity-sampled negatives at every position.

    Attributes:
      n_sample: extra negatives per step shared by all rows (reference: 2048; 0: in-batch
        only).
      sample_alpha: the popularity exponent of their distribution (reference: 0.5;
        0 uniform, 1 popularity).
    """

    n_sample: int = 2048
    sample_alpha: float = 0.5

    def __post_init__(self):
        if isinstance(self.n_sample, bool) or not (isinstance(self.n_sample, int)
                                                   and self.n_sample >= 0):
            raise ValueError(f"loss.n_sample: must be an integer >= 0, got {self.n_sample}")
        if not 0.0 <= self.sample_alpha <= 1.0:
            raise ValueError(f"loss.sample_alpha: must be in [0, 1], got {self.sample_alpha}")

    def position_loss(self, model, h_BxLxD, targets_BxL, valid_BxL, users_B, data, key):
        del users_B
        counts_N = data["item_counts"]
        samples_S = popularity_samples(key, self.n_sample, counts_N, self.sample_alpha)
        o_LxBxC, cand_LxC = minibatch_candidates(h_BxLxD, targets_BxL, valid_BxL,
                                                 model.item_vectors, samples_S)
        log_n = jnp.log(jnp.maximum(counts_N.astype(jnp.float32), 1.0))
        log_q_LxC = jnp.concatenate([log_n[targets_BxL].T, jnp.broadcast_to(
            self.sample_alpha * log_n[samples_S], (targets_BxL.shape[1], self.n_sample))],
            axis=-1)
        per_row_LxB = self.rows_loss(o_LxBxC, cand_LxC, log_q_LxC)
        return _masked_mean(per_row_LxB, valid_BxL.T)
