"""The vectorised epoch: K stacked members step exactly like K separate runs; masks freeze."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.config import OptimConfig
from jaxrec.losses import MSE
from jaxrec.models.base import ModelContext
from jaxrec.models.mf import MF
from jaxrec.sweep.vectorized import _member, _stack, make_member_epoch, make_vectorized_epoch
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo

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
    order = np.lexsort((i, u))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=INFO.num_users))])
    return {"users": jnp.asarray(u), "items": jnp.asarray(i),
            "ratings": jnp.asarray(rng.uniform(1, 5, INFO.num_train), jnp.float32),
            "indptr": jnp.asarray(indptr, jnp.int32), "indices": jnp.asarray(i[order])}


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
        fn = make_epoch_fn(make_train_step(g, loss, tx, num_items=INFO.num_items))
        rng, losses = np.random.default_rng(seed), []
        for epoch in range(1, epochs + 1):
            perm, mask = epoch_order(rng, INFO.num_train, batch)
            state, value = fn(state, data, perm, mask,
                              jax.random.fold_in(jax.random.key(seed), epoch))
            losses.append(float(value))
        expected.append((state, losses))

    # together: one program, L2 as data, one order per member
    step = make_train_step(graphdef, loss0, tx0, num_items=INFO.num_items)
    vepoch = make_vectorized_epoch(step, shared_order=False)
    stacked = _stack([_member_setup(*m, loss_cls)[1] for m in MEMBERS])  # fresh: donated
    l2 = jnp.asarray([m[3] for m in MEMBERS], jnp.float32)
    rngs = [np.random.default_rng(m[0]) for m in MEMBERS]
    base = [jax.random.key(m[0]) for m in MEMBERS]
    got = []
    for epoch in range(1, epochs + 1):
        perms, masks = zip(*(epoch_order(r, INFO.num_train, batch) for r in rngs), strict=True)
        keys = jnp.stack([jax.random.fold_in(k, epoch) for k in base])
        stacked, loss_K = vepoch(stacked, data, jnp.ones(len(MEMBERS), bool), l2,
                                 np.stack(perms), np.stack(masks), keys)
        got.append(np.asarray(loss_K))
    for k, (state, losses) in enumerate(expected):
        np.testing.assert_allclose([g[k] for g in got], losses, rtol=2e-5)
        for a, b in zip(jax.tree.leaves(_member(stacked, k)), jax.tree.leaves(state),
                        strict=True):
            np.testing.assert_allclose(a, b, **PARAM_TOL)

    # the un-vmapped shared program (a CPU group's one-at-a-time lane) agrees too
    single = make_member_epoch(step)
    g, state, tx, loss = _member_setup(*MEMBERS[1], loss_cls)
    rng = np.random.default_rng(MEMBERS[1][0])
    for epoch in range(1, epochs + 1):
        perm, mask = epoch_order(rng, INFO.num_train, batch)
        state, _ = single(state, data, jnp.float32(MEMBERS[1][3]), perm, mask,
                          jax.random.fold_in(base[1], epoch))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(expected[1][0]), strict=True):
        np.testing.assert_allclose(a, b, **PARAM_TOL)


def test_inactive_members_are_frozen_and_shared_order_works():
    data = _data()
    setups = [_member_setup(0, lr, 0.0, 0.1, 0.1, MSE) for lr in (0.01, 0.02)]
    graphdef, _, tx0, loss0 = setups[0]
    vepoch = make_vectorized_epoch(make_train_step(graphdef, loss0, tx0,
                                                   num_items=INFO.num_items), shared_order=True)
    before = jax.tree.map(jnp.copy, _stack([s[1] for s in setups]))
    perm, mask = epoch_order(np.random.default_rng(0), INFO.num_train, 128)
    after, _ = vepoch(jax.tree.map(jnp.copy, before), data, jnp.asarray([True, False]),
                      jnp.full(2, 0.1), perm, mask, jnp.stack([jax.random.key(0)] * 2))
    for a, b in zip(jax.tree.leaves(_member(after, 1)), jax.tree.leaves(_member(before, 1)),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    moved = [not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(_member(after.params, 0)), jax.tree.leaves(_member(before.params, 0)),
        strict=True)]
    assert any(moved)
