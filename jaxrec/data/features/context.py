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
"""

from __future__ import annotations

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
