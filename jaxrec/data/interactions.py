"""The in-memory interaction table every dataset loader produces."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np


class DataError(ValueError):
    """Bad input data: the message names the file, field and value."""


@dataclasses.dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions with contiguous integer ids.

    All parts of a split (train / valid / test) share the same vocabularies and
    feature tables, so an index means the same user or item everywhere.

    Attributes:
      users: int32 ``[E]`` user indices in ``[0, num_users)``.
      items: int32 ``[E]`` item indices in ``[0, num_items)``.
      ratings: float32 ``[E]`` explicit rating, or 1.0 for implicit positives.
      timestamps: int64 ``[E]`` Unix seconds (0 where the data has none).
      user_ids: ``[num_users]`` raw user id of each index.
      item_ids: ``[num_items]`` raw item id of each index.
      item_titles: ``[num_items]`` object array of titles, or None.
      item_features: named item feature arrays with leading dim ``num_items``
        (MovieLens: ``genres`` float32 ``[N, G]`` multi-hot, ``year`` int32 ``[N]``
        with 0 for unknown, ``tags`` float32 ``[N, T]`` tag counts).
      feature_vocab: names for the columns of multi-column features
        (``genres`` -> genre names, ``tags`` -> tag strings).
      name: dataset name.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_titles: np.ndarray | None = None
    item_features: dict[str, Any] = dataclasses.field(default_factory=dict)
    feature_vocab: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        n = len(self.users)
        for field in ("items", "ratings", "timestamps"):
            if len(getattr(self, field)) != n:
                raise DataError(f"{self.name}: field {field!r} has {len(getattr(self, field))} "
                                f"rows, expected {n}")

    def __len__(self) -> int:
        return len(self.users)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @functools.cached_property
    def user_index(self) -> dict[Any, int]:
        """Raw user id -> index."""
        return {raw: i for i, raw in enumerate(self.user_ids.tolist())}

    @functools.cached_property
    def item_index(self) -> dict[Any, int]:
        """Raw item id -> index."""
        return {raw: i for i, raw in enumerate(self.item_ids.tolist())}

    def select(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows picked by a boolean mask or an index array; vocabularies are kept."""
        return dataclasses.replace(
            self,
            users=self.users[mask_or_index],
            items=self.items[mask_or_index],
            ratings=self.ratings[mask_or_index],
            timestamps=self.timestamps[mask_or_index],
        )

    def concat(self, other: Interactions) -> Interactions:
        """Rows of ``self`` followed by rows of ``other`` (same vocabularies)."""
        return dataclasses.replace(
            self,
            users=np.concatenate([self.users, other.users]),
            items=np.concatenate([self.items, other.items]),
            ratings=np.concatenate([self.ratings, other.ratings]),
            timestamps=np.concatenate([self.timestamps, other.timestamps]),
        )

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user sorted item lists: ``(indptr [num_users+1], indices [E])``."""
        order = np.lexsort((self.items, self.users))
        counts = np.bincount(self.users, minlength=self.num_users)
        indptr = np.zeros(self.num_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, self.items[order].astype(np.int32)
