"""Filtering before the split: dedup, rating threshold, implicit, iterated k-core.

Order: dedup -> rating threshold -> implicit -> k-core -> compact re-indexing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrec.config import PreprocessConfig
from jaxrec.data.interactions import DataError, Interactions

DEDUP_MODES = ("last", "first", "mean", "none")


def preprocess(inter: Interactions, cfg: PreprocessConfig) -> Interactions:
    """Apply the filters of ``cfg`` and re-index users and items contiguously.

    Args:
      inter: raw interactions.
      cfg: a :class:`~jaxrec.config.PreprocessConfig` (or a node with its fields).
        ``dedup`` resolves repeated (user, item) pairs: ``last`` / ``first`` keeps
        the latest / earliest by timestamp (ties by row order), ``mean`` averages
        ratings (timestamp = latest), ``none`` keeps them all. ``rating_threshold``
        keeps ratings >= it; ``implicit`` sets every kept rating to 1.0;
        ``min_user_interactions`` / ``min_item_interactions`` drop users / items
        with fewer interactions, repeated until nothing changes (k-core).

    Returns:
      The filtered interactions with only the used users and items in their
      vocabularies (original order kept; feature rows and titles follow).

    Raises:
      DataError: a bad option, or a filter that leaves nothing (named with its value).
    """
    if cfg.dedup not in DEDUP_MODES:
        raise DataError(f"preprocess.dedup={cfg.dedup!r} is not one of {', '.join(DEDUP_MODES)}")
    for key in ("min_user_interactions", "min_item_interactions"):
        if getattr(cfg, key) < 0:
            raise DataError(f"preprocess.{key}={getattr(cfg, key)} must be >= 0")
    if len(inter) == 0:
        raise DataError(f"{inter.name}: the dataset has no interactions before preprocessing")
    out = dedup(inter, cfg.dedup)
    if cfg.rating_threshold is not None:
        out = out.select(out.ratings >= cfg.rating_threshold)
        _check_nonempty(out, f"preprocess.rating_threshold={cfg.rating_threshold}")
    if cfg.implicit:
        out = dataclasses.replace(out, ratings=np.ones(len(out), dtype=np.float32))
    if cfg.min_user_interactions > 1 or cfg.min_item_interactions > 1:
        out = k_core(out, cfg.min_user_interactions, cfg.min_item_interactions)
        _check_nonempty(out, f"k-core filter (preprocess.min_user_interactions="
                        f"{cfg.min_user_interactions}, min_item_interactions="
                        f"{cfg.min_item_interactions})")
    return compact(out)


def _check_nonempty(inter: Interactions, what: str) -> None:
    if len(inter) == 0:
        raise DataError(f"{inter.name}: {what} removed every interaction")


def dedup(inter: Interactions, mode: str) -> Interactions:
    """Resolve repeated (user, item) pairs; rows stay in their original order."""
    if mode == "none" or len(inter) == 0:
        return inter
    rows = np.arange(len(inter))
    # Sort by pair, then time, then row: each pair's rows are contiguous and chronological.
    order = np.lexsort((rows, inter.timestamps, inter.items, inter.users))
    users, items = inter.users[order], inter.items[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    if starts.all():
        return inter
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(order)) - 1
    if mode == "first":
        return inter.select(np.sort(order[first]))
    keep = order[last]
    if mode == "last":
        return inter.select(np.sort(keep))
    # mean: average each group's ratings onto the group's latest row.
    sums = np.add.reduceat(inter.ratings[order].astype(np.float64), first)
    means = (sums / (last - first + 1)).astype(np.float32)
    position = np.argsort(keep)
    out = inter.select(keep[position])
    return dataclasses.replace(out, ratings=means[position])


def k_core(inter: Interactions, min_user: int, min_item: int) -> Interactions:
    """Drop users with < ``min_user`` and items with < ``min_item`` interactions, until stable."""
    out = inter
    while len(out):
        user_count = np.bincount(out.users, minlength=out.num_users)
        item_count = np.bincount(out.items, minlength=out.num_items)
        keep = (user_count[out.users] >= min_user) & (item_count[out.items] >= min_item)
        if keep.all():
            break
        out = out.select(keep)
    return out


def compact(inter: Interactions) -> Interactions:
    """Re-index so only used users and items remain (order kept, features sliced)."""
    used_users = np.zeros(inter.num_users, dtype=bool)
    used_users[inter.users] = True
    used_items = np.zeros(inter.num_items, dtype=bool)
    used_items[inter.items] = True
    if used_users.all() and used_items.all():
        return inter
    new_user = np.cumsum(used_users, dtype=np.int64) - 1
    new_item = np.cumsum(used_items, dtype=np.int64) - 1
    return dataclasses.replace(
        inter,
        users=new_user[inter.users].astype(np.int32),
        items=new_item[inter.items].astype(np.int32),
        user_ids=inter.user_ids[used_users],
        item_ids=inter.item_ids[used_items],
        item_titles=None if inter.item_titles is None else inter.item_titles[used_items],
        item_features={k: np.asarray(v)[used_items] for k, v in inter.item_features.items()},
    )
