"""Sampled softmax with logQ correction and removal of accidental hits (listwise).

For a (user, positive item) example with candidate negatives ``c`` drawn by a
sampler that puts item ``j`` among the candidates ``q_j`` times in expectation::

    o_j  = s(u, j) / T - log q_j                   (logQ correction, Yi et al. 2019,
                                                    "Sampling-Bias-Corrected Neural
                                                    Modeling", RecSys; Bengio and
                                                    Senecal 2008)
    loss = -o_pos + log(exp(o_pos) + sum_{c != pos} exp(o_c))

The correction *subtracts* ``log q``: a popular item shows up as a negative
often, so each appearance must count less. With it, ``sum_c exp(o_c)`` is an
importance-sampling estimate of the full softmax denominator
``sum_j exp(s(u, j) / T)``; with every item a candidate once (``q = 1``) the
loss is exactly the full softmax cross-entropy. Candidates equal to the
positive ("accidental hits", e.g. the same item twice in one batch) are
removed, so the positive is counted once.

Candidates (:func:`sampled_softmax_batch`):
  ``in_batch``        the batch's other positives (``q_j = B n_j / E``, n_j the
                      item's training count: the batch is drawn uniformly from the
                      E training rows);
  ``num_negatives``   M extra items drawn uniformly from the negative pool (the
                      P items with training interactions, or all N with
                      ``trainer.negatives=all_items``), shared by the batch
                      (``q_j += M / P``; mixed negative sampling, Yang et al. 2020);
  ``full_catalogue``  every item once (``q = 1``): the exact full softmax.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.base import check_gradient_model, context_kwargs
from jaxrec.losses.pointwise import _masked_mean
from jaxrec.models.base import CandidateScorer


def sampled_softmax_loss(pos_B: jax.Array, neg_BxC: jax.Array, *, mask_B: jax.Array,
                         temperature: float = 1.0, pos_log_q_B: jax.Array | None = None,
                         neg_log_q_BxC: jax.Array | None = None,
                         neg_valid_BxC: jax.Array | None = None) -> jax.Array:
    """Softmax cross-entropy of the positive against sampled candidates, logQ-corrected.

    Args:
      pos_B: scores ``s(u_b, pos_b)`` ``[B]``.
      neg_BxC: scores of C candidates per example ``[B, C]`` (may be shared rows).
      mask_B: 1 for real examples, 0 for padding.
      temperature: T; scores are divided by it before the correction.
      pos_log_q_B: ``log q`` of each positive (None: no correction).
      neg_log_q_BxC: ``log q`` of each candidate (None: no correction); any shape
        broadcastable to ``[B, C]`` with the same rank.
      neg_valid_BxC: False for removed candidates (accidental hits, padding).

    Returns:
      The mean over unmasked examples of ``-log softmax(o)[pos]``.
    """
    pos = pos_B / temperature
    neg = neg_BxC / temperature
    if pos_log_q_B is not None:
        pos = pos - pos_log_q_B
    if neg_log_q_BxC is not None:
        neg = neg - neg_log_q_BxC
    if neg_valid_BxC is not None:
        neg = jnp.where(neg_valid_BxC, neg, -jnp.inf)
    logits = jnp.concatenate([pos[:, None], neg], axis=1)
    per_example = jax.nn.logsumexp(logits, axis=1) - pos
    return _masked_mean(per_example, mask_B)


@dataclasses.dataclass(frozen=True)
class SampledSoftmax:
    """Sampled softmax over in-batch (and optional uniform) candidates (rows: interactions).

    Attributes:
      temperature: T (two-tower models with unit vectors: ~0.05-0.2).
      in_batch: use the batch's other positives as candidates.
      num_negatives: extra uniform candidates M shared by the batch (0: none).
      full_catalogue: every item is a candidate (exact softmax; small catalogues).
      logq: subtract ``log q`` from every logit (sampling-bias correction).
      remove_accidental_hits: drop candidates equal to the example's positive.
      l2: weight of the L2 penalty on the parameter rows used by the batch.
    """

    temperature: float = 0.1
    in_batch: bool = True
    num_negatives: int = 0
    full_catalogue: bool = False
    logq: bool = True
    remove_accidental_hits: bool = True
    l2: float = 0.0
    name: ClassVar[str] = "sampled_softmax"  # its configs/loss file
    passes_context: ClassVar[bool] = True  # batch["context"] reaches the model
    rows: ClassVar[str] = "interactions"
    samples_unseen: ClassVar[bool] = False  # rejection-samples unseen items
    default_monitor: ClassVar[str] = "valid/ndcg@10"

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"loss.temperature: must be > 0, got {self.temperature}")
        if not (isinstance(self.num_negatives, int) and self.num_negatives >= 0):
            raise ValueError(f"loss.num_negatives: must be an integer >= 0, got "
                             f"{self.num_negatives}")
        if not (self.in_batch or self.num_negatives or self.full_catalogue):
            raise ValueError("loss: no candidates; set in_batch, num_negatives > 0 or "
                             "full_catalogue")
        if not self.l2 >= 0:
            raise ValueError(f"loss.l2: must be >= 0, got {self.l2}")

    def __call__(self, pos_B, neg_BxC, *, mask_B, **kwargs):
        return sampled_softmax_loss(pos_B, neg_BxC, mask_B=mask_B,
                                    temperature=self.temperature, **kwargs)

    def check_model(self, model) -> None:
        check_gradient_model(self, model)

    def objective(self, model, batch, data, key, step):
        del step
        return sampled_softmax_batch(model, self, batch["users"], batch["items"], batch["mask"],
                                     data, key, context_BxC=batch.get("context"))


def candidates(loss: SampledSoftmax, items_B: jax.Array, mask_B: jax.Array, data,
               key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(cand_C int32, log_q_N float32, valid_C bool)``: the batch's shared candidates.

    ``log_q_N`` is ``log`` of each item's expected number of appearances among
    the candidates (0 everywhere for ``full_catalogue``).
    """
    num_items = data.num_items
    if loss.full_catalogue:
        cand = jnp.arange(num_items, dtype=jnp.int32)
        return cand, jnp.zeros((num_items,)), jnp.ones((num_items,), bool)
    parts, valid, q_N = [], [], jnp.zeros((num_items,))
    if loss.in_batch:
        q_N = q_N + items_B.shape[0] * data["item_counts"] / data.num_interactions
        parts.append(items_B.astype(jnp.int32))
        valid.append(mask_B > 0)
    if loss.num_negatives:  # uniform over the negative pool (all items when absent)
        m = loss.num_negatives
        pool_P = data.get("neg_pool")
        if pool_P is None:
            parts.append(jax.random.randint(key, (m,), 0, num_items, dtype=jnp.int32))
            q_N = q_N + m / num_items
        else:
            idx = jax.random.randint(key, (m,), 0, pool_P.shape[0], dtype=jnp.int32)
            parts.append(pool_P[idx])
            q_N = q_N.at[pool_P].add(m / pool_P.shape[0])
        valid.append(jnp.ones((m,), bool))
    return (jnp.concatenate(parts), jnp.log(jnp.maximum(q_N, 1e-30)),
            jnp.concatenate(valid))


def sampled_softmax_batch(model, loss: SampledSoftmax, users_B: jax.Array, items_B: jax.Array,
                          mask_B: jax.Array, data, key: jax.Array,
                          context_BxC: jax.Array | None = None
                          ) -> tuple[jax.Array, jax.Array]:
    """The batch loss for the train step: ``(value, touched items [B, 1])``.

    Models with ``score_candidates(users_B, cand_C) -> [B, C]`` (the two-tower
    family: one ``B x C`` matmul) score the shared candidates with it; others
    through ``model(users[:, None], cand[None, :])``. The L2 penalty covers the
    positives' rows (every in-batch candidate is some example's positive).
    ``context_BxC``: the rows' context ids, passed on as ``context=`` (a model with
    ``model.context``); None: none.
    """
    cand_C, log_q_N, valid_C = candidates(loss, items_B, mask_B, data, key)
    rows = {} if context_BxC is None else {"context": context_BxC}
    if isinstance(model, CandidateScorer):
        neg_BxC = model.score_candidates(users_B, cand_C, **context_kwargs(rows))
    else:
        neg_BxC = model(users_B[:, None], cand_C[None, :], **context_kwargs(rows, axes=1))
    pos_B = model(users_B, items_B, **context_kwargs(rows))
    valid_BxC = jnp.broadcast_to(valid_C[None, :], neg_BxC.shape)
    if loss.remove_accidental_hits:
        valid_BxC = valid_BxC & (cand_C[None, :] != items_B[:, None])
    kwargs = {}
    if loss.logq:
        kwargs = {"pos_log_q_B": log_q_N[items_B], "neg_log_q_BxC": log_q_N[cand_C][None, :]}
    value = loss(pos_B, neg_BxC, mask_B=mask_B, neg_valid_BxC=valid_BxC, **kwargs)
    return value, items_B[:, None]
