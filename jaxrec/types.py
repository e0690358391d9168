"""Shared types: the dataset summary models are built from, and the shape-letter legend.

Shape suffixes used across the code base::

    B  batch of training examples       U  block of users being evaluated
    M  sampled negatives per example    N  number of items in the catalogue
    K  top-k cut-off (largest K asked)  D  embedding dimension
    E  number of interactions           S  padded per-user list length
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data it is built for.

    Attributes:
      num_users: size of the user vocabulary (indices are ``0..num_users-1``).
      num_items: size of the item vocabulary.
      num_train: number of training interactions.
      rating_mean: mean training rating (1.0 for implicit data).
      rating_min: smallest training rating.
      rating_max: largest training rating.
      implicit: whether ratings were turned into binary positives.
      name: dataset name, e.g. ``ml-latest-small``.
    """

    num_users: int
    num_items: int
    num_train: int
    rating_mean: float
    rating_min: float
    rating_max: float
    implicit: bool
    name: str = ""
