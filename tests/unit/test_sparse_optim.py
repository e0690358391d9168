"""Row-sparse optimisers (jaxrec.training.sparse): equal to the dense optax optimiser where
they must be, untouched rows left alone, the models' row promise, the optim.sparse switch."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.config import OptimConfig
from jaxrec.losses import BCE, BPR, MSE
from jaxrec.models.base import ModelContext
from jaxrec.models.gmf import GMF
from jaxrec.models.mf import MF
from jaxrec.models.neumf import NeuMF
from jaxrec.training.optimizer import make_optimizer
from jaxrec.training.sparse import RowSparseState, resolve_sparse, table_kinds
from jaxrec.training.step import init_state, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import device_data

U, N, D = 4, 6, 3
SLOW = pytest.mark.slow  # compile-bound repeats of a rule the fast tier covers
CONFIGS = {
    "adam": OptimConfig(name="adam", lr=0.05, weight_decay=0.01),
    "adamw": pytest.param(OptimConfig(name="adamw", lr=0.05, weight_decay=0.01), marks=SLOW),
    "adagrad": pytest.param(OptimConfig(name="adagrad", lr=0.1, weight_decay=0.01), marks=SLOW),
    "sgd": pytest.param(OptimConfig(name="sgd", lr=0.1, momentum=0.9, weight_decay=0.01),
                        marks=SLOW),
    "sgd_clip_cosine": pytest.param(OptimConfig(name="sgd", lr=0.1, momentum=0.5, grad_clip=0.5,
                                                schedule="cosine"), marks=SLOW),
}


def _params(seed=0):
    k = jax.random.split(jax.random.key(seed), 4)
    return {"user_UxD": jax.random.normal(k[0], (U, D)),
            "item_NxD": jax.random.normal(k[1], (N, D)),
            "item_bias_N": jax.random.normal(k[2], (N,)), "w_D": jax.random.normal(k[3], (D,)),
            "kernel": jnp.ones((N, 2))}  # a vocabulary-sized dense kernel: not a table


def _txs(cfg, sparse="true"):
    kw = {"steps_per_epoch": 2, "total_epochs": 3}
    return make_optimizer(cfg, **kw), make_optimizer(dataclasses.replace(cfg, sparse=sparse),
                                                     **kw, sparse_rows=table_kinds(U, N))


def _grads(key, users, items):
    """Random gradients that are zero outside the used rows (as a batch's would be)."""
    g = jax.tree.map(lambda x: jax.random.normal(key, x.shape), _params())
    mu = jnp.zeros(U).at[users].set(1.0)[:, None]
    mi = jnp.zeros(N).at[items].set(1.0)
    return {"user_UxD": g["user_UxD"] * mu, "item_NxD": g["item_NxD"] * mi[:, None],
            "item_bias_N": g["item_bias_N"] * mi, "w_D": g["w_D"], "kernel": g["kernel"]}


def _close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def _dense_and_sparse(cfg, rows, sparse="true"):
    """Both optimisers' parameters after one step per ``(users, items)`` of ``rows``."""
    dense, sparse = _txs(cfg, sparse)
    p_dense = p_sparse = _params()
    s_dense, s_sparse = dense.init(p_dense), sparse.init(p_sparse)

    def steps(p_dense, s_dense, p_sparse, s_sparse):
        for t, (users, items) in enumerate(rows):
            g = _grads(jax.random.key(t), users, items)
            u, s_dense = dense.update(g, s_dense, p_dense)
            p_dense = optax.apply_updates(p_dense, u)
            p_sparse, s_sparse = sparse.apply(g, s_sparse, p_sparse,
                                              {"users": users, "items": items})
        return p_dense, p_sparse

    return jax.jit(steps)(p_dense, s_dense, p_sparse, s_sparse)


@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_every_row_used_every_step_equals_dense(cfg):
    users = jnp.array([0, 1, 2, 3, 1])  # duplicates: the summed gradient row, set twice
    items = jnp.array([[5, 4, 3], [2, 1, 0]])
    p_dense, p_sparse = _dense_and_sparse(cfg, [(users, items)] * 3)
    _close(p_sparse, p_dense)


def test_sgd_without_momentum_or_decay_equals_dense_on_any_rows():
    rng = np.random.default_rng(0)
    rows = [(jnp.asarray(rng.integers(0, U, 2)), jnp.asarray(rng.integers(0, N, 3)))
            for _ in range(3)]
    p_dense, p_sparse = _dense_and_sparse(OptimConfig(name="sgd", lr=0.1, momentum=None), rows)
    _close(p_sparse, p_dense)


def test_auto_gives_tables_smaller_than_4x_the_used_rows_the_dense_rule():
    """``optim.sparse=auto``: these 4- and 6-row tables are under 4x the rows a step can
    touch, so they take the dense rule (every row's moments move), exactly optax's."""
    rows = [(jnp.array([0, 1]), jnp.array([2, 3])), (jnp.array([3, 3]), jnp.array([5, 0]))]
    p_dense, p_auto = _dense_and_sparse(CONFIGS["adam"], rows, sparse="auto")
    _close(p_auto, p_dense)  # (lazy differs here: see the untouched-rows test)


def test_untouched_rows_keep_parameters_and_moments():
    """Step 1 uses every row, step 2 only user 0 and item 2: dense Adam moves the others by
    their momentum, the lazy one leaves them (parameters and both moments) as they were;
    the used rows follow Adam's rule (numpy) with the global step count."""
    cfg = OptimConfig(name="adam", lr=0.05)
    _, sparse = _txs(cfg)
    p = _params()
    s = sparse.init(p)
    every = {"users": jnp.arange(U), "items": jnp.arange(N)}
    g1 = _grads(jax.random.key(1), every["users"], every["items"])
    some = {"users": jnp.array([0]), "items": jnp.array([2])}
    g2 = _grads(jax.random.key(2), some["users"], some["items"])

    @jax.jit
    def steps(p, s):
        p1, s1 = sparse.apply(g1, s, p, every)
        return (p1, s1), sparse.apply(g2, s1, p1, some)

    (p1, s1), (p2, s2) = steps(p, s)
    assert isinstance(s2, RowSparseState) and int(s2.count) == 2 and len(s2.moments) == 2
    assert isinstance(s2.moments[0]["w_D"], optax.MaskedNode)  # a dense parameter: no moment
    assert np.all(np.asarray(p2["kernel"]) != np.asarray(p1["kernel"]))  # dense: every row
    for name, used in [("item_NxD", 2), ("item_bias_N", 2), ("user_UxD", 0)]:
        rest = np.delete(np.arange(p[name].shape[0]), used)
        np.testing.assert_array_equal(np.asarray(p2[name])[rest], np.asarray(p1[name])[rest])
        for m in range(2):
            np.testing.assert_array_equal(np.asarray(s2.moments[m][name])[rest],
                                          np.asarray(s1.moments[m][name])[rest])
        g = np.asarray(g2[name])[used]
        mu = 0.9 * np.asarray(s1.moments[0][name])[used] + 0.1 * g
        nu = 0.999 * np.asarray(s1.moments[1][name])[used] + 0.001 * g * g
        step = (mu / (1 - 0.9 ** 2)) / (np.sqrt(nu / (1 - 0.999 ** 2)) + 1e-8)
        np.testing.assert_allclose(np.asarray(p2[name])[used],
                                   np.asarray(p1[name])[used] - 0.05 * step, rtol=1e-5)


INFO = DataInfo(num_users=7, num_items=11, num_train=40, rating_mean=3.0, rating_min=1.0,
                rating_max=5.0, implicit=False, name="tiny")
MODELS = [(MF, {"dim": 4}, BPR(l2=0.1)),
          pytest.param(MF, {"dim": 4}, MSE(), marks=SLOW),
          pytest.param(GMF, {"dim": 4}, BCE(), marks=SLOW),
          pytest.param(NeuMF, {"gmf_dim": 4, "mlp_dim": 4, "hidden": (8, 4)}, BPR(), marks=SLOW)]


@pytest.mark.parametrize("cls,kw,loss", MODELS, ids=lambda x: getattr(x, "__name__", ""))
def test_declared_models_get_gradient_only_at_the_batch_rows(cls, kw, loss):
    """The ``sparse_rows`` promise: a table's gradient is zero outside the batch's users
    and the items the loss reports (so the lazy update loses nothing)."""
    from jaxrec.training.step import make_objective

    assert cls.sparse_rows and loss.sparse_rows
    rng = np.random.default_rng(0)
    users = rng.integers(0, INFO.num_users, INFO.num_train)
    items = rng.integers(0, INFO.num_items, INFO.num_train)
    data = device_data(users, items, num_users=INFO.num_users, num_items=INFO.num_items)
    model = cls(ModelContext(INFO), **kw, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    batch = {"users": jnp.asarray(users[:3]), "items": jnp.asarray(items[:3]),
             "ratings": jnp.ones(3), "mask": jnp.ones(3)}
    grads, (_, _, touched) = jax.jit(jax.grad(make_objective(graphdef, loss), has_aux=True))(
        params, rest, batch, data, {}, jax.random.key(0), jnp.zeros((), jnp.int32))
    used = {INFO.num_users: set(np.asarray(batch["users"]).tolist()),
            INFO.num_items: set(np.asarray(touched).ravel().tolist())}
    tables = 0
    for g in jax.tree.leaves(grads):
        if g.ndim in (1, 2) and g.shape[0] in used:
            tables += 1
            outside = sorted(set(range(g.shape[0])) - used[g.shape[0]])
            assert not np.any(np.asarray(g)[outside]), (cls.__name__, g.shape)
    assert tables >= 2


@pytest.mark.slow
def test_vmapped_members_with_their_own_learning_rates_step_like_single_ones():
    """K = 2 stacked members (inject_hyperparams lr in the state) under jax.vmap."""
    rng = np.random.default_rng(1)
    users = rng.integers(0, INFO.num_users, INFO.num_train)
    items = rng.integers(0, INFO.num_items, INFO.num_train)
    data = device_data(users, items, num_users=INFO.num_users, num_items=INFO.num_items)
    batch = {"users": jnp.asarray(users[:8]), "items": jnp.asarray(items[:8]),
             "ratings": jnp.ones(8), "mask": jnp.ones(8)}
    states = []
    for lr in (0.01, 0.1):  # noqa: B007
        tx = make_optimizer(OptimConfig(lr=lr, sparse="true"), steps_per_epoch=1, total_epochs=1,
                            sparse_rows=table_kinds(INFO.num_users, INFO.num_items))
        graphdef, state = init_state(MF(ModelContext(INFO), dim=4, rngs=nnx.Rngs(0)), tx)
        step = make_train_step(graphdef, BPR(), tx)
        states.append(state)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)

    @jax.jit
    def both(stacked, states):
        singles = [step(s, batch, data, {}, jax.random.key(0))[0] for s in states]
        return jax.vmap(step, in_axes=(0, None, None, None, None))(
            stacked, batch, data, {}, jax.random.key(0))[0], singles

    out, singles = both(stacked, states)
    for k in range(2):
        _close(jax.tree.map(lambda x, k=k: x[k], out.params), singles[k].params)


def test_sparse_switch_auto_true_false_and_one_line_refusals():
    mf, bpr = SimpleNamespace(sparse_rows=True), BPR()
    assert resolve_sparse("auto", model=mf, loss=bpr, private=False)
    assert not resolve_sparse("false", model=mf, loss=bpr, private=False)
    assert not resolve_sparse("auto", model=object(), loss=bpr, private=False)
    with pytest.raises(ValueError, match=r"^optim.sparse: true .*dp_sgd"):
        resolve_sparse("true", model=mf, loss=bpr, private=True)
    with pytest.raises(ValueError, match=r"^optim.sparse: true .*sparse_rows"):
        resolve_sparse("true", model=object(), loss=bpr, private=False)
    from jaxrec.training.optimizer import validate_optim

    with pytest.raises(ValueError, match=r"^optim.sparse: unknown value 'sometimes'"):
        validate_optim(OptimConfig(sparse="sometimes"))
    validate_optim(OptimConfig(sparse=True))  # YAML / CLI booleans
