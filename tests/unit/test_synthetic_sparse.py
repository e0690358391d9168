"""The sparse synthetic generator: linear memory, the planted structure, popularity skew,
determinism (jaxrec.data.datasets.synthetic)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from jaxrec.data.datasets.synthetic import DENSE_CELLS, make_synthetic


def _distinct_per_user(x, k: int) -> bool:
    pairs = np.unique(x.users.astype(np.int64) * x.num_items + x.items)
    return len(pairs) == len(x) and bool((np.bincount(x.users) == k).all())


def test_a_catalogue_too_big_for_dense_is_generated_in_linear_memory():
    # 2,000 x 50,000 = 1e8 cells: the dense generator would need ~3.8 GB
    tracemalloc.start()
    x = make_synthetic(num_users=2000, num_items=50_000, interactions_per_user=20, seed=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 2000 * 50_000 > DENSE_CELLS  # sparse=None chose the sparse generator
    assert peak < 64e6, peak
    assert len(x) == 40_000 and (x.num_users, x.num_items) == (2000, 50_000)
    assert _distinct_per_user(x, 20)
    assert x.ratings.min() >= 1 and x.ratings.max() <= 5
    assert x.item_features["genres"].shape == (50_000, 10)
    # each user's timestamps increase in their (random) item order
    order = np.lexsort((x.timestamps, x.users))
    assert (np.diff(x.timestamps[order]).reshape(-1)[np.diff(x.users[order]) == 0] > 0).all()


def test_small_configs_keep_the_dense_generator():
    dense = make_synthetic(num_users=50, num_items=40, interactions_per_user=5, seed=2,
                           sparse=False)
    auto = make_synthetic(num_users=50, num_items=40, interactions_per_user=5, seed=2)
    assert np.array_equal(dense.items, auto.items)
    assert np.array_equal(dense.ratings, auto.ratings)


def test_deterministic_in_the_seed():
    kw = dict(num_users=300, num_items=500, interactions_per_user=10, sparse=True,
              popularity=1.0)
    a, b, c = make_synthetic(seed=4, **kw), make_synthetic(seed=4, **kw), make_synthetic(
        seed=5, **kw)
    for name in ("users", "items", "ratings", "timestamps"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.items, c.items)


@pytest.mark.parametrize(("num_items", "k", "popularity"), [(50, 20, 0.0), (200, 60, 2.0)])
def test_small_catalogues_and_heavy_users_still_get_distinct_items(num_items, k, popularity):
    # 50 items: every item is a candidate; 200 items at skew 2: rows short of distinct
    # candidates fall back to all items
    x = make_synthetic(num_users=100, num_items=num_items, interactions_per_user=k,
                       popularity=popularity, sparse=True)
    assert _distinct_per_user(x, k)


def _top_decile_share(x) -> float:
    counts = np.sort(np.bincount(x.items, minlength=x.num_items))
    return counts[-max(1, x.num_items // 10):].sum() / counts.sum()


def test_popularity_skew():
    kw = dict(num_users=2000, num_items=1000, interactions_per_user=20, sparse=True, seed=0)
    flat, zipf = make_synthetic(popularity=0.0, **kw), make_synthetic(popularity=1.0, **kw)
    assert _top_decile_share(flat) < 0.3
    assert _top_decile_share(zipf) > 0.45


def test_the_planted_low_rank_structure_is_recoverable():
    """A rank-``dim`` SVD of half of each user's items ranks the other half far above
    items the user never picked (AUC), as a factor model would."""
    dim, k = 4, 30
    x = make_synthetic(num_users=600, num_items=400, dim=dim, interactions_per_user=k,
                       sparse=True, seed=3)
    first = np.tile(np.arange(k) < k // 2, x.num_users)  # the user's first picks
    train = np.zeros((x.num_users, x.num_items))
    train[x.users[first], x.items[first]] = 1.0
    u, s, vt = np.linalg.svd(train, full_matrices=False)
    scores = (u[:, :dim] * s[:dim]) @ vt[:dim]
    held = np.zeros_like(train, bool)
    held[x.users[~first], x.items[~first]] = True
    never = (train == 0) & ~held
    pos, neg = scores[held], scores[never]
    rng = np.random.default_rng(0)
    auc = (rng.choice(pos, 20_000) > rng.choice(neg, 20_000)).mean()
    assert auc > 0.6, auc  # the dense generator: 0.66 on this draw; random: 0.5
