"""A synthetic dataset with planted low-rank structure, for tests and sanity checks."""

from __future__ import annotations

import numpy as np

from jaxrec.data.interactions import DataError, Interactions

_T0 = 1_500_000_000  # 2017-07-14, so timestamps look like Unix seconds
DENSE_CELLS = 1 << 24  # above this many users x items cells, sparse=None generates sparsely
_CHUNK_FLOATS = 1 << 22  # candidate factors gathered at once by the sparse generator


def make_synthetic(num_users: int = 200, num_items: int = 300, dim: int = 8,
                   interactions_per_user: int = 30, num_genres: int = 10, noise: float = 0.1,
                   seed: int = 0, popularity: float = 0.0,
                   sparse: bool | None = None) -> Interactions:
    """Interactions drawn from latent user and item factors (deterministic in ``seed``).

    Generative story: user factors ``P [U, D]`` and item factors ``Q [N, D]`` are
    standard normal / sqrt(D); affinity ``A = P Q^T``. Each user picks
    ``interactions_per_user`` distinct items with probability proportional to
    ``pop_i exp(2 A)`` (Gumbel top-k), so a factor model recovers the choices;
    ``pop_i = (1 + rank_i)^-popularity`` over a random ranking of the items (Zipf-like
    popularity skew; 0 = none). Dense generation materialises ``[U, N]`` (~38 bytes a
    cell); sparse generation (:func:`_pick_sparse`) draws ``2k + 32`` candidates per
    user from a cluster proposal and keeps ``k`` distinct ones by the same Gumbel top-k
    with importance weights, in memory linear in the interactions (ml-20m's shape,
    138k x 27k with 20M interactions: about a minute and 1.6 GB on 2 cores). Ratings
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
      popularity: exponent of the item popularity skew (0: none; 1: Zipf).
      sparse: generate without the ``[U, N]`` matrices; None: when ``U * N`` exceeds
        ``DENSE_CELLS`` (the small configs keep the dense generator's exact output).

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
    if popularity < 0:
        raise DataError(f"make_synthetic: popularity={popularity} must be >= 0")
    if sparse is None:
        sparse = num_users * num_items > DENSE_CELLS
    rng = np.random.default_rng(seed)
    users_UxD = rng.normal(size=(num_users, dim)) / np.sqrt(dim)
    items_NxD = rng.normal(size=(num_items, dim)) / np.sqrt(dim)
    # its own stream, so popularity=0 keeps the dense generator's draws unchanged
    log_pop_N = -popularity * np.log1p(np.random.default_rng([seed, 1]).permutation(num_items))

    users = np.repeat(np.arange(num_users), interactions_per_user)
    if sparse:
        picked_UxK, score = _pick_sparse(rng, users_UxD, items_NxD, log_pop_N,
                                         interactions_per_user)
    else:
        affinity_UxN = users_UxD @ items_NxD.T
        gumbel_UxN = rng.gumbel(size=affinity_UxN.shape)
        keys_UxN = 2.0 * affinity_UxN + gumbel_UxN
        if popularity:
            keys_UxN += log_pop_N
        picked_UxK = np.argpartition(-keys_UxN, interactions_per_user - 1, axis=1)
        picked_UxK = picked_UxK[:, :interactions_per_user]
        picked_UxK = rng.permuted(np.sort(picked_UxK, axis=1), axis=1)  # order = time order
        score = affinity_UxN[users, picked_UxK.reshape(-1)]
    items = picked_UxK.reshape(-1)
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


def _pick_sparse(rng: np.random.Generator, users_UxD: np.ndarray, items_NxD: np.ndarray,
                 log_pop_N: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(picked_UxK int32 in time order, affinity_E float64)`` without a ``[U, N]`` matrix.

    Items are grouped into ``M <= 64`` clusters (by the best of ``M`` random directions).
    A user draws ``C = 2k + 32`` candidates: a cluster with probability ``~ S_c exp(2 P_u
    m_c)`` (``S_c`` its popularity mass, ``m_c`` its popularity-weighted mean factor), then
    an item of it by popularity. Keys ``2 (A_ui - P_u m_c) + Gumbel`` are the target's
    ``log pop_i + 2 A_ui`` minus the proposal's log-probability (up to a per-user constant),
    so the top ``k`` distinct candidates are sampling-importance-resampling from the dense
    generator's distribution. A user left with fewer than ``k`` distinct candidates (tiny
    catalogues, heavy users) draws from every item instead.
    """
    num_users, dim = users_UxD.shape
    num_items = items_NxD.shape[0]
    M = min(64, num_items)
    pop_N = np.exp(log_pop_N - log_pop_N.max())
    cluster_N = np.argmax(items_NxD @ rng.normal(size=(M, dim)).T, axis=1)
    order_N = np.argsort(cluster_N, kind="stable")  # items grouped by cluster
    size_M = np.bincount(cluster_N, minlength=M)
    lo_M = np.concatenate([[0], np.cumsum(size_M)[:-1]])
    cum_N = np.cumsum(pop_N[order_N])
    mass_M = np.bincount(cluster_N, weights=pop_N, minlength=M)
    before_M = np.concatenate([[0.0], np.cumsum(mass_M)[:-1]])
    mean_MxD = np.zeros((M, dim))
    np.add.at(mean_MxD, cluster_N, pop_N[:, None] * items_NxD)
    mean_MxD /= np.maximum(mass_M, 1e-300)[:, None]
    log_mass_M = np.log(np.maximum(mass_M, 1e-300))
    C = min(num_items, 2 * k + 32)
    block = max(1, _CHUNK_FLOATS // (C * dim))
    picked_UxK = np.empty((num_users, k), np.int32)
    score_UxK = np.empty((num_users, k), np.float64)
    for start in range(0, num_users, block):
        users_B = np.arange(start, min(start + block, num_users))
        p_BxD = users_UxD[users_B]
        if C == num_items:
            cand_BxC = np.broadcast_to(np.arange(num_items), (len(users_B), C))
            offset_BxC = np.zeros(cand_BxC.shape)
        else:
            logit_BxM = log_mass_M + 2.0 * p_BxD @ mean_MxD.T
            cdf_BxM = np.cumsum(np.exp(logit_BxM - logit_BxM.max(1, keepdims=True)), axis=1)
            row_B1 = np.arange(len(users_B))[:, None]  # one searchsorted over all rows
            flat = (cdf_BxM / cdf_BxM[:, -1:] + row_B1).ravel()
            c_BxC = np.searchsorted(flat, rng.random((len(users_B), C)) + row_B1) - row_B1 * M
            c_BxC = c_BxC.clip(0, M - 1)
            target_BxC = before_M[c_BxC] + rng.random(c_BxC.shape) * mass_M[c_BxC]
            pos_BxC = np.searchsorted(cum_N, target_BxC, side="right")
            pos_BxC = np.clip(pos_BxC, lo_M[c_BxC], lo_M[c_BxC] + size_M[c_BxC] - 1)
            cand_BxC = order_N[pos_BxC]
            offset_BxC = 2.0 * np.einsum("bd,bcd->bc", p_BxD, mean_MxD[c_BxC])
            sort_BxC = np.argsort(cand_BxC, axis=1)
            cand_BxC = np.take_along_axis(cand_BxC, sort_BxC, axis=1)
            offset_BxC = np.take_along_axis(offset_BxC, sort_BxC, axis=1)
        aff_BxC = np.einsum("bd,bcd->bc", p_BxD, items_NxD[cand_BxC])
        keys_BxC = 2.0 * aff_BxC - offset_BxC + rng.gumbel(size=aff_BxC.shape)
        if C == num_items:
            keys_BxC += log_pop_N
        keys_BxC[:, 1:][cand_BxC[:, 1:] == cand_BxC[:, :-1]] = -np.inf
        short = np.flatnonzero(np.isfinite(keys_BxC).sum(1) < k)
        top_BxK = np.argpartition(-keys_BxC, k - 1, axis=1)[:, :k]
        picked_BxK = np.take_along_axis(cand_BxC, top_BxK, axis=1)
        aff_BxK = np.take_along_axis(aff_BxC, top_BxK, axis=1)
        for row in short:  # every item is a candidate for this user
            aff_N = items_NxD @ p_BxD[row]
            keys_N = 2.0 * aff_N + log_pop_N + rng.gumbel(size=num_items)
            top_K = np.argpartition(-keys_N, k - 1)[:k]
            picked_BxK[row], aff_BxK[row] = top_K, aff_N[top_K]
        order_BxK = rng.permuted(np.tile(np.arange(k), (len(users_B), 1)), axis=1)
        picked_UxK[users_B] = np.take_along_axis(picked_BxK, order_BxK, axis=1)  # time order
        score_UxK[users_B] = np.take_along_axis(aff_BxK, order_BxK, axis=1)
    return picked_UxK, score_UxK.reshape(-1)
