"""Feature bags: padded id / weight lists per row, one side's fields over a joint vocabulary."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class FeatureBag:
    """The features of one side (items or users) as padded id / weight lists.

    Attributes:
      ids: int32 ``[R, L]`` feature ids in ``[0, vocab_size)``; 0 is padding.
      weights: float32 ``[R, L]``; 0 on padding.
      fields: field names, in column order.
      slots: ``(start, end)`` columns of each field in ``ids``.
      vocab: ``vocab_size`` names, ``"<field>=<value>"`` (``vocab[0] = "<pad>"``).
    """

    ids: np.ndarray
    weights: np.ndarray
    fields: tuple[str, ...]
    slots: tuple[tuple[int, int], ...]
    vocab: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_rows(self) -> int:
        return self.ids.shape[0]

    def dense(self) -> np.ndarray:
        """float32 ``[R, vocab_size]`` (column 0, padding, is all zero)."""
        out = np.zeros((self.num_rows, self.vocab_size), np.float32)
        rows = np.broadcast_to(np.arange(self.num_rows)[:, None], self.ids.shape)
        np.add.at(out, (rows, self.ids), self.weights)
        out[:, 0] = 0.0
        return out


@dataclasses.dataclass(frozen=True)
class Features:
    """What feature-aware models are built from (see :func:`build_features`).

    Attributes:
      item: item feature bag ``[N, L]``, or None.
      user: user feature bag ``[U, L_u]``, or None.
      item_warm: bool ``[N]``, items with at least one training interaction.
      user_warm: bool ``[U]``, users with at least one training interaction.
      history: the users' history profiles over the item vocabulary ``[U, S]``
        (the mean item bag of their training items), or None without item features.
    """

    item: FeatureBag | None
    user: FeatureBag | None
    item_warm: np.ndarray
    user_warm: np.ndarray
    history: FeatureBag | None = None


@dataclasses.dataclass(frozen=True)
class _Field:
    """One field before concatenation: per row a list of (token, weight)."""

    name: str
    rows: list[list[tuple[str, float]]]


def id_bag(n: int, name: str = "id") -> FeatureBag:
    """A bag holding only the row's own id: the featureless fallback (one id per row)."""
    return FeatureBag(ids=np.arange(1, n + 1, dtype=np.int32)[:, None],
                      weights=np.ones((n, 1), np.float32), fields=(name,), slots=((0, 1),),
                      vocab=("<pad>",) + tuple(f"{name}={i}" for i in range(n)))


def concat_fields(fields: Sequence[_Field], num_rows: int) -> FeatureBag | None:
    """Concatenate per-field token lists into one bag over a joint vocabulary."""
    if not fields:
        return None
    vocab: list[str] = ["<pad>"]
    index: dict[str, int] = {}
    slots, widths = [], []
    start = 0
    for f in fields:
        width = max([len(r) for r in f.rows] + [1])
        slots.append((start, start + width))
        widths.append(width)
        start += width
        for tokens in f.rows:
            for tok, _ in tokens:
                key = f"{f.name}={tok}"
                if key not in index:
                    index[key] = len(vocab)
                    vocab.append(key)
    ids = np.zeros((num_rows, start), np.int32)
    weights = np.zeros((num_rows, start), np.float32)
    for f, (s, _) in zip(fields, slots, strict=True):
        for r, tokens in enumerate(f.rows):
            for j, (tok, w) in enumerate(tokens):
                ids[r, s + j] = index[f"{f.name}={tok}"]
                weights[r, s + j] = w
    return FeatureBag(ids, weights, tuple(f.name for f in fields), tuple(slots), tuple(vocab))


def featureless(num_users: int, num_items: int) -> Features:
    """The fallback when a model is built without features: ids are the only features."""
    return Features(item=None, user=None, item_warm=np.ones(num_items, bool),
                    user_warm=np.ones(num_users, bool), history=None)
