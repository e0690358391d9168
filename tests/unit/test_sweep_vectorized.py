"""The vectorised epoch: K stacked members step exactly like K separate runs; masks freeze;
the one training loop gives each of K members the result of its own single fit."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.config import OptimConfig
from jaxrec.losses import MSE
from jaxrec.models.base import ModelContext
from jaxrec.models.mf import MF
from jaxrec.training.chunks import epoch_programs
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import device_data

INFO = DataInfo(num_users=20, num_items=40, num_train=300, rating_mean=3.0, rating_min=1.0,
                rating_max=5.0, implicit=False, name="tiny")
# (seed, lr, weight decay, l2, init_std): every vectorisable kind of difference
MEMBERS = [(0, 0.01, 0.0, 0.1, 0.1), (3, 0.05, 1e-3, 0.0, 0.02)]
# Adam divides by the root of tiny second moments, which magnifies summation-order
# differences in near-zero gradients: parameters agree to ~1e-4 absolute.
PARAM_TOL = {"rtol": 1e-4, "atol": 5e-4}


def _data():
    rng = np.random.default_rng(0)
    u = rng.integers(0, INFO.num_users, INFO.num_train).astype(np.int32)
    i = rng.integers(0, INFO.num_items, INFO.num_train).astype(np.int32)
    return device_data(u, i, ratings=rng.uniform(1, 5, INFO.num_train), num_users=INFO.num_users,
                       num_items=INFO.num_items)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree, k):
    return jax.tree.map(lambda x: x[k], tree)


def _programs(graphdef, loss, tx, *, shared_order):
    return epoch_programs(SimpleNamespace(graphdef=graphdef, loss=loss, tx=tx),
                          shared_order=shared_order)


def _member_setup(seed, lr, wd, l2, init_std, loss_cls):
    from jaxrec.training.optimizer import make_optimizer

    tx = make_optimizer(OptimConfig(name="adam", lr=lr, weight_decay=wd),
                        steps_per_epoch=3, total_epochs=2)
    model = MF(ModelContext(INFO), dim=4, init_std=init_std,
               rngs=nnx.Rngs(params=seed, default=seed))
    graphdef, state = init_state(model, tx)
    loss = loss_cls(l2=l2)
    return graphdef, state, tx, loss


def test_stacked_members_match_separate_epochs(loss_cls=MSE):
    """(BPR members, with their sampling keys, are compared end to end in
    tests/integration/test_sweep_study.py: BPR's user-bias gradient cancels to
    rounding noise that Adam scales up to full steps, so raw parameters differ.)"""
    data, batch, epochs = _data(), 128, 2
    setups = [_member_setup(*m, loss_cls) for m in MEMBERS]
    graphdef, _, tx0, loss0 = setups[0]

    # separately: each member with its own static loss, optimiser and seeded order
    expected = []
    for (seed, *_), (g, state, tx, loss) in zip(MEMBERS, setups, strict=True):
        fn = make_epoch_fn(make_train_step(g, loss, tx))
        rng, losses = np.random.default_rng(seed), []
        for epoch in range(1, epochs + 1):
            perm, mask = epoch_order(rng, INFO.num_train, batch)
            state, value = fn(state, data, {}, perm, mask,
                              jax.random.fold_in(jax.random.key(seed), epoch))
            losses.append(float(value))
        expected.append((state, losses))

    # together: one program, L2 as a per-member hyperparameter, one order per member
    single, vepoch = _programs(graphdef, loss0, tx0, shared_order=False)
    stacked = _stack([_member_setup(*m, loss_cls)[1] for m in MEMBERS])  # fresh: donated
    l2 = {"l2": jnp.asarray([m[3] for m in MEMBERS], jnp.float32)}
    rngs = [np.random.default_rng(m[0]) for m in MEMBERS]
    base = [jax.random.key(m[0]) for m in MEMBERS]
    got = []
    for epoch in range(1, epochs + 1):
        perms, masks = zip(*(epoch_order(r, INFO.num_train, batch) for r in rngs), strict=True)
        keys = jnp.stack([jax.random.fold_in(k, epoch) for k in base])
        stacked, loss_K = vepoch(stacked, data, l2, jnp.ones(len(MEMBERS), bool),
                                 np.stack(perms), np.stack(masks), keys)
        got.append(np.asarray(loss_K)[:, 0])  # [members, (epoch mean, first step)]
    for k, (state, losses) in enumerate(expected):
        np.testing.assert_allclose([g[k] for g in got], losses, rtol=2e-5)
        for a, b in zip(jax.tree.leaves(_member(stacked, k)), jax.tree.leaves(state),
                        strict=True):
            np.testing.assert_allclose(a, b, **PARAM_TOL)

    # the un-vmapped shared program (a CPU group's one-at-a-time lane) agrees too
    g, state, tx, loss = _member_setup(*MEMBERS[1], loss_cls)
    rng = np.random.default_rng(MEMBERS[1][0])
    for epoch in range(1, epochs + 1):
        perm, mask = epoch_order(rng, INFO.num_train, batch)
        state, _ = single(state, data, {"l2": jnp.float32(MEMBERS[1][3])}, perm, mask,
                          jax.random.fold_in(base[1], epoch))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(expected[1][0]), strict=True):
        np.testing.assert_allclose(a, b, **PARAM_TOL)


def test_inactive_members_are_frozen_and_shared_order_works():
    data = _data()
    setups = [_member_setup(0, lr, 0.0, 0.1, 0.1, MSE) for lr in (0.01, 0.02)]
    graphdef, _, tx0, loss0 = setups[0]
    _, vepoch = _programs(graphdef, loss0, tx0, shared_order=True)
    before = jax.tree.map(jnp.copy, _stack([s[1] for s in setups]))
    perm, mask = epoch_order(np.random.default_rng(0), INFO.num_train, 128)
    after, _ = vepoch(jax.tree.map(jnp.copy, before), data, {"l2": jnp.full(2, 0.1)},
                      jnp.asarray([True, False]), perm, mask, jnp.stack([jax.random.key(0)] * 2))
    for a, b in zip(jax.tree.leaves(_member(after, 1)), jax.tree.leaves(_member(before, 1)),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    moved = [not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(_member(after.params, 0)), jax.tree.leaves(_member(before.params, 0)),
        strict=True)]
    assert any(moved)


def test_the_loop_trains_k_members_like_k_single_fits():
    """Two members in one fit (stacked, then one lane at a time) end where each member's own
    single fit ends: same best epoch, same metrics (to float tolerance)."""
    from jaxrec.config import EvalConfig, TrainerConfig
    from jaxrec.data.datasets.synthetic import make_synthetic
    from jaxrec.data.device import train_data
    from jaxrec.data.pipeline import load_and_split
    from jaxrec.data.sampling import negative_pool
    from jaxrec.logging import MultiWriter
    from jaxrec.metrics.protocols import build_evaluators
    from jaxrec.runner import fit_model
    from jaxrec.training.loop import Member, Program, fit
    from jaxrec.training.optimizer import make_optimizer

    inter = make_synthetic(num_users=40, num_items=30, interactions_per_user=12, seed=0)
    dataset = load_and_split(inter, None, {"method": "random", "test": 0.2, "valid": 0.1})
    trainer = TrainerConfig(epochs=4, batch_size=64, patience=2, progress=False)
    eval_cfg = EvalConfig(ks=[5], metrics=["ndcg"])
    evaluators = build_evaluators(dataset, eval_cfg, seed=0)
    ctx = ModelContext(dataset.info, train=dataset.train)

    def member(seed, lr, l2):
        tx = make_optimizer(OptimConfig(lr=lr), steps_per_epoch=4, total_epochs=4)
        model = MF(ctx, dim=4, rngs=nnx.Rngs(params=seed, default=seed))
        return model, tx, MSE(l2=l2)

    settings = [(0, 0.01, 0.1), (1, 0.05, 0.0)]
    single = []
    for s in settings:
        model, tx, loss = member(*s)
        single.append(fit_model(model, loss, dataset, trainer=trainer, tx=tx,
                                evaluators=evaluators, seed=s[0]))
    for lanes in (2, 1):
        built = [member(*s) for s in settings]
        graphdef, _ = init_state(built[0][0], built[0][1])
        members = [Member(init_state(m, tx)[1], seed=s[0], hparams={"l2": lo.l2},
                          writer=MultiWriter([])) for (m, tx, lo), s in zip(built, settings,
                                                                            strict=True)]
        train = dataset.train
        program = Program(graphdef=graphdef, loss=built[0][2], tx=built[0][1],
                          data=train_data(train, negative_pool(train.items, train.num_items)),
                          valid_evals=evaluators[0], test_evals=evaluators[1], trainer=trainer,
                          monitor="valid/rmse", higher_is_better=False)
        results = fit(program, members, lanes=lanes)
        for got, want in zip(results, single, strict=True):
            assert got.best_epoch == want.best_epoch and got.epochs_run == want.epochs_run
            assert got.metrics.keys() == want.metrics.keys()
            for key, value in want.metrics.items():
                np.testing.assert_allclose(got.metrics[key], value, rtol=1e-4, atol=1e-5,
                                           err_msg=key)
