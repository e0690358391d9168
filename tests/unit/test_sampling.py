import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrec.data.sampling import (
    is_seen,
    negative_pool,
    num_search_steps,
    resolve_negatives,
    sample_negatives,
    seen_bits,
)
from tests.helpers import device_data


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


@pytest.mark.parametrize("num_items", [32, 70])  # whole words, and a partial last word
def test_seen_bitmap_matches_dense_lookup_and_the_binary_search(num_items):
    rng = np.random.default_rng(num_items)
    seen, indptr, indices = _csr(9, num_items, rng, density=0.4)
    bits = seen_bits(indptr, indices, num_items)
    assert bits.shape == (9, -(-num_items // 32)) and bits.dtype == np.uint32
    users = np.repeat(np.arange(9), num_items)
    cands = np.tile(np.arange(num_items), 9)[:, None]
    args = (jnp.asarray(users), jnp.asarray(cands), jnp.asarray(indptr), jnp.asarray(indices))
    by_bits = is_seen(*args, steps=num_search_steps(indptr), bits_UxW=jnp.asarray(bits))
    by_search = is_seen(*args, steps=num_search_steps(indptr))
    np.testing.assert_array_equal(np.asarray(by_bits)[:, 0], seen[users, cands[:, 0]])
    np.testing.assert_array_equal(np.asarray(by_bits), np.asarray(by_search))
    # the same draws either way: a run's negatives do not depend on which lookup it uses
    kw = dict(steps=num_search_steps(indptr))
    users_B = jnp.arange(9, dtype=jnp.int32)
    draw = jax.jit(lambda bits: sample_negatives(jax.random.key(5), users_B, 64, num_items,
                                                 *args[2:], **kw, bits_UxW=bits))
    a, b = draw(None), draw(jnp.asarray(bits))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_seen_bitmap_is_skipped_above_its_size_cap(monkeypatch):
    import jaxrec.data.sampling as sampling

    _, indptr, indices = _csr(4, 64, np.random.default_rng(0))
    monkeypatch.setattr(sampling, "SEEN_BITS_MAX_BYTES", 4 * 2 * 4 - 1)  # 4 users x 2 words
    assert sampling.seen_bits(indptr, indices, 64) is None
    monkeypatch.setattr(sampling, "SEEN_BITS_MAX_BYTES", 4 * 2 * 4)
    assert sampling.seen_bits(indptr, indices, 64).shape == (4, 2)


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


def test_negative_pool_keeps_items_with_training_interactions():
    train_items = np.array([4, 1, 1, 6], np.int32)
    np.testing.assert_array_equal(negative_pool(train_items, 8, "train_items"), [1, 4, 6])
    np.testing.assert_array_equal(negative_pool(train_items, 8, "all_items"), np.arange(8))
    np.testing.assert_array_equal(negative_pool(train_items, 8), np.arange(8))
    with pytest.raises(ValueError, match=r"trainer.negatives: .*'cold'"):
        negative_pool(train_items, 8, "cold")
    # auto: the training catalogue on an item cold-start split, the whole catalogue otherwise
    assert resolve_negatives("auto", "cold_item") == "train_items"
    for method in ("random", "user_ratio", "cold_user", "leave_last"):
        assert resolve_negatives("auto", method) == "all_items"
    assert resolve_negatives("all_items", "cold_item") == "all_items"


def test_negatives_come_only_from_the_pool_uniformly():
    # items 5..9 are "cold" (no training rows): with the pool they are never drawn
    rng = np.random.default_rng(2)
    seen, indptr, indices = _csr(6, 10, rng, density=0.3)
    seen[:, 5:] = False
    indptr = np.concatenate([[0], np.cumsum(seen.sum(1))]).astype(np.int32)
    indices = np.concatenate([np.flatnonzero(row) for row in seen]).astype(np.int32)
    seen[:, 4] = False  # item 4 is unseen by everyone (pool edge case below)
    indptr = np.concatenate([[0], np.cumsum(seen.sum(1))]).astype(np.int32)
    indices = np.concatenate([np.flatnonzero(row) for row in seen]).astype(np.int32)
    pool = jnp.arange(5, dtype=jnp.int32)
    neg = np.asarray(sample_negatives(jax.random.key(5), jnp.arange(6, dtype=jnp.int32), 400, 10,
                                      jnp.asarray(indptr), jnp.asarray(indices),
                                      steps=num_search_steps(indptr), pool_P=pool))
    assert neg.max() < 5 and not seen[np.arange(6)[:, None], neg].any()
    for u in range(6):
        unseen = np.flatnonzero(~seen[u, :5])
        assert set(np.unique(neg[u])) == set(unseen)
        counts = np.bincount(neg[u], minlength=5)[unseen]
        expected = 400 / len(unseen)
        assert np.sum((counts - expected) ** 2 / expected) < 3 * len(unseen) + 30


def test_sampled_softmax_uniform_negatives_use_the_pool():
    from jaxrec.losses.sampled_softmax import SampledSoftmax, candidates

    loss = SampledSoftmax(in_batch=False, num_negatives=200)
    data = device_data([0, 1, 1], [0, 2, 2], num_users=2, num_items=5, pool=[0, 2, 3])
    cand, log_q, valid = candidates(loss, jnp.array([0, 2]), jnp.ones(2), data,
                                    jax.random.key(1))
    assert set(np.unique(np.asarray(cand))) == {0, 2, 3} and bool(valid.all())
    q = np.exp(np.asarray(log_q))
    np.testing.assert_allclose(q[[0, 2, 3]], 200 / 3, rtol=1e-6)  # M / P on the pool
    assert q[1] < 1e-20 and q[4] < 1e-20


@pytest.mark.parametrize("pool", ["train_items", "all_items"])
def test_fit_never_trains_cold_items_as_negatives(tmp_path, pool):
    """bpr on an item cold-start split: the held-out items' embeddings keep their init
    (with ``trainer.negatives=all_items`` they are pushed down as negatives)."""
    from jaxrec.assembly import assemble
    from jaxrec.runner import fit_model
    from tests.helpers import compose_train

    cfg = compose_train(["data=synthetic", "data.split.method=cold_item", "data.split.test=0.3",
                         "data.split.valid=0.0", "data.preprocess.implicit=true", "model=mf",
                         "model.dim=4", "loss=bpr", "loss.l2=0.0", "trainer.epochs=2",
                         f"trainer.negatives={pool}"], tmp_path)
    run = assemble(cfg, training=False)
    dataset, model, loss = run.dataset, run.model, run.loss
    init = np.asarray(model.item_emb_NxD[...]).copy()
    cold = np.flatnonzero(np.bincount(dataset.train.items, minlength=dataset.info.num_items) == 0)
    assert len(cold) > 0
    result = fit_model(model, loss, dataset, tx=optax.adam(0.05), trainer=run.trainer,
                       eval_cfg=run.eval_cfg, negatives=pool)
    emb = np.asarray(result.state[0]["item_emb_NxD"][...])
    warm = np.setdiff1d(np.arange(len(init)), cold)
    assert not np.allclose(emb[warm], init[warm])
    if pool == "train_items":
        np.testing.assert_array_equal(emb[cold], init[cold])
    else:
        assert not np.allclose(emb[cold], init[cold])
