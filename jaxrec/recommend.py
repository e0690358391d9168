"""Top-k recommendations for one user from a trained run."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx


def recommend(run, raw_user: str, k: int = 10) -> list[tuple[object, str, float]]:
    """The ``k`` best-scored items the user has not interacted with (in any split).

    Args:
      run: a :class:`jaxrec.assembly.LoadedRun`.
      raw_user: the user's id as written in the dataset (``"1"`` and ``1`` both match).
      k: how many items.

    Returns:
      ``(raw item id, title or "", score)`` tuples, best first.
    """
    if k < 1:
        raise ValueError(f"-k: must be >= 1, got {k}")
    ds = run.dataset
    index = ds.train.user_index
    user = index.get(raw_user)
    if user is None:
        try:
            user = index.get(type(next(iter(index)))(raw_user))
        except (ValueError, StopIteration):
            user = None
    if user is None:
        raise SystemExit(f"error: --user {raw_user!r} is not a user of {ds.info.name} "
                         f"({ds.info.num_users} users)")
    model = nnx.merge(run.graphdef, *run.state)
    scores = np.array(model.score_all(jnp.asarray([user], jnp.int32))[0])
    scores[seen_items(run, user)] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    titles = ds.train.item_titles
    return [(ds.train.item_ids[i].item() if hasattr(ds.train.item_ids[i], "item")
             else ds.train.item_ids[i], "" if titles is None else str(titles[i]), float(scores[i]))
            for i in order if np.isfinite(scores[i])]


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
