"""Masked-item (Cloze) cross-entropy (BERT4Rec, Sun et al., CIKM 2019).

Each real position t of a user's stored sequence is replaced by the [MASK] token with
probability p (a sequence with none masked gets its latest item masked, so every user
contributes); the bidirectional model reads the masked sequence and, at each masked
position, scores every item with a full softmax::

    M    = {t real : u_t < p}  (or {latest} when empty),   s~ = s with s_t -> [MASK], t in M
    loss = sum_{b, t in M_b} [logsumexp_j r_btj(s~) - r_bt,s_bt(s~)] / sum_b |M_b|

Padding is never masked nor predicted. The per-position term is
`jaxrec.losses.softmax_ce.softmax_ce_loss`; memory is one ``[B, L, N]`` logit block.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from jaxrec.losses.base import check_gradient_model
from jaxrec.losses.softmax_ce import softmax_ce_loss
from jaxrec.models.base import MaskedItemStates


def cloze_mask(key: jax.Array, seq_BxL: jax.Array, *, mask_prob: float, pad: int,
               mask_token: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(masked_BxL, targets_BxL, masked_pos_BxL)`` of left-padded sequences.

    Args:
      key: the draw of the masked positions.
      seq_BxL: item sequences, ``pad`` for padding ``[B, L]``.
      mask_prob: p, the probability a real position is masked.
      pad: the padding index; mask_token: the [MASK] index.

    Returns the sequences with masked positions set to ``mask_token``, the true items
    (0 where not masked) and a float 0/1 mask of the masked positions. A row with real
    items and no draw below p has its last position (its latest item) masked.
    """
    real_BxL = seq_BxL != pad
    drawn_BxL = (jax.random.uniform(key, seq_BxL.shape) < mask_prob) & real_BxL
    none_B = ~jnp.any(drawn_BxL, axis=-1)
    last_BxL = jnp.zeros_like(real_BxL).at[:, -1].set(True) & real_BxL
    masked_BxL = drawn_BxL | (none_B[:, None] & last_BxL)
    masked_seq = jnp.where(masked_BxL, mask_token, seq_BxL)
    targets = jnp.where(masked_BxL, seq_BxL, 0)
    return masked_seq, targets, masked_BxL.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class MaskedItemCE:
    """Cloze cross-entropy over all items at masked positions (``rows = "users"``).

    Attributes:
      mask_prob: p, the probability each real position is masked (BERT4Rec on
        MovieLens-1M and Klenitskiy and Vasilev 2023: 0.2).

    The model must provide `jaxrec.models.base.MaskedItemStates` (`BERT4Rec`).
    """

    mask_prob: float = 0.2
    name: ClassVar[str] = "masked_item_ce"  # its configs/loss file
    rows: ClassVar[str] = "users"
    samples_unseen: ClassVar[bool] = False
    default_monitor: ClassVar[str] = "valid/ndcg@10"
    l2: ClassVar[float] = 0.0  # weight decay: optim.weight_decay

    def __post_init__(self):
        if not 0.0 < self.mask_prob <= 1.0:
            raise ValueError(f"loss.mask_prob: must be in (0, 1], got {self.mask_prob}")

    def check_model(self, model) -> None:
        check_gradient_model(self, model, needs=(MaskedItemStates,))

    def objective(self, model, batch, data, key, step):
        """Mask the batch users' sequences, encode them, full softmax at masked positions."""
        del data, step
        users_B = batch["users"]
        k_mask, k_model = jax.random.split(key)
        seq_BxL = model.cloze_sequences(users_B)
        masked, targets_BxL, valid_BxL = cloze_mask(
            k_mask, seq_BxL, mask_prob=self.mask_prob, pad=model.num_items,
            mask_token=model.mask_token)
        logits_BxLxN = model.item_logits(model.encode(masked, k_model))
        value = softmax_ce_loss(logits_BxLxN, targets_BxL,
                                valid_BxL=valid_BxL * batch["mask"][:, None])
        return value, batch["items"]
