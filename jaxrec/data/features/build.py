"""A ``data.features`` spec -> :class:`Features`: fields, tables, warm flags, history profiles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxrec.data.features.bags import FeatureBag, Features, concat_fields
from jaxrec.data.features.builtin import item_field, user_field
from jaxrec.data.features.tables import table_fields
from jaxrec.data.interactions import DataError, Interactions


def _normalise_spec(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(spec, DictConfig | ListConfig):
            spec = OmegaConf.to_container(spec, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list | tuple):
        spec = {"item": list(spec)}
    if not isinstance(spec, Mapping):
        raise DataError(f"data.features: expected a list of item fields or a mapping, got {spec!r}")
    unknown = sorted(set(spec) - {"item", "user", "tables", "history_len"})
    if unknown:
        raise DataError(f"data.features: unknown key {unknown[0]!r} "
                        "(valid: item, user, tables, history_len)")
    out = dict(spec)
    for side in ("item", "user"):
        fields = out.get(side) or {}
        if isinstance(fields, str):
            fields = [fields]
        if isinstance(fields, list | tuple):
            fields = {f: {} for f in fields}
        out[side] = dict(fields)
    return out


def history_profiles(item_bag: FeatureBag, train: Interactions, *, max_len: int = 128,
                     weights: np.ndarray | None = None) -> FeatureBag:
    """Each user's mean item bag over its training items, as a ``[U, S]`` bag (S <= max_len,
    the largest-weight features kept). Users without training rows get an empty bag."""
    num_users = train.num_users
    w_E = np.ones(len(train), np.float64) if weights is None else np.asarray(weights, np.float64)
    rows_E = np.repeat(train.users, item_bag.ids.shape[1])
    ids_E = item_bag.ids[train.items].reshape(-1)
    vals_E = (item_bag.weights[train.items] * w_E[:, None]).reshape(-1)
    keep = (ids_E > 0) & (vals_E != 0)
    key = rows_E[keep].astype(np.int64) * item_bag.vocab_size + ids_E[keep]
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, weights=vals_E[keep])
    users_k, feats_k = uniq // item_bag.vocab_size, uniq % item_bag.vocab_size
    totals = np.bincount(train.users, weights=w_E, minlength=num_users)
    sums = sums / np.maximum(totals[users_k], 1e-12)
    order = np.lexsort((-np.abs(sums), users_k))
    counts = np.bincount(users_k, minlength=num_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - starts[users_k[order]]
    width = max(1, min(max_len, int(counts.max(initial=0))))
    sel = rank < width
    ids = np.zeros((num_users, width), np.int32)
    vals = np.zeros((num_users, width), np.float32)
    ids[users_k[sel], rank[sel]] = feats_k[sel]
    vals[users_k[sel], rank[sel]] = sums[sel]
    return FeatureBag(ids, vals, ("history",), ((0, width),), item_bag.vocab)


def build_features(full: Interactions, train: Interactions, spec: Any) -> Features | None:
    """The :class:`Features` of a dataset from a ``data.features`` spec (None -> None).

    Args:
      full: all interactions (vocabularies, item features, titles).
      train: the training part (warm items / users and history profiles).
      spec: see the module docstring.

    Raises:
      DataError: an unknown field, option or column kind, or a bad table, naming it.
    """
    spec = _normalise_spec(spec)
    if not spec:
        return None
    item_fields = [item_field(full, name, opts) for name, opts in spec["item"].items()]
    user_fields = [user_field(full, name, opts) for name, opts in spec["user"].items()]
    tables = spec.get("tables") or []
    if not isinstance(tables, list | tuple):
        raise DataError("data.features.tables: expected a list of table specs")
    for t, table in enumerate(tables):
        side, fields = table_fields(table, full, f"data.features.tables[{t}]")
        (item_fields if side == "item" else user_fields).extend(fields)
    item_bag = concat_fields(item_fields, full.num_items)
    user_bag = concat_fields(user_fields, full.num_users)
    item_warm = np.bincount(train.items, minlength=full.num_items) > 0
    user_warm = np.bincount(train.users, minlength=full.num_users) > 0
    history = None
    if item_bag is not None:
        history = history_profiles(item_bag, train, max_len=int(spec.get("history_len", 128)))
    return Features(item=item_bag, user=user_bag, item_warm=item_warm, user_warm=user_warm,
                    history=history)

