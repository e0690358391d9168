"""A fingerprint of a split dataset: what a run was trained and evaluated on.

A run records it (``data.json``); ``evaluate``, ``recommend`` and ``trainer.resume``
recompute it from the data on disk now and refuse a mismatch, so a changed ratings
file can never silently turn training rows into test rows.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def _ids_bytes(ids: np.ndarray) -> bytes:
    ids = np.asarray(ids)
    if ids.dtype == object or ids.dtype.kind in "US":
        return "\x1f".join(map(str, ids.tolist())).encode()
    return np.ascontiguousarray(ids).tobytes()


def fingerprint(dataset) -> dict[str, Any]:
    """``{"fingerprint": hex, "users", "items", "train", "valid", "test"}`` of a Dataset:
    a hash of every part's rows (users, items, ratings, in order) and both vocabularies."""
    h = hashlib.blake2b(digest_size=12)
    h.update(_ids_bytes(dataset.full.user_ids))
    h.update(_ids_bytes(dataset.full.item_ids))
    counts = {}
    for name in ("train", "valid", "test"):
        part = getattr(dataset, name)
        counts[name] = 0 if part is None else len(part)
        h.update(name.encode() + str(counts[name]).encode())
        if part is not None:
            for arr in (part.users, part.items, part.ratings):
                h.update(np.ascontiguousarray(arr).tobytes())
    return {"fingerprint": h.hexdigest(), "users": int(dataset.info.num_users),
            "items": int(dataset.info.num_items), **counts}


def check_same(saved: dict[str, Any], now: dict[str, Any], source: str) -> None:
    """One-line ``ValueError`` when the data changed since ``saved`` was recorded."""
    if saved.get("fingerprint") == now["fingerprint"]:
        return
    changed = [f"{k} {saved.get(k)} -> {now[k]}" for k in ("users", "items", "train", "valid",
                                                           "test") if saved.get(k) != now[k]]
    raise ValueError(f"{source}: the data differs from what the run was trained on "
                     f"({', '.join(changed) or 'same sizes, other rows'}); its split would mix "
                     "training rows into the evaluation: restore the data or retrain")
