import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.training.sampling import is_seen, num_search_steps, sample_negatives


def _csr(num_users, num_items, rng, density=0.5):
    seen = rng.random((num_users, num_items)) < density
    seen[:, -1] = False  # every user has at least one unseen item
    indptr = np.concatenate([[0], np.cumsum(seen.sum(1))]).astype(np.int32)
    indices = np.concatenate([np.flatnonzero(row) for row in seen]).astype(np.int32)
    return seen, indptr, indices


def test_is_seen_matches_dense_lookup():
    rng = np.random.default_rng(0)
    seen, indptr, indices = _csr(20, 50, rng)
    users = np.repeat(np.arange(20), 50)
    cands = np.tile(np.arange(50), 20)[:, None]
    got = is_seen(jnp.asarray(users), jnp.asarray(cands), jnp.asarray(indptr), jnp.asarray(indices),
                  steps=num_search_steps(indptr))
    np.testing.assert_array_equal(np.asarray(got)[:, 0], seen[users, cands[:, 0]])


def test_negatives_are_never_seen_and_cover_unseen_items_uniformly():
    rng = np.random.default_rng(1)
    seen, indptr, indices = _csr(8, 30, rng, density=0.7)
    users = jnp.arange(8, dtype=jnp.int32)
    fn = jax.jit(lambda k: sample_negatives(k, users, 500, 30, jnp.asarray(indptr),
                                            jnp.asarray(indices), steps=num_search_steps(indptr)))
    neg = np.asarray(fn(jax.random.key(0)))
    assert neg.shape == (8, 500)
    assert not seen[np.arange(8)[:, None], neg].any()
    for u in range(8):
        unseen = np.flatnonzero(~seen[u])
        counts = np.bincount(neg[u], minlength=30)[unseen]
        assert set(np.unique(neg[u])) == set(unseen)
        expected = 500 / len(unseen)
        chi2 = np.sum((counts - expected) ** 2 / expected)
        assert chi2 < 3 * len(unseen) + 30  # loose goodness-of-fit bound for uniformity


def test_user_with_no_training_items_samples_anything():
    indptr = np.array([0, 0, 2], np.int32)
    indices = np.array([0, 1], np.int32)
    neg = sample_negatives(jax.random.key(3), jnp.array([0, 1], jnp.int32), 200, 4,
                           jnp.asarray(indptr), jnp.asarray(indices), steps=2)
    neg = np.asarray(neg)
    assert set(np.unique(neg[0])) == {0, 1, 2, 3}
    assert set(np.unique(neg[1])) == {2, 3}
