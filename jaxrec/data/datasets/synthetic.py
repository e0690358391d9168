"""A synthetic dataset with planted low-rank structure, for tests and sanity checks."""

from __future__ import annotations

import numpy as np

from jaxrec.data.interactions import DataError, Interactions

_T0 = 1_500_000_000  # 2017-07-14, so timestamps look like Unix seconds


def make_synthetic(num_users: int = 200, num_items: int = 300, dim: int = 8,
                   interactions_per_user: int = 30, num_genres: int = 10, noise: float = 0.1,
                   seed: int = 0) -> Interactions:
    """Interactions drawn from latent user and item factors (deterministic in ``seed``).

    Generative story: user factors ``P [U, D]`` and item factors ``Q [N, D]`` are
    standard normal / sqrt(D); affinity ``A = P Q^T``. Each user picks
    ``interactions_per_user`` distinct items with probability proportional to
    ``exp(2 A)`` (Gumbel top-k), so a factor model recovers the choices. Ratings
    are ``clip(round(3 + 1.2 z + noise * eps), 1, 5)`` where ``z`` is the affinity
    standardised over the sampled pairs. Genres come from the factors: genre
    prototypes ``G [num_genres, D]``; an item has its best-matching genre plus every
    genre whose score ``Q G^T`` is in the top 20% overall, so genres are informative.
    Each user's timestamps increase (one per minute, interleaved across users),
    in a random order of the user's items.

    Args:
      num_users: U.
      num_items: N.
      dim: D, the planted rank.
      interactions_per_user: items per user (<= N).
      num_genres: genre columns.
      noise: standard deviation of the rating noise (in rating units / 1.2).
      seed: numpy seed.

    Returns:
      Interactions named ``synthetic`` with ``item_features["genres"]`` float32
      ``[N, num_genres]`` multi-hot, titles ``"item <i>"`` and raw ids ``0..``.
      Items that no user picked still have vocabulary rows; preprocessing drops them.
    """
    if not 0 < interactions_per_user <= num_items:
        raise DataError(f"make_synthetic: interactions_per_user={interactions_per_user} must be "
                        f"in [1, num_items={num_items}]")
    for key, value in (("num_users", num_users), ("dim", dim), ("num_genres", num_genres)):
        if value < 1:
            raise DataError(f"make_synthetic: {key}={value} must be >= 1")
    rng = np.random.default_rng(seed)
    users_UxD = rng.normal(size=(num_users, dim)) / np.sqrt(dim)
    items_NxD = rng.normal(size=(num_items, dim)) / np.sqrt(dim)
    affinity_UxN = users_UxD @ items_NxD.T

    gumbel_UxN = rng.gumbel(size=affinity_UxN.shape)
    keys_UxN = 2.0 * affinity_UxN + gumbel_UxN
    picked_UxK = np.argpartition(-keys_UxN, interactions_per_user - 1, axis=1)
    picked_UxK = picked_UxK[:, :interactions_per_user]
    picked_UxK = rng.permuted(np.sort(picked_UxK, axis=1), axis=1)  # order = time order

    users = np.repeat(np.arange(num_users), interactions_per_user)
    items = picked_UxK.reshape(-1)
    score = affinity_UxN[users, items]
    z = (score - score.mean()) / max(score.std(), 1e-12)
    ratings = np.clip(np.round(3.0 + 1.2 * z + noise * rng.normal(size=z.shape)), 1, 5)
    position = np.tile(np.arange(interactions_per_user), num_users)
    timestamps = _T0 + 60 * (position * num_users + users)

    prototypes_GxD = rng.normal(size=(num_genres, dim))
    genre_score_NxG = items_NxD @ prototypes_GxD.T
    genres = genre_score_NxG >= np.quantile(genre_score_NxG, 0.8)
    genres[np.arange(num_items), genre_score_NxG.argmax(axis=1)] = True

    return Interactions(
        users=users.astype(np.int32), items=items.astype(np.int32),
        ratings=ratings.astype(np.float32), timestamps=timestamps.astype(np.int64),
        user_ids=np.arange(num_users, dtype=np.int64),
        item_ids=np.arange(num_items, dtype=np.int64),
        item_titles=np.array([f"item {i}" for i in range(num_items)], dtype=object),
        item_features={"genres": genres.astype(np.float32)},
        feature_vocab={"genres": [f"genre {g}" for g in range(num_genres)]},
        name="synthetic")
