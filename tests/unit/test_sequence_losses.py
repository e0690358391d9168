"""SASRec's losses (softmax_ce, sequence_sampled_softmax, gbce) against numpy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.data.interactions import Interactions
from jaxrec.losses import (
    GBCE,
    SequenceBCE,
    SequenceSampledSoftmax,
    SoftmaxCE,
    gbce_beta,
    gbce_loss,
    softmax_ce_loss,
)
from jaxrec.losses.sequence_sampled_softmax import proposal
from jaxrec.models import SASRec
from jaxrec.models.base import ModelContext
from jaxrec.types import DataInfo
from tests.helpers import device_data

RNG = np.random.default_rng(0)
B, L, N, K = 2, 3, 7, 4
VALID = np.array([[0, 1, 1], [1, 1, 1]], np.float32)


def _np_log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def test_softmax_ce_matches_numpy():
    logits = RNG.normal(size=(B, L, N))
    targets = RNG.integers(0, N, size=(B, L))
    want, count = 0.0, 0
    for b in range(B):
        for t in range(L):
            if VALID[b, t]:
                z = logits[b, t] / 0.5
                want += np.log(np.exp(z).sum()) - z[targets[b, t]]
                count += 1
    got = softmax_ce_loss(jnp.asarray(logits), jnp.asarray(targets),
                          valid_BxL=jnp.asarray(VALID), temperature=0.5)
    np.testing.assert_allclose(got, want / count, rtol=1e-5)


def test_gbce_beta_and_loss_match_numpy():
    alpha = 256 / (3000 - 1)
    assert gbce_beta(256, 3000, 0.75) == pytest.approx(alpha * (0.75 * (1 - 1 / alpha)
                                                                + 1 / alpha))
    assert gbce_beta(256, 3000, 0.0) == pytest.approx(1.0)  # t = 0: BCE
    assert gbce_beta(256, 3000, 1.0) == pytest.approx(alpha)
    pos, neg = RNG.normal(size=(B, L)), RNG.normal(size=(B, L, K))
    beta = 0.3
    # -log(sigmoid(pos) ** beta) - sum log(1 - sigmoid(neg))
    sig = 1 / (1 + np.exp(-pos))
    per = -np.log(sig ** beta) - np.log(1 - 1 / (1 + np.exp(-neg))).sum(-1)
    want = (per * VALID).sum() / VALID.sum()
    got = gbce_loss(jnp.asarray(pos), jnp.asarray(neg), valid_BxL=jnp.asarray(VALID),
                    beta=beta)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def model_info() -> DataInfo:
    return DataInfo(num_users=2, num_items=N, num_train=7, rating_mean=1.0, rating_min=1.0,
                    rating_max=1.0, implicit=True)


def _model_and_data(dim=4, max_len=3):
    users = np.array([0, 0, 0, 0, 1, 1, 1], np.int32)
    items = np.array([1, 3, 5, 2, 4, 0, 6], np.int32)
    train = Interactions(users=users, items=items, ratings=np.ones(7, np.float32),
                         timestamps=np.arange(7, dtype=np.int64), user_ids=np.arange(2),
                         item_ids=np.arange(N))
    info = model_info()
    model = SASRec(ModelContext(info=info, train=train), dim=dim, num_blocks=1,
                   max_len=max_len, dropout=0.0, rngs=nnx.Rngs(0))
    data = device_data(users, items, num_users=2, num_items=N, rows="users")
    batch = {"users": jnp.array([0, 1], jnp.int32), "items": jnp.zeros(2, jnp.int32),
             "mask": jnp.ones(2, jnp.float32)}
    return model, data, batch


def _states(model, key):
    _, k_model = jax.random.split(key)
    h, targets, valid = model.next_item_states(jnp.array([0, 1]), k_model, train=True)
    emb = np.asarray(model.item_vectors(), np.float64)
    return np.asarray(h, np.float64), np.asarray(targets), np.asarray(valid), emb


def test_softmax_ce_objective_is_the_full_softmax_over_items():
    model, data, batch = _model_and_data()
    key = jax.random.key(3)
    h, targets, valid, emb = _states(model, key)
    logits = h @ emb.T  # [B, L, N]
    per = np.log(np.exp(logits).sum(-1)) - np.take_along_axis(
        logits, np.where(valid > 0, targets, 0)[..., None], -1)[..., 0]
    want = (per * valid).sum() / valid.sum()
    got, _ = SoftmaxCE().objective(model, batch, data, key, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("sampler", ["popularity", "uniform"])
def test_sequence_sampled_softmax_objective_matches_numpy(sampler):
    model, data, batch = _model_and_data()
    key = jax.random.key(5)
    h, targets, valid, emb = _states(model, key)
    k_loss, _ = jax.random.split(key)
    loss = SequenceSampledSoftmax(num_negatives=5, sampler=sampler, temperature=0.5)
    cand = np.asarray(proposal(k_loss, 5, data, sampler)[0])
    counts = np.bincount(np.asarray(data["indices"]), minlength=N)
    q = 5 * counts / counts.sum() if sampler == "popularity" else np.full(N, 5 / N)
    log_q = np.log(np.maximum(q, 1e-30))
    total, count = 0.0, 0
    for b in range(B):
        for t in range(L):
            if not valid[b, t]:
                continue
            y = targets[b, t]
            o_pos = h[b, t] @ emb[y] / 0.5 - log_q[y]
            o_neg = [h[b, t] @ emb[c] / 0.5 - log_q[c] for c in cand if c != y]
            total += np.log(np.exp([o_pos, *o_neg]).sum()) - o_pos
            count += 1
    got, _ = loss.objective(model, batch, data, key, 0)
    np.testing.assert_allclose(got, total / count, rtol=1e-4)
    assert np.isin(cand, np.asarray(data["indices"])).all() or sampler == "uniform"


def test_gbce_objective_matches_numpy():
    model, data, batch = _model_and_data()
    key = jax.random.key(7)
    h, targets, valid, emb = _states(model, key)
    k_loss, _ = jax.random.split(key)
    from jaxrec.data.sampling import sample_batch_negatives

    neg = np.asarray(sample_batch_negatives(k_loss, batch["users"], L * 3, data))
    neg = neg.reshape(B, L, 3)  # per position
    beta = 3 / (N - 1) * (0.5 * (1 - (N - 1) / 3) + (N - 1) / 3)
    per = np.zeros((B, L))
    for b in range(B):
        seen = set(np.asarray(data["indices"])[int(data["indptr"][b]):int(data["indptr"][b + 1])])
        assert not seen & set(neg[b].ravel().tolist())  # unseen negatives
        for t in range(L):
            y = np.where(valid[b, t] > 0, targets[b, t], 0)
            per[b, t] = (-beta * _np_log_sigmoid(h[b, t] @ emb[y])
                         - sum(_np_log_sigmoid(-(h[b, t] @ emb[c])) for c in neg[b, t]))
    want = (per * valid).sum() / valid.sum()
    got, _ = GBCE(num_negatives=3, t=0.5).objective(model, batch, data, key, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_sequence_losses_config_checks_and_compat():
    model, _, _ = _model_and_data()
    for loss in (SequenceBCE(), SoftmaxCE(), SequenceSampledSoftmax(), GBCE(num_negatives=3)):
        assert loss.name in SASRec.compatible_losses
        loss.check_model(model)
    with pytest.raises(ValueError, match="loss.t: must be in"):
        GBCE(t=1.5)
    assert gbce_beta(9, N, 0.75) == 1.0  # alpha capped at 1: plain BCE
    with pytest.raises(ValueError, match="loss.sampler"):
        SequenceSampledSoftmax(sampler="zipf")
    with pytest.raises(ValueError, match="loss.num_negatives"):
        SequenceSampledSoftmax(num_negatives=0)
    from jaxrec.models import MF

    with pytest.raises(ValueError, match="does not suit model MF"):
        SoftmaxCE().check_model(MF(ModelContext(info=model_info()), dim=2,
                                   rngs=nnx.Rngs(0)))


@pytest.mark.parametrize("loss", [SoftmaxCE(), SequenceSampledSoftmax(num_negatives=4),
                                  GBCE(num_negatives=3)], ids=lambda x: x.name)
def test_sequence_losses_have_finite_gradients(loss):
    model, data, batch = _model_and_data()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def value(p):
        return loss.objective(nnx.merge(graphdef, p, rest), batch, data, jax.random.key(0), 0)[0]

    grads = jax.grad(value)(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
