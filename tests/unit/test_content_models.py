"""Content and hybrid models on tiny synthetic data: TF-IDF against a numpy computation of
its formula, score_all against pairwise calls, and the cold-item fallback to features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.features import build_features
from jaxrec.data.pipeline import load_and_split
from jaxrec.models.base import ModelContext
from jaxrec.models.content import Content
from jaxrec.models.hybrid import Hybrid
from jaxrec.models.tfidf import TfIdf

SPEC = {"item": {"genres": {}, "title": {"min_count": 1}}}


@pytest.fixture(scope="module")
def data():
    inter = make_synthetic(num_users=30, num_items=40, interactions_per_user=8, num_genres=5,
                           seed=2)
    ds = load_and_split(inter, None, {"method": "cold_item", "test": 0.25, "valid": 0.0,
                                      "seed": 0})
    return ds, build_features(ds.full, ds.train, SPEC)


def _device(train):
    return {"users": jnp.asarray(train.users), "items": jnp.asarray(train.items),
            "ratings": jnp.asarray(train.ratings, jnp.float32)}


def _tfidf_numpy(x, train, num_users, *, slope, center):
    df = (x > 0).sum(0)
    x = x * (np.log((1 + x.shape[0]) / (1 + df)) + 1.0)
    norm = np.linalg.norm(x, axis=1)
    pivot = norm[norm > 0].mean()
    x = x / ((1 - slope) * pivot + slope * norm)[:, None]
    r = train.ratings.astype(np.float64)
    if center:
        mean = np.array([r[train.users == u].mean() if (train.users == u).any() else 0.0
                         for u in range(num_users)])
        r = r - mean[train.users]
    profiles = np.zeros((num_users, x.shape[1]))
    for u, i, w in zip(train.users, train.items, r, strict=True):
        profiles[u] += w * x[i]
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    return profiles @ x.T


@pytest.mark.parametrize(("slope", "center"), [(1.0, False), (0.0, False), (0.5, True)])
def test_tfidf_matches_numpy(data, slope, center):
    ds, feats = data
    model = TfIdf(ModelContext(ds.info, features=feats), pivot_slope=slope, center=center,
                  rngs=nnx.Rngs(0))
    model.solve_epoch(_device(ds.train), jax.random.key(0))
    users = jnp.arange(ds.info.num_users)
    got = np.asarray(model.score_all(users))
    want = _tfidf_numpy(feats.item.dense().astype(np.float64), ds.train, ds.info.num_users,
                        slope=slope, center=center)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)
    pairs = np.asarray(model(users[:, None], jnp.arange(ds.info.num_items)[None, :]))
    np.testing.assert_allclose(pairs, got, rtol=1e-5, atol=1e-6)
    if slope == 1.0:  # cosine: every score in [-1, 1], an item scored against itself ~ 1
        assert np.abs(got).max() <= 1 + 1e-5


def test_tfidf_rejects_bad_slope(data):
    ds, feats = data
    with pytest.raises(ValueError, match=r"model.pivot_slope: must be in \[0, 1\], got 1.5"):
        TfIdf(ModelContext(ds.info, features=feats), pivot_slope=1.5, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("cls", [Hybrid, Content])
def test_score_all_matches_pairs_and_cold_items_use_features_only(data, cls):
    ds, feats = data
    model = cls(ModelContext(ds.info, features=feats), dim=4, rngs=nnx.Rngs(0))
    users = jnp.arange(ds.info.num_users)
    items = jnp.arange(ds.info.num_items)
    full = np.asarray(model.score_all(users))
    np.testing.assert_allclose(np.asarray(model(users[:, None], items[None, :])), full,
                               rtol=1e-5, atol=1e-6)
    cold = np.flatnonzero(~feats.item_warm)
    assert len(cold) > 0 and model.scores_cold_items
    if cls is Hybrid:  # perturbing a cold item's id embedding changes nothing
        model.item_emb_NxD[...] = model.item_emb_NxD[...].at[cold].add(10.0)
        model.item_bias_N[...] = model.item_bias_N[...].at[cold].add(10.0)
        np.testing.assert_allclose(np.asarray(model.score_all(users)), full, rtol=1e-6)
