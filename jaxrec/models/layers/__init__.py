"""Layers shared by several models (no model lives here).

* `features`: constant feature tables, bag embeddings, masked id embeddings, an MLP;
* `fields`: per-field embeddings and the pair-scoring base of DeepFM / DCN-V2;
* `history`: per-user training tables and time-ordered sequences and keyed dropout
  (Mult-VAE/DAE, SASRec, HSTU);
* `checks`: one-line hyperparameter checks.
"""

from jaxrec.models.layers.checks import check_positive_int, check_positive_ints
from jaxrec.models.layers.features import MLP, BagEmbedding, FeatureTable, IdEmbedding
from jaxrec.models.layers.fields import (
    FieldEmbeddings,
    FieldInteractionModel,
    align_ranks,
    blocked_pair_scores,
    partial_dense,
)
from jaxrec.models.layers.history import UserHistory, dropout, history_matrix, sequence_tables

__all__ = ["MLP", "BagEmbedding", "FeatureTable", "FieldEmbeddings", "FieldInteractionModel",
           "IdEmbedding", "UserHistory", "align_ranks", "blocked_pair_scores",
           "check_positive_int", "check_positive_ints", "dropout", "history_matrix",
           "partial_dense", "sequence_tables"]
