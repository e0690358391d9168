"""Sampled softmax with logQ correction at every sequence position (SASRec).

Each step draws M candidates shared by the batch from a proposal ``Q``: the
training item frequencies (``sampler=popularity``, as in-batch negatives would be)
or uniform over the catalogue. An item's expected number of appearances among the
candidates is ``q_j = M n_j / E`` (popularity; ``n_j`` its training count, E the
training interactions) or ``M / N`` (uniform). At each real position::

    o_j  = <h_t, e_j> / T - log q_j          (logQ correction: Bengio and Senecal 2008;
                                             Yi et al. 2019, RecSys)
    loss = -o_target + log(exp(o_target) + sum_{c != target} exp(o_c))

Candidates equal to the position's target (accidental hits) are removed. The
per-example loss is `jaxrec.losses.sampled_softmax.sampled_softmax_loss` over the
``B x L`` positions.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.sampled_softmax import sampled_softmax_loss
from jaxrec.losses.sequence import NextItemLoss, check_positive_int

SAMPLERS = ("popularity", "uniform")


def proposal(key: jax.Array, num_candidates: int, data, sampler: str
             ) -> tuple[jax.Array, jax.Array]:
    """``(cand_C int32, log_q_N)``: M candidates from the proposal and every item's
    ``log q`` (expected appearances among them; ``-inf`` -> ``log 1e-30`` for unseen items)."""
    num_items = data.num_items
    if sampler == "popularity":  # a uniformly drawn training interaction's item
        indices_E = data["indices"]
        rows = jax.random.randint(key, (num_candidates,), 0, indices_E.shape[0])
        cand = indices_E[rows]
        q_N = num_candidates * data["item_counts"] / data.num_interactions
    else:
        cand = jax.random.randint(key, (num_candidates,), 0, num_items, dtype=jnp.int32)
        q_N = jnp.full((num_items,), num_candidates / num_items)
    return cand.astype(jnp.int32), jnp.log(jnp.maximum(q_N, 1e-30))


@dataclasses.dataclass(frozen=True)
class SequenceSampledSoftmax(NextItemLoss):
    """Sampled softmax with logQ correction at every position (``rows = "users"``).

    Attributes:
      num_negatives: candidates M per step, shared by the batch's positions.
      sampler: ``popularity`` (training frequencies) or ``uniform`` (all items).
      logq: subtract ``log q`` from every logit (without it, popular items are
        over-penalised under ``sampler=popularity``).
      temperature: T.
    """

    num_negatives: int = 256
    sampler: str = "popularity"
    logq: bool = True
    temperature: float = 1.0
    name: ClassVar[str] = "sequence_sampled_softmax"  # its configs/loss file

    def __post_init__(self):
        check_positive_int("num_negatives", self.num_negatives)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"loss.sampler: {self.sampler!r} is not one of "
                             f"{', '.join(SAMPLERS)}")
        if not self.temperature > 0:
            raise ValueError(f"loss.temperature: must be > 0, got {self.temperature}")

    def position_loss(self, model, h_BxLxD, targets_BxL, valid_BxL, users_B, data, key):
        del users_B
        cand_C, log_q_N = proposal(key, self.num_negatives, data, self.sampler)
        h_XxD = h_BxLxD.reshape(-1, h_BxLxD.shape[-1])
        targets_X = targets_BxL.reshape(-1)
        pos_X = jnp.sum(h_XxD * model.item_vectors(targets_X), axis=-1)
        neg_XxC = h_XxD @ model.item_vectors(cand_C).T
        kwargs = {}
        if self.logq:
            kwargs = {"pos_log_q_B": log_q_N[targets_X], "neg_log_q_BxC": log_q_N[cand_C][None]}
        return sampled_softmax_loss(pos_X, neg_XxC, mask_B=valid_BxL.reshape(-1),
                                    temperature=self.temperature,
                                    neg_valid_BxC=cand_C[None, :] != targets_X[:, None],
                                    **kwargs)
