"""Top-k recommendations for one user, or a live session, from a trained run."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx


def recommend(run, raw_user, k: int = 10, *, model=None, exclude_seen: bool = True,
              name: str = "user") -> list[tuple[object, str, float]]:
    """The ``k`` best-scored items the user has not interacted with (in any split).

    Args:
      run: a :class:`jaxrec.assembly.LoadedRun`.
      raw_user: the user's id as written in the dataset (``"1"`` and ``1`` both match).
      k: how many items.
      model: the run's merged model (merged from ``run`` when None).
      exclude_seen: leave out the items the user interacted with.
      name: what the error calls the user (the CLI says ``--user``).

    Returns:
      ``(raw item id, title or "", score)`` tuples, best first.
    """
    if k < 1:
        raise ValueError(f"-k: must be >= 1, got {k}")
    ds = run.dataset
    user = user_index(run, raw_user, name)
    model = nnx.merge(run.graphdef, *run.state) if model is None else model
    scores = np.array(model.score_all(jnp.asarray([user], jnp.int32))[0])
    if exclude_seen:
        scores[seen_items(run, user)] = -np.inf
    return top_items(ds.train, scores, k)


def recommend_session(run, items: np.ndarray, k: int = 10, *, user: int | None = None,
                      replace: bool = False, model=None, exclude_seen: bool = True
                      ) -> list[tuple[object, str, float]]:
    """The ``k`` best items after a live session ``items`` (indices, in time order).

    Sequential models (`jaxrec.models.base.SequenceScorer`) score the next item after the
    user's known sequence (every split, in time order) with the session appended, or after
    the session alone (``replace`` or no ``user``); fold-in models
    (`jaxrec.models.base.FoldIn`: EASE, iALS, Mult-VAE) score the 0/1 row of the user's
    items plus the session's. Scored on device; nothing is refitted. ``exclude_seen`` leaves out
    the session's items and (unless ``replace``) the user's.
    """
    from jaxrec.models.base import FoldIn, SequenceScorer

    if k < 1:
        raise ValueError(f"-k: must be >= 1, got {k}")
    model = nnx.merge(run.graphdef, *run.state) if model is None else model
    ds, n = run.dataset, run.dataset.info.num_items
    known = np.zeros(0, np.int64)
    if user is not None and not replace:
        rows = np.flatnonzero(ds.full.users == user)
        order = np.lexsort((rows, ds.full.items[rows], ds.full.timestamps[rows]))
        known = ds.full.items[rows[order]]
    items = np.concatenate([known, np.asarray(items, np.int64)]).astype(np.int32)
    if isinstance(model, SequenceScorer):
        seq = np.full(model.max_len, n, np.int32)
        tail = items[-model.max_len:]
        seq[model.max_len - len(tail):] = tail
        scores = np.array(model.score_sequence(jnp.asarray(seq[None]))[0])
    elif isinstance(model, FoldIn):
        row = np.zeros((1, n), np.float32)
        row[0, items] = 1.0
        scores = np.array(model.score_history(jnp.asarray(row))[0])
    else:
        raise ValueError(f"recommend(history=...): {type(model).__name__} scores known users "
                         "only; use a sequential model (sasrec) or a fold-in one (ease, ials, "
                         "multvae)")
    if exclude_seen:
        scores[items] = -np.inf
        if user is not None and not replace:
            scores[seen_items(run, user)] = -np.inf
    return top_items(ds.train, scores, k)


def item_indices(run, raw_items, name: str = "item") -> np.ndarray:
    """int32 indices of raw item ids; a one-line ``ValueError`` naming an unknown one."""
    index = run.dataset.train.item_index
    out = []
    for item in raw_items:
        found = index_of(index, item)
        if found is None:
            raise ValueError(f"{name} {item!r} is not an item of {run.dataset.info.name}")
        out.append(found)
    return np.asarray(out, np.int32)


def user_index(run, raw_user, name: str = "user") -> int:
    """The index of a raw user id; a one-line ``ValueError`` naming an unknown one."""
    ds = run.dataset
    user = index_of(ds.train.user_index, raw_user)
    if user is None:
        raise ValueError(f"{name} {raw_user!r} is not a user of {ds.info.name} "
                         f"({ds.info.num_users} users)")
    return user


def index_of(index: dict, raw_id) -> int | None:
    """The index of ``raw_id`` in a raw-id -> index map (``"1"`` and ``1`` both match)."""
    found = index.get(raw_id)
    if found is None:
        try:
            found = index.get(type(next(iter(index)))(raw_id))
        except (ValueError, TypeError, StopIteration):
            found = None
    return found


def top_items(inter, scores_N: np.ndarray, k: int) -> list[tuple[object, str, float]]:
    """``(raw item id, title or "", score)`` of the ``k`` best finite scores, best first."""
    order = np.argsort(-scores_N, kind="stable")[:k]
    titles = inter.item_titles
    return [(inter.item_ids[i].item() if hasattr(inter.item_ids[i], "item")
             else inter.item_ids[i], "" if titles is None else str(titles[i]),
             float(scores_N[i])) for i in order if np.isfinite(scores_N[i])]


def seen_items(run, user: int) -> np.ndarray:
    """Indices of every item ``user`` (an index) interacted with in the raw data.

    That is the preprocessed table (all splits) plus, when preprocessing drops
    rows (rating threshold, k-core), the user's dropped interactions: a movie
    rated one star and filtered out by ``rating_threshold`` was still seen.
    """
    ds = run.dataset
    seen = ds.full.items[ds.full.users == user]
    pre = run.cfg.data.get("preprocess")
    filtered = pre is not None and (pre.get("rating_threshold") is not None
                                    or (pre.get("min_user_interactions") or 0) > 1
                                    or (pre.get("min_item_interactions") or 0) > 1)
    if not filtered:
        return seen
    from jaxrec.data.pipeline import load_dataset

    raw = load_dataset(run.cfg.data)
    raw_user = raw.user_index.get(ds.full.user_ids[user].item()
                                  if hasattr(ds.full.user_ids[user], "item")
                                  else ds.full.user_ids[user])
    if raw_user is None:
        return seen
    index = ds.full.item_index
    raw_items = raw.item_ids[raw.items[raw.users == raw_user]].tolist()
    extra = np.asarray([index[i] for i in raw_items if i in index], dtype=seen.dtype)
    return np.concatenate([seen, extra])
