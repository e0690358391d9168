"""Context features of each interaction, computed from its timestamp (host, numpy).

``hour``     hour of day, 0-23 (UTC: the datasets' timestamps are Unix seconds and carry
             no time zone);
``weekday``  day of week, Monday = 0 ... Sunday = 6 (UTC);
``gap``      time since the same user's previous interaction, log-bucketised:
             ``0`` for a user's first interaction, else ``1 + min(floor(log2(max(dt, 1))),
             GAP_BUCKETS - 2)`` for a gap of ``dt`` seconds (bucket 1: under 2 s).

The gap reads only earlier interactions of the same user (time order, ties by item
index then row, as `jaxrec.data.splits` orders a leave-last split), so the context of an
interaction never reveals a later one. Models embed each field with its own table
(``CONTEXT_SIZES`` ids); `jaxrec.models.sasrec.SASRec` adds them to its position
embeddings (``model.time_features``).

:class:`ContextSpec` adds the dataset's extra interaction columns
(``Interactions.extra_columns``, e.g. ``device``) as categorical fields, with a
vocabulary of the training rows' values (id 0: a value training never had), and
defines the context of a *request*, what the feature models (``model.context`` of
deepfm, dcn_v2, two_tower) score a held-out split with: the context of each user's
first held-out interaction (by time) -- its hour, weekday and extra columns, and the gap
since the user's last known interaction at or before it. The time (and device) of a
request is known when recommending; no held-out item is revealed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

GAP_BUCKETS = 32  # 1 + floor(log2 s) up to 2^30 s (34 years), plus "no previous"
CONTEXT_SIZES = {"hour": 24, "weekday": 7, "gap": GAP_BUCKETS}
CONTEXT_FIELDS = tuple(CONTEXT_SIZES)


def check_context(names: Sequence[str]) -> tuple[str, ...]:
    """The names, checked against ``CONTEXT_FIELDS`` (one-line ValueError otherwise)."""
    names = tuple(names)
    for name in names:
        if name not in CONTEXT_SIZES:
            raise ValueError(f"context field {name!r} is not one of {', '.join(CONTEXT_FIELDS)}")
    return names


def gap_buckets(gap_seconds: np.ndarray) -> np.ndarray:
    """int32 buckets ``1 + min(floor(log2(max(dt, 1))), GAP_BUCKETS - 2)`` of gaps >= 0."""
    logs = np.floor(np.log2(np.maximum(np.asarray(gap_seconds, np.float64), 1.0)))
    return (1 + np.minimum(logs, GAP_BUCKETS - 2)).astype(np.int32)


def context_values(interactions: Any, names: Sequence[str] = CONTEXT_FIELDS) -> np.ndarray:
    """int32 ``[E, len(names)]``: the context ids of every interaction, in row order.

    Args:
      interactions: ``users``, ``items``, ``timestamps`` (Unix seconds) per row.
      names: fields of ``CONTEXT_FIELDS``, in the column order wanted.
    """
    names = check_context(names)
    users = np.asarray(interactions.users)
    ts = np.asarray(interactions.timestamps).astype(np.int64)
    out = np.zeros((len(users), len(names)), np.int32)
    gaps = np.zeros(len(users), np.int32)
    if len(users):
        order = np.lexsort((np.arange(len(users)), np.asarray(interactions.items), ts, users))
        same_user = np.r_[False, users[order][1:] == users[order][:-1]]
        dt = np.r_[0, np.diff(ts[order])]
        gaps[order] = np.where(same_user, gap_buckets(dt), 0)
    columns = {"hour": (ts // 3600) % 24, "weekday": (ts // 86400 + 3) % 7,  # 1970-01-01: Thu
               "gap": gaps}
    for j, name in enumerate(names):
        out[:, j] = columns[name]
    return out


def _first_rows(users: np.ndarray, items: np.ndarray, ts: np.ndarray, *, last: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(users_with_rows, row)``: each user's first (``last``: latest) row in time order
    (ties by item index, then row)."""
    order = np.lexsort((np.arange(len(users)), items, ts, users))
    sorted_users = users[order]
    edge = (np.r_[sorted_users[1:] != sorted_users[:-1], True] if last
            else np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    return sorted_users[edge], order[edge]


@dataclasses.dataclass(frozen=True)
class ContextSpec:
    """The context fields a model embeds, with the vocabularies of its column fields.

    Attributes:
      names: field names in column order: ``CONTEXT_FIELDS`` (time) or extra
        interaction columns of the dataset (``Interactions.extra_columns``).
      vocabs: per field, the sorted training values of a column field (its id is
        ``1 + position``; 0 is a value training never had), ``()`` for a time field.
    """

    names: tuple[str, ...]
    vocabs: tuple[tuple[str, ...], ...]

    @classmethod
    def build(cls, train, names: Sequence[str], *, key: str = "model.context") -> ContextSpec:
        """The spec of ``names`` over the training interactions ``train`` (one-line
        ValueError naming ``key`` and the field for an unknown or repeated name)."""
        names = tuple(str(n) for n in names)
        columns = dict(getattr(train, "extra_columns", None) or {})
        vocabs = []
        for j, name in enumerate(names):
            if name in names[:j]:
                raise ValueError(f"{key}: field {name!r} is listed twice")
            if name in CONTEXT_SIZES:
                vocabs.append(())
            elif name in columns:
                vocabs.append(tuple(sorted(set(np.asarray(columns[name]).astype(str).tolist()))))
            else:
                have = ", ".join([*CONTEXT_FIELDS, *columns])
                raise ValueError(f"{key}: field {name!r} is neither a time field nor an "
                                 f"interaction column of the data (have: {have}; a table's "
                                 "columns are kept with data.dataset.extra_columns)")
        return cls(names, tuple(vocabs))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Ids per field: ``CONTEXT_SIZES`` of a time field, 1 + vocabulary of a column."""
        return tuple(CONTEXT_SIZES[n] if n in CONTEXT_SIZES else 1 + len(v)
                     for n, v in zip(self.names, self.vocabs, strict=True))

    def ids(self, interactions) -> np.ndarray:
        """int32 ``[E, C]``: each interaction's context ids (per field, not offset)."""
        out = np.zeros((len(interactions.users), len(self.names)), np.int32)
        times = [n for n in self.names if n in CONTEXT_SIZES]
        values = context_values(interactions, times) if times else None
        columns = getattr(interactions, "extra_columns", None) or {}
        for j, (name, vocab) in enumerate(zip(self.names, self.vocabs, strict=True)):
            if name in CONTEXT_SIZES:
                out[:, j] = values[:, times.index(name)]
                continue
            if name not in columns:
                raise ValueError(f"model.context: the interactions have no column {name!r}")
            known = np.asarray(vocab, dtype=str)
            raw = np.asarray(columns[name]).astype(str)
            pos = np.clip(np.searchsorted(known, raw), 0, max(len(known) - 1, 0))
            found = known[pos] == raw if len(known) else np.zeros(len(raw), bool)
            out[:, j] = np.where(found, pos + 1, 0)
        return out

    def request_ids(self, known, heldout, num_users: int) -> np.ndarray:
        """int32 ``[U, C]``: the context of each user's next request.

        A user with rows in ``heldout`` gets the context of the first of them (time
        order): its hour, weekday and column values, and the gap since the user's latest
        ``known`` interaction at or before that time (0: none). Every other user (and
        every user when ``heldout`` is None: a live request) gets the context of their
        latest ``known`` interaction (zeros: none).
        """
        out = np.zeros((num_users, len(self.names)), np.int32)
        users_k = np.asarray(known.users)
        if len(users_k):
            with_rows, last = _first_rows(users_k, np.asarray(known.items),
                                          np.asarray(known.timestamps), last=True)
            out[with_rows] = self.ids(known)[last]
        if heldout is None or not len(heldout.users):
            return out
        req_users, first = _first_rows(np.asarray(heldout.users), np.asarray(heldout.items),
                                       np.asarray(heldout.timestamps), last=False)
        requests = heldout.select(first)
        out[req_users] = self.ids(requests)
        if "gap" in self.names:
            out[req_users, self.names.index("gap")] = self._gaps(known, req_users,
                                                                 np.asarray(requests.timestamps))
        return out

    @staticmethod
    def _gaps(known, users_R: np.ndarray, times_R: np.ndarray) -> np.ndarray:
        """Gap buckets from each user's latest known interaction at or before ``times_R``."""
        users_k = np.asarray(known.users).astype(np.int64)
        ts_k = np.asarray(known.timestamps).astype(np.int64)
        times_R = times_R.astype(np.int64)
        # rank the times so (user, time) is one sortable int64 key
        stamps, inverse = np.unique(np.r_[ts_k, times_R], return_inverse=True)
        span = len(stamps) + 1
        key_k = users_k * span + inverse[:len(ts_k)]
        order = np.argsort(key_k, kind="stable")
        pos = np.searchsorted(key_k[order], users_R.astype(np.int64) * span
                              + inverse[len(ts_k):], side="right") - 1
        prev = order[np.clip(pos, 0, None)] if len(order) else np.zeros(len(pos), np.int64)
        found = (pos >= 0) & (users_k[prev] == users_R) if len(order) else pos < -1
        dt = times_R - (ts_k[prev] if len(order) else 0)
        return np.where(found, gap_buckets(np.maximum(dt, 0)), 0).astype(np.int32)
