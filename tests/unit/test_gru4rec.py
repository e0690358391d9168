"""GRU4Rec and its losses (TOP1-max, BPR-max, mini-batch cross-entropy): causality,
padding, the losses against numpy, sampling, scoring, the next-item test input, and
(slow) a planted sequential pattern."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.losses.bpr_max import BPRMax, bpr_max_rows
from jaxrec.losses.minibatch_ce import MiniBatchCE, minibatch_ce_rows
from jaxrec.losses.minibatch_negatives import popularity_samples
from jaxrec.losses.top1_max import top1_max_rows
from jaxrec.models.base import ModelContext
from jaxrec.models.gru4rec import GRU4Rec
from tests.helpers import device_data, run_train
from tests.unit.test_next_item_protocol import _planted_data, check_test_input, sequences_split


@pytest.fixture(scope="module")
def setup():
    ds = sequences_split()
    model = GRU4Rec(ModelContext(info=ds.info, train=ds.train), dim=6, num_layers=2,
                    max_len=4, rngs=nnx.Rngs(0))
    return ds, model


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_rows(o, neg, cand, log_q, *, bpreg, elu, logq):
    """TOP1-max, BPR-max and cross-entropy of each row, one loop per row (numpy)."""
    top1, bprmax, ce = [], [], []
    for i in range(o.shape[0]):
        r = o[i]
        j = np.flatnonzero(neg[i])
        s = np.exp(r[j] - r[j].max())
        s /= s.sum()
        top1.append(np.sum(s * (_sigmoid(r[j] - r[i]) + _sigmoid(r[j] ** 2))))
        e = np.where(r > 0, r, elu * (np.exp(r) - 1)) if elu > 0 else r
        se = np.exp(e[j] - e[j].max())
        se /= se.sum()
        bprmax.append(-np.log(np.sum(se * _sigmoid(e[i] - e[j])) + 1e-24)
                      + bpreg * np.sum(se * e[j] ** 2))
        c = np.flatnonzero(cand)
        oc = r[c] - logq * log_q[c]
        ce.append(np.log(np.exp(oc - oc.max()).sum()) + oc.max() - (r[i] - logq * log_q[i]))
    return np.array(top1), np.array(bprmax), np.array(ce)


def test_row_losses_against_numpy():
    rng = np.random.default_rng(0)
    b, c = 5, 9
    o = rng.normal(size=(b, c)).astype(np.float32) * 2
    cand = np.ones(c, bool)
    cand[3] = False  # a padded row's target: not a candidate (row 3 is not an example)
    neg = cand[None, :] & ~np.eye(b, c, dtype=bool)
    log_q = rng.normal(size=c).astype(np.float32)
    top1, bprmax, ce = _reference_rows(o.astype(np.float64), neg, cand, log_q, bpreg=0.7,
                                       elu=0.5, logq=1.0)
    rows = [0, 1, 2, 4]
    np.testing.assert_allclose(np.asarray(top1_max_rows(jnp.asarray(o), jnp.asarray(neg)))[rows],
                               top1[rows], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bpr_max_rows(jnp.asarray(o), jnp.asarray(neg),
                                                       bpreg=0.7, elu_param=0.5))[rows],
                               bprmax[rows], rtol=1e-5)
    got = minibatch_ce_rows(jnp.asarray(o), jnp.broadcast_to(jnp.asarray(cand), (b, c)),
                            log_q_xBxC=jnp.broadcast_to(jnp.asarray(log_q), (b, c)), logq=1.0)
    np.testing.assert_allclose(np.asarray(got)[rows], ce[rows], rtol=1e-5)


def test_minibatch_objective_against_numpy(setup):
    ds, model = setup
    users = jnp.arange(5, dtype=jnp.int32)
    batch = {"users": users, "mask": jnp.array([1, 1, 1, 1, 0.0]), "items": users}
    data = device_data(ds.train.users, ds.train.items, num_users=ds.info.num_users,
                       num_items=ds.info.num_items, rows="users")
    loss, key = MiniBatchCE(n_sample=7, sample_alpha=0.5, logq=1.0), jax.random.key(1)
    value, _ = loss.objective(model, batch, data, key, 0)
    k_loss, _ = jax.random.split(key)
    counts = np.bincount(ds.train.items, minlength=ds.info.num_items)
    samples = np.asarray(popularity_samples(k_loss, 7, jnp.asarray(counts), 0.5))
    h, targets, valid = map(np.asarray, model.next_item_states(users, key, train=False))
    vec = np.asarray(model.item_vectors(), np.float64)
    valid = valid * np.array([1, 1, 1, 1, 0])[:, None]
    terms = []
    for t in range(h.shape[1]):
        cols = [(targets[c, t], valid[c, t] > 0, np.log(max(counts[targets[c, t]], 1))
                 if valid[c, t] else 0.0) for c in range(5)]
        cols += [(s, True, 0.5 * np.log(max(counts[s], 1))) for s in samples]
        for b in range(5):
            if not valid[b, t]:
                continue
            o = np.array([h[b, t] @ vec[i] - lq for i, ok, lq in cols if ok])
            own = h[b, t] @ vec[targets[b, t]] - cols[b][2]
            terms.append(np.log(np.exp(o - o.max()).sum()) + o.max() - own)
    np.testing.assert_allclose(float(value), np.mean(terms), rtol=1e-4)


def test_popularity_samples_follow_counts_to_the_alpha():
    counts = jnp.array([0, 1, 4, 9, 16])
    for alpha in (0.0, 0.5):
        drawn = np.asarray(popularity_samples(jax.random.key(0), 40_000, counts, alpha))
        expected = np.power(np.asarray(counts, float), alpha)
        np.testing.assert_allclose(np.bincount(drawn, minlength=5) / 40_000,
                                   expected / expected.sum(), atol=0.01)
    with pytest.raises(ValueError, match="loss.n_sample: must be an integer >= 0"):
        BPRMax(n_sample=-1)


def test_state_is_causal_and_zero_over_padding(setup):
    _, model = setup
    pad = model.num_items
    seq = jnp.array([[pad, 1, 2, 3], [pad, 1, 2, 5]])
    h = np.asarray(model.encode(seq))
    np.testing.assert_allclose(h[0, :3], h[1, :3], rtol=1e-6)  # t < 3 never sees item 3/5
    assert not np.allclose(h[0, 3], h[1, 3])
    assert np.all(h[:, 0] == 0)  # no item yet: the initial state
    shorter = np.asarray(model.encode(jnp.array([[1, 2, 3]])))
    np.testing.assert_allclose(shorter[0], h[0, 1:], rtol=1e-5, atol=1e-6)


def test_score_all_equals_pairwise_and_test_input(setup):
    ds, model = setup
    users = jnp.arange(4, dtype=jnp.int32)
    items = jnp.arange(model.num_items, dtype=jnp.int32)
    full = np.asarray(model.score_all(users))
    np.testing.assert_allclose(np.asarray(model(users[:, None], items[None, :])), full,
                               rtol=1e-5, atol=1e-5)
    check_test_input(ds, model, "seq_UxL1", num_users=4)


TINY_GRU4REC = ["model=gru4rec", "model.dim=32", "model.max_len=8", "optim.lr=0.01",
                "trainer.batch_size=64", "trainer.epochs=40", "trainer.eval_every=40"]


@pytest.mark.slow
def test_planted_next_item_pattern_gru4rec_bpr_max(tmp_path):
    m = run_train([*_planted_data(tmp_path), *TINY_GRU4REC, "loss=bpr_max", "loss.n_sample=16"],
                  tmp_path / "gru4rec")["metrics"]
    print({k: round(v, 3) for k, v in m.items()})
    # f(valid item) is the test item; MF reaches < 0.5, popularity < 0.3 (test_bert4rec.py);
    # measured (top1_max and minibatch_ce too): > 0.9
    assert m["test/hit@10"] > 0.9, m
