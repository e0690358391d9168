"""Top-k recommendations for one user from a trained run."""

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
    user = index_of(ds.train.user_index, raw_user)
    if user is None:
        raise ValueError(f"{name} {raw_user!r} is not a user of {ds.info.name} "
                         f"({ds.info.num_users} users)")
    model = nnx.merge(run.graphdef, *run.state) if model is None else model
    scores = np.array(model.score_all(jnp.asarray([user], jnp.int32))[0])
    if exclude_seen:
        scores[seen_items(run, user)] = -np.inf
    return top_items(ds.train, scores, k)


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
