"""SVD++ (jaxrec/models/svdpp.py): the formula against numpy, gradients, training, wiring."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.pipeline import load_and_split
from jaxrec.losses import MSE
from jaxrec.models.base import ModelContext
from jaxrec.models.svdpp import SVDpp, history_edges
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import compose_train, device_data, run_train

INFO = DataInfo(num_users=6, num_items=9, num_train=14, rating_mean=3.2, rating_min=1.0,
                rating_max=5.0, implicit=False, name="tiny")


class Rows:  # the two fields SVDpp reads from an Interactions
    def __init__(self, users, items):
        self.users, self.items = np.asarray(users, np.int32), np.asarray(items, np.int32)


# user 4 has a single item, user 5 none; rows deliberately not sorted by user
HISTORY = Rows([2, 0, 1, 0, 2, 3, 1, 0, 2, 3, 1, 4, 0, 2], [7, 1, 0, 3, 2, 8, 5, 4, 6, 1, 8, 4,
                                                             8, 0])


def _model():
    model = SVDpp(ModelContext(INFO, train=HISTORY), dim=4, init_std=0.5, bias_l2_scale=1.0,
                  rngs=nnx.Rngs(3))
    rng = np.random.default_rng(0)  # non-zero biases, so the test sees them
    model.user_bias_U[...] = jnp.asarray(rng.normal(size=INFO.num_users), jnp.float32)
    model.item_bias_N[...] = jnp.asarray(rng.normal(size=INFO.num_items), jnp.float32)
    return model


def _numpy_scores(model):
    """``[U, N]``: mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j), by loops."""
    p, q, y = (np.asarray(v[...], np.float64) for v in
               (model.user_emb_UxD, model.item_emb_NxD, model.implicit_emb_NxD))
    b_u, b_i = np.asarray(model.user_bias_U[...]), np.asarray(model.item_bias_N[...])
    mu = float(model.global_bias[...])
    out = np.zeros((INFO.num_users, INFO.num_items))
    for u in range(INFO.num_users):
        n_u = HISTORY.items[HISTORY.users == u]
        z = p[u] + (y[n_u].sum(0) / np.sqrt(len(n_u)) if len(n_u) else 0.0)
        for i in range(INFO.num_items):
            out[u, i] = mu + b_u[u] + b_i[i] + q[i] @ z
    return out


def test_scores_match_the_formula_and_score_all_matches_call():
    model = _model()
    expected_UxN = _numpy_scores(model)
    users_U = jnp.arange(INFO.num_users)
    items_UxN = jnp.broadcast_to(jnp.arange(INFO.num_items), expected_UxN.shape)
    users_B, items_B = jnp.array([5, 0, 2, 2]), jnp.array([3, 8, 0, 7])
    all_UxN, pairs_UxN, pairs_B = jax.jit(lambda m: (  # one compile, not one per eager op
        m.score_all(users_U), m(users_U[:, None], items_UxN), m(users_B, items_B)))(model)
    np.testing.assert_allclose(all_UxN, expected_UxN, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pairs_UxN, all_UxN, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pairs_B, expected_UxN[users_B, items_B], rtol=1e-5, atol=1e-5)
    # without history the model is biased MF (user 5)
    p, q = model.user_emb_UxD[...], model.item_emb_NxD[...]
    np.testing.assert_allclose(all_UxN[5], q @ p[5] + model.user_bias_U[...][5]
                               + model.item_bias_N[...] + model.global_bias[...], rtol=1e-5)


def test_history_edges_sorted_by_user_with_inverse_sqrt_counts():
    users, items, norm = history_edges(HISTORY, INFO.num_users, INFO.num_items)
    assert (np.diff(users) >= 0).all()
    assert sorted(zip(users.tolist(), items.tolist(), strict=True)) == sorted(
        zip(HISTORY.users.tolist(), HISTORY.items.tolist(), strict=True))
    np.testing.assert_allclose(norm, [1 / 2, 1 / np.sqrt(3), 1 / 2, 1 / np.sqrt(2), 1.0, 0.0],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="model.train: indices out of range"):
        history_edges(Rows([6], [0]), INFO.num_users, INFO.num_items)
    with pytest.raises(ValueError, match="model.dim: must be >= 1, got 0"):
        SVDpp(ModelContext(INFO), dim=0, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("user", [0, 4, 5])
def test_gradient_reaches_only_the_users_history_items(user):
    model = _model()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    users_B, items_B = jnp.array([user]), jnp.array([6])

    def grad_y(fn):
        def objective(params):
            return fn(nnx.merge(graphdef, params, rest))
        return np.asarray(jax.jit(jax.grad(objective))(params)["implicit_emb_NxD"][...])

    history = sorted(set(HISTORY.items[HISTORY.users == user].tolist()))
    touched = lambda g: np.flatnonzero(np.abs(g).sum(1) > 0).tolist()  # noqa: E731
    g_score = grad_y(lambda m: m(users_B, items_B)[0])
    assert touched(g_score) == history
    # d score / d y_j = |N(u)|^-1/2 q_i for every j in N(u)
    q_i = np.asarray(model.item_emb_NxD[...][6])
    for j in history:
        np.testing.assert_allclose(g_score[j], q_i / np.sqrt(len(history)), rtol=1e-5)
    # the L2 rows: sum of squares = |p_u|^2 + |q_i|^2 + sum_{j in N(u)} |y_j|^2 (+ biases)
    rows = jax.jit(lambda m: m.l2_rows(users_B, items_B))(model)
    assert all(r.shape[0] == 1 for r in rows)
    y = np.asarray(model.implicit_emb_NxD[...], np.float64)
    expected = (np.sum(np.asarray(model.user_emb_UxD[...][user]) ** 2)
                + np.sum(q_i.astype(np.float64) ** 2) + sum(np.sum(y[j] ** 2) for j in history)
                + float(model.user_bias_U[...][user]) ** 2 + float(model.item_bias_N[...][6]) ** 2)
    np.testing.assert_allclose(sum(float(jnp.sum(r ** 2)) for r in rows), expected, rtol=1e-5)
    g_l2 = grad_y(lambda m: sum(jnp.sum(r ** 2) for r in m.l2_rows(users_B, items_B)))
    assert np.isfinite(g_l2).all() and touched(g_l2) == history
    np.testing.assert_allclose(g_l2[history], 2 * y[history], rtol=1e-5)


def _train(model, train, *, epochs, lr, batch_size=64, l2=0.02):
    data = device_data(train.users, train.items, ratings=train.ratings,
                       num_users=train.num_users, num_items=train.num_items)
    tx = optax.adam(lr)
    graphdef, state = init_state(model, tx)
    epoch = make_epoch_fn(make_train_step(graphdef, MSE(l2=l2), tx))
    rng = np.random.default_rng(0)
    for e in range(epochs):
        perm, mask = epoch_order(rng, len(train), batch_size)
        state, _ = epoch(state, data, {}, perm, mask, jax.random.key(e))
    return nnx.merge(graphdef, state.params, state.rest)


def test_learns_planted_ratings_and_can_keep_the_mean_fixed():
    # 120 users x 20 ratings from a rank-4 model; test RMSE of the training mean: 1.135
    ds = load_and_split(make_synthetic(num_users=120, num_items=80, dim=4,
                                       interactions_per_user=20, seed=1),
                        split_cfg={"method": "random", "test": 0.2, "seed": 0})
    test = ds.test

    def rmse(model):
        return float(np.sqrt(np.mean((np.asarray(model(jnp.asarray(test.users),
                                                        jnp.asarray(test.items)))
                                      - test.ratings) ** 2)))

    baseline = float(np.sqrt(np.mean((test.ratings - ds.info.rating_mean) ** 2)))
    assert baseline > 1.1
    svdpp = SVDpp(ModelContext(ds.info, train=ds.train), dim=8, init_std=0.05, learn_mean=False,
                  bias_l2_scale=1.0, rngs=nnx.Rngs(0))
    model = _train(svdpp, ds.train, epochs=20, lr=0.03)
    assert rmse(model) < 0.72, (rmse(model), baseline)  # measured 0.662
    assert float(model.global_bias[...]) == pytest.approx(ds.info.rating_mean)  # not trained
    assert not isinstance(model.global_bias, nnx.Param)


def test_jaxrec_train_model_svdpp_gets_the_training_history(tmp_path):
    from tests.helpers import build

    overrides = ["data=synthetic", "data.dataset.num_users=40", "data.dataset.num_items=50",
                 "data.dataset.interactions_per_user=8", "model=svdpp", "model.dim=4",
                 "trainer.epochs=2", "trainer.batch_size=64", "eval.ks=[5]",
                 "eval.metrics=[ndcg]", "trainer.save_checkpoint=false",
                 "eval.save_per_user=false"]
    dataset, model, _ = build(compose_train(overrides, tmp_path / "build"))
    train = dataset.train
    assert model.history_users_E.shape == (len(train),)
    counts = np.bincount(train.users, minlength=train.num_users)
    np.testing.assert_allclose(model.history_norm_U[...],
                               np.where(counts > 0, 1 / np.sqrt(np.maximum(counts, 1)), 0),
                               rtol=1e-6)
    results = run_train(overrides, tmp_path / "run")
    assert np.isfinite(results["metrics"]["test/rmse"]) and results["metrics"]["test/rmse"] < 2.0
    assert results["epochs_run"] == 2
