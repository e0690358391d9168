"""Losses as pure functions, plus small config dataclasses naming the batch kind they need.

Batch kinds: ``rating`` (user, item, rating triples), ``negatives`` (user,
positive item, M sampled negative items) and ``solver`` (no loss: the model
fits itself in closed form with ``solve_epoch``).
"""

from jaxrec.losses.pairwise import BPR, bpr_loss
from jaxrec.losses.pointwise import BCE, MSE, NoLoss, bce_loss, mse_loss
from jaxrec.losses.regularizers import l2_rows

__all__ = ["BCE", "BPR", "MSE", "NoLoss", "bce_loss", "bpr_loss", "l2_rows", "mse_loss"]
