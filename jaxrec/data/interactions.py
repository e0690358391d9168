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
      user_attributes: named per-user arrays from the dataset's user file, one row per
        entry of ``user_attribute_ids`` -- keyed by *raw* user id, not by index, so
        filtering and re-indexing never misalign them; :meth:`user_attribute` reads
        one aligned to ``user_ids``. MovieLens (ml-100k ``u.user``, ml-1m ``users.dat``):
        ``age`` int32 years (ml-100k) or ``age_band`` int32 band code (ml-1m: 1, 18,
        25, 35, 45, 50, 56, each its band's lower bound), and object arrays of str
        ``gender`` ("M" / "F"), ``occupation`` (name) and ``zip`` (as written).
      user_attribute_ids: raw user ids of the rows of ``user_attributes`` (None: none).
      parts: int8 ``[E]`` split part each row ships with, for datasets published with
        their split (NCF's ``.train.rating`` / ``.test.rating``): 0 train, 1 valid,
        2 test; read by ``split.method=predefined``. None for the others.
      universe: how a loader with a shipped split formed the item universe, in words
        (``"union of train/valid/test files"``; ``results.json`` states it under
        ``data.universe``), or None when the data has no shipped split.
      extra_columns: named per-row arrays of other interaction columns a loader kept
        (``data=table``'s ``extra_columns``: e.g. ``device``, str values), each ``[E]``;
        kept row-aligned by :meth:`select` / :meth:`concat`, read as context fields
        (`jaxrec.data.features.context`).
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
    user_attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    user_attribute_ids: np.ndarray | None = None
    parts: np.ndarray | None = None
    universe: str | None = None
    extra_columns: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = len(self.users)
        for field in ("items", "ratings", "timestamps"):
            if len(getattr(self, field)) != n:
                raise DataError(f"{self.name}: field {field!r} has {len(getattr(self, field))} "
                                f"rows, expected {n}")
        for key, value in self.extra_columns.items():
            if len(value) != n:
                raise DataError(f"{self.name}: interaction column {key!r} has {len(value)} "
                                f"rows, expected {n}")
        if self.parts is not None and len(self.parts) != n:
            raise DataError(f"{self.name}: field 'parts' has {len(self.parts)} rows, "
                            f"expected {n}")
        rows = 0 if self.user_attribute_ids is None else len(self.user_attribute_ids)
        for key, value in self.user_attributes.items():
            if len(value) != rows:
                raise DataError(f"{self.name}: user attribute {key!r} has {len(value)} rows, "
                                f"expected {rows} (one per user_attribute_ids entry)")

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

    def user_attribute(self, name: str) -> np.ndarray:
        """``[num_users]`` user attribute ``name`` of each user index.

        Users the user file does not list get the unknown value: ``""`` for strings,
        0 for numbers (the feature builders give them no feature for that field).
        """
        values = np.asarray(self.user_attributes[name])
        ids = np.asarray(self.user_attribute_ids)
        order = np.argsort(ids, kind="stable")
        pos = np.clip(np.searchsorted(ids, self.user_ids, sorter=order), 0, max(len(ids) - 1, 0))
        found = (ids[order[pos]] == self.user_ids) if len(ids) else np.zeros(self.num_users, bool)
        out = np.full(self.num_users, "" if values.dtype == object else 0, dtype=values.dtype)
        out[found] = values[order[pos[found]]]
        return out

    def select(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows picked by a boolean mask or an index array; vocabularies are kept."""
        return dataclasses.replace(
            self,
            users=self.users[mask_or_index],
            items=self.items[mask_or_index],
            ratings=self.ratings[mask_or_index],
            timestamps=self.timestamps[mask_or_index],
            parts=None if self.parts is None else self.parts[mask_or_index],
            extra_columns={k: np.asarray(v)[mask_or_index] for k, v in self.extra_columns.items()},
        )

    def concat(self, other: Interactions) -> Interactions:
        """Rows of ``self`` followed by rows of ``other`` (same vocabularies)."""
        return dataclasses.replace(
            self,
            users=np.concatenate([self.users, other.users]),
            items=np.concatenate([self.items, other.items]),
            ratings=np.concatenate([self.ratings, other.ratings]),
            timestamps=np.concatenate([self.timestamps, other.timestamps]),
            parts=(None if self.parts is None or other.parts is None
                   else np.concatenate([self.parts, other.parts])),
            extra_columns={k: np.concatenate([np.asarray(v), np.asarray(other.extra_columns[k])])
                           for k, v in self.extra_columns.items() if k in other.extra_columns},
        )

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user sorted item lists: ``(indptr [num_users+1], indices [E])``."""
        order = np.lexsort((self.items, self.users))
        counts = np.bincount(self.users, minlength=self.num_users)
        indptr = np.zeros(self.num_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, self.items[order].astype(np.int32)
