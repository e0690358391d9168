"""EASE, iALS and the random baseline: closed forms against numpy on tiny shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.models import EASE, IALS, RandomBaseline
from jaxrec.models.base import ModelContext
from jaxrec.models.ease import ease_weights
from jaxrec.training.step import init_state, make_solver_epoch_fn
from jaxrec.types import DataInfo


def _info(num_users, num_items):
    return DataInfo(num_users=num_users, num_items=num_items, num_train=0, rating_mean=1.0,
                    rating_min=1.0, rating_max=1.0, implicit=True, name="tiny")


def _data(num_users, num_items, density, seed=0, ratings=False):
    """Random distinct (user, item) pairs sorted by user, item, plus their CSR."""
    rng = np.random.default_rng(seed)
    x = rng.random((num_users, num_items)) < density
    x[np.arange(num_users), rng.integers(0, num_items, num_users)] = True  # no empty user
    users, items = np.nonzero(x)
    r = rng.integers(1, 6, len(users)).astype(np.float32) if ratings else np.ones(len(users))
    indptr = np.concatenate([[0], np.cumsum(x.sum(1))])
    data = {"users": users.astype(np.int32), "items": items.astype(np.int32),
            "ratings": r.astype(np.float32), "indptr": indptr.astype(np.int32),
            "indices": items.astype(np.int32)}
    return x.astype(np.float64), {k: jnp.asarray(v) for k, v in data.items()}


@nnx.jit
def _solve(model, data, key):
    return model.solve_epoch(data, key)  # one compiled solve (eager dispatch is slower)


def _numpy_ease(x, l2):
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


# ---------------------------------------------------------------- EASE

# Woodbury (U < N), Gram (U >= N) in one block and in blocks of 4 (the last one partial)
@pytest.mark.parametrize(("shape", "block"), [((7, 15), 4096), ((15, 7), 4096), ((15, 7), 4)])
def test_ease_weights_match_numpy_closed_form(shape, block):
    x, _ = _data(*shape, density=0.3)
    b = ease_weights(jnp.asarray(x, jnp.float32), 2.0, user_block=block)
    np.testing.assert_allclose(b, _numpy_ease(x, 2.0), rtol=1e-4, atol=1e-5)
    assert np.all(np.diag(b) == 0)


@pytest.mark.parametrize(("shape", "block"), [((7, 15), 4096), ((15, 7), 4096), ((15, 7), 4)])
def test_ease_solve_scores_and_objective(shape, block):
    x, data = _data(*shape, density=0.3)
    model = EASE(ModelContext(_info(*shape)), l2=3.0, user_block=block, rngs=nnx.Rngs(0))
    assert float(jnp.abs(model.score_all(jnp.arange(shape[0]))).max()) == 0.0  # before any solve
    objective = _solve(model, data, jax.random.key(0))
    b = _numpy_ease(x, 3.0)
    np.testing.assert_allclose(model.score_all(jnp.arange(shape[0])), x @ b, rtol=1e-4, atol=1e-5)
    want = (np.sum((x - x @ b) ** 2) + 3.0 * np.sum(b**2)) / x.sum()
    np.testing.assert_allclose(objective, want, rtol=1e-4)
    users = jnp.array([[0, 1], [2, 0]])
    items = jnp.array([[3, 0], [1, 6]])
    np.testing.assert_allclose(model(users, items), (x @ b)[users, items], rtol=1e-4, atol=1e-5)


def test_ease_ignores_ratings_and_duplicates():
    x, data = _data(6, 9, density=0.4, ratings=True)
    dup = {k: jnp.concatenate([v, v[:3]]) if k in ("users", "items", "ratings") else v
           for k, v in data.items()}
    model = EASE(ModelContext(_info(6, 9)), l2=1.0, rngs=nnx.Rngs(0))
    _solve(model, dup, jax.random.key(0))
    np.testing.assert_allclose(model.weights_NxN[...], _numpy_ease(x, 1.0), rtol=1e-4, atol=1e-5)


def test_ease_rejects_non_positive_l2():
    with pytest.raises(ValueError, match="model.l2"):
        EASE(ModelContext(_info(3, 4)), l2=0.0, rngs=nnx.Rngs(0))


# ---------------------------------------------------------------- iALS

def _numpy_side(other, x_rows, c, alpha0, reg_rows):
    """Each row's least-squares solution of the iALS objective, via np.linalg.lstsq.

    Row r minimises sum_j c_rj (<w, h_j> - 1)^2 over its observed j, plus
    alpha0 <w, h_j>^2 over every j, plus reg_r ||w||^2.
    """
    dim = other.shape[1]
    out = []
    for r in range(x_rows.shape[0]):
        obs = np.nonzero(x_rows[r])[0]
        sw = np.sqrt(c[r, obs])[:, None]
        design = np.concatenate([sw * other[obs], np.sqrt(alpha0) * other,
                                 np.sqrt(reg_rows[r]) * np.eye(dim)])
        target = np.concatenate([sw[:, 0], np.zeros(len(other) + dim)])
        out.append(np.linalg.lstsq(design, target, rcond=None)[0])
    return np.stack(out)


@pytest.mark.parametrize("solver,steps", [("cholesky", 1), ("cg", 12)])
@pytest.mark.parametrize("alpha,nu", [(0.0, 1.0), (0.5, 0.0)])
def test_ials_epoch_matches_numpy_least_squares(solver, steps, alpha, nu):
    num_users, num_items, dim, alpha0, reg = 9, 13, 4, 0.3, 0.05
    x, data = _data(num_users, num_items, density=0.3, ratings=alpha > 0)
    model = IALS(ModelContext(_info(num_users, num_items)), dim=dim, unobserved_weight=alpha0,
                 reg=reg, reg_exponent=nu, alpha=alpha, init_std=0.5, solver=solver, cg_steps=steps,
                 rngs=nnx.Rngs(1))
    h0 = np.asarray(model.item_emb_NxD[...], np.float64)
    c = np.zeros((num_users, num_items))
    c[np.asarray(data["users"]), np.asarray(data["items"])] = 1 + alpha * np.asarray(
        data["ratings"])
    reg_u = reg * (x.sum(1) + alpha0 * num_items) ** nu
    reg_i = reg * (x.sum(0) + alpha0 * num_users) ** nu
    w1 = _numpy_side(h0, x, c, alpha0, reg_u)  # users given the initial items
    h1 = _numpy_side(w1, x.T, c.T, alpha0, reg_i)  # then items given the new users
    _solve(model, data, jax.random.key(0))
    np.testing.assert_allclose(model.user_emb_UxD[...], w1, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(model.item_emb_NxD[...], h1, rtol=2e-3, atol=2e-4)


def test_ials_objective_matches_brute_force():
    num_users, num_items, alpha0, reg = 5, 8, 0.2, 0.1
    x, data = _data(num_users, num_items, density=0.4)
    model = IALS(ModelContext(_info(num_users, num_items)), dim=3, unobserved_weight=alpha0,
                 reg=reg, init_std=0.3, rngs=nnx.Rngs(0))
    objective = _solve(model, data, jax.random.key(0))
    w = np.asarray(model.user_emb_UxD[...], np.float64)
    h = np.asarray(model.item_emb_NxD[...], np.float64)
    s = w @ h.T
    want = (np.sum(x * (s - 1) ** 2) + alpha0 * np.sum(s**2)
            + np.sum(reg * (x.sum(1) + alpha0 * num_items) * np.sum(w**2, 1))
            + np.sum(reg * (x.sum(0) + alpha0 * num_users) * np.sum(h**2, 1))) / x.sum()
    np.testing.assert_allclose(objective, want, rtol=1e-4)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_ials_objective_decreases_over_epochs_under_jit(solver):
    num_users, num_items = 20, 30
    _, data = _data(num_users, num_items, density=0.2)
    model = IALS(ModelContext(_info(num_users, num_items)), dim=6, unobserved_weight=0.1, reg=0.01,
                 solver=solver, cg_steps=2, rngs=nnx.Rngs(0))
    graphdef, state = init_state(model, optax.identity())
    epoch = make_solver_epoch_fn(graphdef)
    losses = []
    for e in range(6):
        state, value = epoch(state, data, {}, None, None, jax.random.key(e))
        losses.append(float(value))
    assert np.all(np.diff(losses) <= 1e-6 * losses[0]), losses
    assert losses[-1] < 0.9 * losses[0], losses
    trained = nnx.merge(graphdef, state.params, state.rest)
    users = jnp.arange(num_users)
    items = jnp.broadcast_to(jnp.arange(num_items), (num_users, num_items))
    np.testing.assert_allclose(trained.score_all(users), trained(users[:, None], items),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,field", [({"solver": "lu"}, "model.solver"),
                                          ({"cg_steps": 0}, "model.cg_steps"),
                                          ({"unobserved_weight": -1.0}, "model.unobserved_weight")])
def test_ials_rejects_bad_hyperparameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        IALS(ModelContext(_info(3, 4)), rngs=nnx.Rngs(0), **kwargs)


# ---------------------------------------------------------------- random

def test_random_baseline_is_seeded_uniform_and_fixed_after_solve():
    _, data = _data(40, 300, density=0.05)
    model = RandomBaseline(ModelContext(_info(40, 300)), rngs=nnx.Rngs(0))
    before = np.asarray(model.score_all(jnp.arange(40)))
    again = RandomBaseline(ModelContext(_info(40, 300)), rngs=nnx.Rngs(0)).score_all(jnp.arange(40))
    np.testing.assert_array_equal(before, again)
    _solve(model, data, jax.random.key(3))
    after = np.asarray(model.score_all(jnp.arange(40)))
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, model.score_all(jnp.arange(40)))  # fixed after solve
    assert 0.0 <= after.min() and after.max() < 1.0
    assert abs(after.mean() - 0.5) < 0.01 and abs(after.var() - 1 / 12) < 0.005
    assert len(np.unique(after)) > 0.99 * after.size  # no repeated patterns across users
    # the ranking is unrelated to the user: rank correlation between users' scores ~ 0
    corr = np.corrcoef(np.argsort(np.argsort(after, axis=1), axis=1))[np.triu_indices(40, 1)]
    assert np.abs(corr).mean() < 0.1


def test_rowdot_is_the_last_axis_dot_product_with_broadcasting():
    from jaxrec.models.layers.ops import rowdot

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 1, 16)), rng.normal(size=(7, 5, 16))
    got = rowdot(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    assert got.shape == (7, 5)
    want = np.einsum("xyd,xyd->xy", *np.broadcast_arrays(a, b))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
