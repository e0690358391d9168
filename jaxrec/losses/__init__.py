"""Losses as pure functions, plus small config dataclasses naming the batch kind they need.

Batch kinds: ``rating`` (user, item, rating triples) and ``negatives`` (user,
positive item, M sampled negative items).
"""

from jaxrec.losses.pairwise import BPR, bpr_loss
from jaxrec.losses.pointwise import BCE, MSE, bce_loss, mse_loss
from jaxrec.losses.regularizers import l2_rows

__all__ = ["BCE", "BPR", "MSE", "bce_loss", "bpr_loss", "l2_rows", "mse_loss"]
