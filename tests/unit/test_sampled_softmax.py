"""Sampled softmax: exact full softmax with every item a candidate, the sign of the logQ
correction, accidental hits, and one training step through the ``sampled`` batch kind."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.data.features import FeatureBag, Features
from jaxrec.losses.sampled_softmax import (
    SampledSoftmax,
    candidates,
    sampled_softmax_batch,
    sampled_softmax_loss,
)
from jaxrec.models.base import ModelContext
from jaxrec.models.two_tower import TwoTower
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import device_data

N, U, D, B = 23, 7, 5, 6


def _embeddings(seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (U, D)), jax.random.normal(k2, (N, D))


def test_every_item_a_candidate_equals_the_full_softmax_loss_and_gradients():
    users = jnp.array([0, 1, 2, 3, 4, 6])
    items = jnp.array([3, 0, 22, 3, 9, 14])
    mask = jnp.ones(B)
    temperature = 0.7

    def full(params):
        u, v = params
        logits = u[users] @ v.T / temperature
        return optax.softmax_cross_entropy_with_integer_labels(logits, items).mean()

    def sampled(params):
        u, v = params
        cand = jnp.arange(N)
        neg = u[users] @ v[cand].T
        pos = jnp.sum(u[users] * v[items], -1)
        log_q = jnp.zeros(N)  # every item exactly once: q = 1
        return sampled_softmax_loss(pos, neg, mask_B=mask, temperature=temperature,
                                    pos_log_q_B=log_q[items], neg_log_q_BxC=log_q[cand][None],
                                    neg_valid_BxC=cand[None, :] != items[:, None])

    params = _embeddings()
    np.testing.assert_allclose(sampled(params), full(params), rtol=1e-6)
    for g_s, g_f in zip(jax.grad(sampled)(params), jax.grad(full)(params), strict=True):
        np.testing.assert_allclose(g_s, g_f, rtol=1e-5, atol=1e-6)


def test_full_catalogue_candidates_through_the_batch_function():
    u, v = _embeddings(1)

    class Dot(nnx.Module):
        def __call__(self, users, items):
            return jnp.sum(u[users] * v[items], -1)

    users = jnp.arange(B)
    items = jnp.array([1, 1, 5, 7, 7, 20])  # repeated positives: hits removed per row
    loss = SampledSoftmax(temperature=1.0, in_batch=False, full_catalogue=True)
    data = device_data(users, items, num_users=B, num_items=N)
    value, _ = sampled_softmax_batch(Dot(), loss, users, items, jnp.ones(B), data,
                                     jax.random.key(0))
    expected = optax.softmax_cross_entropy_with_integer_labels(u[users] @ v.T, items).mean()
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_logq_correction_subtracts_log_q():
    """Importance sampling: candidates drawn with replacement from a skewed q, corrected by
    ``- log(M q)``, estimate the full softmax loss; adding log q instead is far off."""
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=40) * 2.0)
    q = np.exp(np.linspace(0, 5, 40))
    q /= q.sum()  # item 39 is ~150x more likely than item 0
    pos = 3
    full = float(jax.nn.logsumexp(logits) - logits[pos])
    m = 200_000
    cand = jnp.asarray(rng.choice(40, size=m, p=q))
    log_mq = jnp.log(m * jnp.asarray(q))
    neg = logits[cand][None, :]
    valid = (cand != pos)[None, :]

    def loss(sign):
        return float(sampled_softmax_loss(
            logits[pos][None], neg, mask_B=jnp.ones(1), pos_log_q_B=jnp.zeros(1),
            neg_log_q_BxC=sign * log_mq[cand][None, :], neg_valid_BxC=valid))

    assert abs(loss(+1.0) - full) < 0.02  # o_j = s_j - log q_j: correct
    assert abs(loss(-1.0) - full) > 1.0  # the wrong sign
    # direction: with the correction a popular candidate weighs less than a rare one
    both = jnp.array([[0.0, 0.0]])
    rare_popular_log_q = jnp.log(jnp.array([[0.01, 0.5]]))
    grads = jax.grad(lambda n: sampled_softmax_loss(
        jnp.zeros(1), n, mask_B=jnp.ones(1), neg_log_q_BxC=rare_popular_log_q))(both)
    assert grads[0, 0] > grads[0, 1] > 0


def test_in_batch_candidates_probabilities_and_accidental_hits():
    loss = SampledSoftmax(in_batch=True, num_negatives=3)
    data = device_data(np.arange(8), [0, 0, 0, 1, 2, 2, 4, 4], num_users=8,
                       num_items=6)  # E = 8 training rows
    items = jnp.array([0, 2, 0, 4])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])
    cand, log_q, valid = candidates(loss, items, mask, data, jax.random.key(0))
    assert cand.shape == (7,) and valid.tolist() == [True, True, True, False, True, True, True]
    expected_q = 4 * np.array([3, 1, 2, 0, 2, 0]) / 8 + 3 / 6  # B n_j / E + M / N
    np.testing.assert_allclose(np.exp(log_q), expected_q, rtol=1e-6)

    class Zero(nnx.Module):
        def __call__(self, users, items):
            return jnp.zeros(jnp.broadcast_shapes(users.shape, items.shape))

    # equal scores, no correction, no uniform negatives: each example's softmax is over
    # itself + the other in-batch positives that are neither padding nor the same item
    plain = SampledSoftmax(temperature=1.0, in_batch=True, logq=False)
    value, _ = sampled_softmax_batch(Zero(), plain, jnp.arange(4), items, mask, data,
                                     jax.random.key(0))
    # rows 0 and 2 (item 0) see item 2 -> 2 logits; row 1 (item 2) sees 0, 0 -> 3 logits
    np.testing.assert_allclose(value, (np.log(2) * 2 + np.log(3)) / 3, rtol=1e-6)


def test_options_are_checked():
    with pytest.raises(ValueError, match="temperature"):
        SampledSoftmax(temperature=0.0)
    with pytest.raises(ValueError, match="no candidates"):
        SampledSoftmax(in_batch=False)


def test_two_tower_trains_with_the_sampled_batch_kind():
    info = DataInfo(num_users=U, num_items=N, num_train=60, rating_mean=1.0, rating_min=1.0,
                    rating_max=1.0, implicit=True)
    rng = np.random.default_rng(0)
    genre = rng.integers(0, 3, N)
    bag = FeatureBag(ids=(genre + 1)[:, None].astype(np.int32), weights=np.ones((N, 1),
                                                                                np.float32),
                     fields=("g",), slots=((0, 1),), vocab=("<pad>", "g=0", "g=1", "g=2"))
    feats = Features(item=bag, user=None, item_warm=np.ones(N, bool), user_warm=np.ones(U, bool),
                     history=FeatureBag(ids=np.zeros((U, 1), np.int32),
                                        weights=np.zeros((U, 1), np.float32), fields=("h",),
                                        slots=((0, 1),), vocab=bag.vocab))
    model = TwoTower(ModelContext(info, features=feats), dim=8, rngs=nnx.Rngs(0))
    assert model.scores_cold_items
    users = rng.integers(0, U, 60).astype(np.int32)
    items = np.array([rng.choice(np.flatnonzero(genre == u % 3)) for u in users], np.int32)
    data = device_data(users, items, num_users=U, num_items=N)
    loss = SampledSoftmax(temperature=0.2, num_negatives=4)
    tx = optax.adam(0.05)
    graphdef, state = init_state(model, tx)
    epoch = make_epoch_fn(make_train_step(graphdef, loss, tx))
    values = []
    for e in range(12):
        perm, mask = epoch_order(rng, 60, 16)
        state, value = epoch(state, data, {}, perm, mask, jax.random.key(e))
        values.append(float(value))
    assert np.isfinite(values).all() and values[-1] < 0.8 * values[0], values
