"""Mult-VAE / Mult-DAE and SASRec (batch kind ``users``): shapes, score_all vs pairwise,
history storage, training lowers the loss, KL annealing, and SASRec's causality."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.losses import Multinomial, SequenceBCE, multinomial_loss, sequence_bce_loss
from jaxrec.losses.multinomial import kl_beta
from jaxrec.models import MultVAE, SASRec
from jaxrec.models.base import ModelContext
from jaxrec.models.sasrec import sequence_table
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import device_data

U, N = 12, 30
INFO = DataInfo(num_users=U, num_items=N, num_train=0, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")


def _train(seed=0):
    """Users 0..10 with 6-14 distinct items each (user 11 has none); random timestamps.

    Planted: even users pick from the first half of the catalogue, odd users from the rest.
    """
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(U - 1):
        picked = (u % 2) * (N // 2) + rng.choice(N // 2, rng.integers(6, 15), replace=False)
        users += [u] * len(picked)
        items += list(picked)
    users, items = np.asarray(users, np.int32), np.asarray(items, np.int32)
    return SimpleNamespace(users=users, items=items,
                           timestamps=rng.integers(0, 10**6, len(users)).astype(np.int64))


def _data(train):
    return device_data(train.users, train.items, num_users=U, num_items=N, rows="users")


def _models(train):
    ctx = ModelContext(INFO, train=train)
    return {"multvae": (MultVAE(ctx, hidden=[16], latent=8, rngs=nnx.Rngs(0)),
                        Multinomial(total_anneal_steps=20)),
            "multdae": (MultVAE(ctx, hidden=[16], latent=8, variational=False, rngs=nnx.Rngs(0)),
                        Multinomial()),
            "sasrec": (SASRec(ctx, dim=16, num_heads=2, max_len=8, dropout=0.1, rngs=nnx.Rngs(0)),
                       SequenceBCE(num_negatives=2))}


NAMES = ["multvae", "multdae", "sasrec"]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_score_all_matches_pairwise(name):
    model, _ = _models(_train())[name]
    users = jnp.array([0, 4, 11], jnp.int32)
    all_UxN = model.score_all(users)
    assert all_UxN.shape == (3, N) and bool(jnp.isfinite(all_UxN).all())
    items = jnp.broadcast_to(jnp.arange(N), (3, N))
    np.testing.assert_allclose(model(users[:, None], items), all_UxN, rtol=1e-5, atol=1e-5)
    assert model(users, users).shape == (3,)
    assert model(users[:, None], items[:, :4]).shape == (3, 4)


@pytest.mark.parametrize("name", NAMES)
def test_training_lowers_the_loss(name):
    train = _train()
    model, loss = _models(train)[name]
    data = _data(train)
    assert data["users"].shape == (U - 1,)  # users with >= 1 training row
    tx = optax.adam(0.03)
    graphdef, state = init_state(model, tx)
    epoch = make_epoch_fn(make_train_step(graphdef, loss, tx))
    rng = np.random.default_rng(0)
    losses = []
    for e in range(15):
        perm, mask = epoch_order(rng, U - 1, 4)  # 3 batches, the last one padded
        state, value = epoch(state, data, {}, perm, mask, jax.random.key(e))
        losses.append(float(value))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), losses


def test_multvae_stores_the_history_and_folds_in_new_users():
    train = _train()
    model = MultVAE(ModelContext(INFO, train=train), hidden=[16], latent=8, rngs=nnx.Rngs(0))
    expected = np.zeros((U, N), bool)
    expected[train.users, train.items] = True
    np.testing.assert_array_equal(model.history_UxN[...], expected)
    users = jnp.arange(U)
    np.testing.assert_allclose(model.score_history(jnp.asarray(expected, jnp.float32)),
                               model.score_all(users), rtol=1e-6)
    empty = MultVAE(ModelContext(INFO), hidden=[16], latent=8, rngs=nnx.Rngs(0))  # train=None
    assert not bool(empty.history_UxN[...].any())


def test_multinomial_loss_and_annealing():
    logits = jnp.array([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    x = jnp.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    kl = jnp.array([2.0, 4.0])
    log_p = np.asarray(jax.nn.log_softmax(logits))
    nll = np.array([-(log_p[0, 0] + log_p[0, 1]), -log_p[1, 3]])
    got = multinomial_loss(logits, x, kl, mask_B=jnp.ones(2), beta=0.5)
    np.testing.assert_allclose(got, np.mean(nll + 0.5 * np.asarray(kl)), rtol=1e-6)
    only_first = multinomial_loss(logits, x, kl, mask_B=jnp.array([1.0, 0.0]), beta=0.0)
    np.testing.assert_allclose(only_first, nll[0], rtol=1e-6)
    betas = [float(kl_beta(s, anneal_cap=0.2, total_anneal_steps=100)) for s in (0, 10, 20, 500)]
    np.testing.assert_allclose(betas, [0.0, 0.1, 0.2, 0.2], rtol=1e-6)
    with pytest.raises(ValueError, match="total_anneal_steps"):
        Multinomial(total_anneal_steps=0)


def test_sequence_bce_loss_masks_padding():
    pos = jnp.array([[0.0, 2.0], [5.0, -1.0]])
    neg = jnp.zeros((2, 2, 1))
    valid = jnp.array([[0.0, 1.0], [0.0, 1.0]])
    got = sequence_bce_loss(pos, neg, valid_BxL=valid)
    want = np.mean([-np.log(1 / (1 + np.exp(-p))) + np.log(2.0) for p in (2.0, -1.0)])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sequence_table_is_time_ordered_and_left_padded():
    train = SimpleNamespace(users=np.array([0, 0, 0, 1, 0], np.int32),
                            items=np.array([5, 3, 7, 2, 9], np.int32),
                            timestamps=np.array([30, 10, 20, 5, 30], np.int64))
    table = sequence_table(train, num_users=3, num_items=10, length=3)
    # user 0 in time order: 3 (t10), 7 (t20), then the t30 tie by item index: 5, 9
    np.testing.assert_array_equal(table, [[7, 5, 9], [10, 10, 2], [10, 10, 10]])


def test_sasrec_is_causal():
    model = SASRec(ModelContext(INFO), dim=16, num_heads=2, max_len=8, dropout=0.0,
                   rngs=nnx.Rngs(0))
    seq = jnp.array([[N, N, 3, 7, 1, 9, 4, 2], [5, 6, 7, 8, 9, 10, 11, 12]], jnp.int32)
    h = model.encode(seq)
    for t in (4, 6):
        changed = seq.at[:, t:].set((seq[:, t:] + 13) % N)
        h2 = model.encode(changed)
        np.testing.assert_allclose(h2[:, :t], h[:, :t], rtol=1e-6, atol=1e-6)
        assert not np.allclose(h2[:, t], h[:, t])  # position t itself does see its input
    # padding never leaks: a fully padded row stays finite
    assert bool(jnp.isfinite(model.encode(jnp.full((1, 8), N, jnp.int32))).all())


def test_sasrec_training_logits_use_the_shifted_sequence():
    train = _train()
    model = SASRec(ModelContext(INFO, train=train), dim=16, max_len=8, dropout=0.0,
                   rngs=nnx.Rngs(0))
    users = jnp.array([0, 11], jnp.int32)
    neg = jnp.zeros((2, 8, 1), jnp.int32)
    pos, neg_logits, valid = model.next_item_logits(users, neg, jax.random.key(0), train=False)
    assert pos.shape == (2, 8) and neg_logits.shape == (2, 8, 1)
    assert float(valid[1].sum()) == 0.0  # user 11 has no history
    # the last training position's state is the scoring state of the history without its
    # latest item; scoring uses the latest max_len items
    table = model.seq_UxL1[...][users]
    h_train = model.encode(table[:, :-1])[:, -1]
    emb = model.item_emb[...]
    np.testing.assert_allclose(pos[0, -1], h_train[0] @ emb[table[0, -1]], rtol=1e-5)
    np.testing.assert_allclose(model.score_all(users)[0],
                               model.score_sequence(table[:, 1:])[0], rtol=1e-5)
