"""Losses as pure functions, plus small config dataclasses naming the batch kind they need.

Batch kinds: ``rating`` (user, item, rating triples), ``negatives`` (user,
positive item, M sampled negative items), ``solver`` (no loss: the model
fits itself in closed form with ``solve_epoch``) and ``users`` (one example per
training user; the loss calls a whole-user model method: Mult-VAE, SASRec).
"""

from jaxrec.losses.pairwise import BPR, bpr_loss
from jaxrec.losses.pointwise import BCE, MSE, NoLoss, bce_loss, mse_loss
from jaxrec.losses.regularizers import l2_rows
from jaxrec.losses.sampled_softmax import SampledSoftmax, sampled_softmax_loss

__all__ = ["BCE", "BPR", "MSE", "NoLoss", "bce_loss", "bpr_loss", "l2_rows", "mse_loss"]
__all__ += ["SampledSoftmax", "sampled_softmax_loss"]

from jaxrec.losses.multinomial import Multinomial, multinomial_loss  # noqa: E402  (kind users)
from jaxrec.losses.sequence import SequenceBCE, sequence_bce_loss  # noqa: E402

__all__ += ["Multinomial", "SequenceBCE", "multinomial_loss", "sequence_bce_loss"]

from jaxrec.losses.gbce import GBCE, gbce_beta, gbce_loss  # noqa: E402  (next-item losses)
from jaxrec.losses.sequence_sampled_softmax import SequenceSampledSoftmax  # noqa: E402
from jaxrec.losses.softmax_ce import SoftmaxCE, softmax_ce_loss  # noqa: E402

__all__ += ["GBCE", "SequenceSampledSoftmax", "SoftmaxCE", "gbce_beta", "gbce_loss",
            "softmax_ce_loss"]

from jaxrec.losses.bpr_max import BPRMax, bpr_max_rows  # noqa: E402  (GRU4Rec's losses)
from jaxrec.losses.masked_item_ce import MaskedItemCE, cloze_mask  # noqa: E402  (BERT4Rec)
from jaxrec.losses.minibatch_ce import MiniBatchCE, minibatch_ce_rows  # noqa: E402
from jaxrec.losses.top1_max import Top1Max, top1_max_rows  # noqa: E402

__all__ += ["BPRMax", "MaskedItemCE", "MiniBatchCE", "Top1Max", "bpr_max_rows", "cloze_mask",
            "minibatch_ce_rows", "top1_max_rows"]
