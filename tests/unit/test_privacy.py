"""DP-SGD: the accountant against dp-accounting, calibration, clipping, noise, the plan."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.config import PrivacyConfig
from jaxrec.losses import MSE
from jaxrec.models.base import ModelContext
from jaxrec.models.mf import MF
from jaxrec.privacy import accounting, build_plan
from jaxrec.training.dp import make_dp_train_step, make_unit_grads
from jaxrec.training.step import init_state, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import device_data

dp_accounting = pytest.importorskip("dp_accounting")

INFO = DataInfo(num_users=6, num_items=20, num_train=60, rating_mean=3.0, rating_min=1.0,
                rating_max=5.0, implicit=False, name="tiny")
POINTS = [(1.0, 0.01, 1000), (0.8, 0.1, 500), (2.0, 0.05, 200), (0.6, 0.2, 50)]


def _event(sigma, q, steps):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)


@pytest.mark.parametrize("sigma,q,steps", POINTS)
def test_epsilon_matches_dp_accounting(sigma, q, steps):
    delta = 1e-5
    rdp = dp_accounting.rdp.RdpAccountant(orders=list(accounting.ORDERS))
    rdp.compose(_event(sigma, q, steps))
    assert accounting.epsilon_for(sigma, q, steps, delta) == pytest.approx(
        rdp.get_epsilon(delta), rel=1e-9)
    default = dp_accounting.rdp.RdpAccountant()  # its own order grid: within a few percent
    default.compose(_event(sigma, q, steps))
    assert accounting.epsilon_for(sigma, q, steps, delta) == pytest.approx(
        default.get_epsilon(delta), rel=0.05)


def test_pld_epsilon_matches_dp_accounting():
    sigma, q, steps = POINTS[1]
    pld = dp_accounting.pld.PLDAccountant()
    pld.compose(_event(sigma, q, steps))
    ours = accounting.epsilon_for(sigma, q, steps, 1e-5, accountant="pld")
    assert ours == pytest.approx(pld.get_epsilon(1e-5), rel=1e-9)
    assert ours <= accounting.epsilon_for(sigma, q, steps, 1e-5)  # PLD is the tighter one


@pytest.mark.parametrize("epsilon,q,steps", [(1.0, 0.01, 1000), (3.0, 0.1, 200), (10.0, 0.1, 500)])
def test_calibration_inverts_the_accountant(epsilon, q, steps):
    sigma = accounting.calibrate_noise(epsilon, 1e-5, q, steps)
    assert accounting.epsilon_for(sigma, q, steps, 1e-5) <= epsilon
    assert accounting.epsilon_for(sigma, q, steps, 1e-5) == pytest.approx(epsilon, rel=0.01)
    assert accounting.epsilon_for(0.97 * sigma, q, steps, 1e-5) > epsilon


def test_unreachable_epsilon_is_one_line():
    with pytest.raises(ValueError, match=r"^privacy.epsilon=0.001: unreachable .* raise "
                                         r"privacy.epsilon") as err:
        accounting.calibrate_noise(0.001, 1e-5, 0.5, 100000)
    assert "\n" not in str(err.value)


def _mf(seed=0):
    return MF(ModelContext(INFO), dim=4, init_std=0.3, rngs=nnx.Rngs(seed))


def _data():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(6), [1, 3, 5, 8, 12, 31])  # user 5 has many interactions
    items = rng.integers(0, INFO.num_items, len(users))
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    data = device_data(users, items, num_users=6, num_items=INFO.num_items, ratings=ratings)
    return users, data


def _batch(users, data, L=32):
    """Every user as one unit, all of its rows: ``[U, L]`` arrays and mask."""
    rows = np.zeros((6, L), np.int32)
    mask = np.zeros((6, L), np.float32)
    for u in range(6):
        r = np.flatnonzero(users == u)[:L]
        rows[u, :len(r)], mask[u, :len(r)] = r, 1.0
    return {"users": data["users"][rows], "items": data["items"][rows],
            "ratings": data["ratings"][rows], "mask": jnp.asarray(mask)}


@pytest.mark.parametrize("tx", [optax.sgd(0.1), optax.adam(0.05)], ids=["sgd", "adam"])
def test_huge_clip_and_no_noise_is_the_ordinary_step(tx):
    users, data = _data()
    batch = _batch(users, data)
    loss = MSE(l2=0.05)
    graphdef, state = init_state(_mf(), tx)
    flat = jax.tree.map(lambda x: x.reshape(-1), batch)
    ordinary, value = jax.jit(make_train_step(graphdef, loss, tx))(
        state, flat, data, {}, jax.random.key(1))
    dp = make_dp_train_step(graphdef, loss, tx, clip_norm=1e9, noise_multiplier=0.0,
                            denominator=float(jnp.sum(batch["mask"])), chunk=3)
    private, dp_value = jax.jit(dp)(state, batch, data, {}, jax.random.key(1))
    for a, b in zip(jax.tree.leaves(ordinary.params), jax.tree.leaves(private.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(dp_value) == pytest.approx(float(value), rel=1e-5)


def _unit_grads(clip):
    users, data = _data()
    graphdef, state = init_state(_mf(), optax.sgd(0.1))
    fn = jax.jit(make_unit_grads(graphdef, MSE(l2=0.0), clip_norm=clip))
    grads, norms, _, counts, _ = fn(state.params, state.rest, _batch(users, data), data, {},
                                    jax.random.split(jax.random.key(0), 6), state.step)
    clipped = jnp.sqrt(sum(jnp.sum(jnp.square(g.reshape(6, -1)), axis=1)
                           for g in jax.tree.leaves(grads)))
    return np.asarray(clipped), np.asarray(norms), np.asarray(counts)


def test_small_clip_bounds_every_unit_gradient():
    clip = 0.05
    clipped, norms, _ = _unit_grads(clip)
    assert (norms > clip).all()  # the bound is active
    assert (clipped <= clip * (1 + 1e-5)).all()


def test_a_heavy_user_contributes_no_more_than_a_light_one():
    clipped, norms, counts = _unit_grads(0.05)
    assert counts[5] == 31 and counts[0] == 1
    assert norms[5] > norms[0]  # before clipping the heavy user weighs more
    assert clipped[5] <= clipped[0] * (1 + 1e-5)  # after, both are at the bound


def test_noise_has_the_stated_std():
    users, data = _data()
    tx = optax.sgd(1.0)
    graphdef, state = init_state(MF(ModelContext(DataInfo(
        num_users=6, num_items=20000, num_train=60, rating_mean=3.0, rating_min=1.0,
        rating_max=5.0, implicit=False, name="tiny")), dim=8, rngs=nnx.Rngs(0)), tx)
    batch = jax.tree.map(jnp.zeros_like, _batch(users, data))  # empty slots: no gradient
    clip, sigma, denominator = 0.5, 1.3, 4.0
    step = make_dp_train_step(graphdef, MSE(l2=0.0), tx, clip_norm=clip,
                              noise_multiplier=sigma, denominator=denominator, chunk=2)
    new, _ = jax.jit(step)(state, batch, data, {}, jax.random.key(7))
    delta = np.asarray(new.params["item_emb_NxD"].value - state.params["item_emb_NxD"].value)
    expected = sigma * clip / denominator  # sgd(1): the update is minus the noisy mean
    assert delta.size == 160000
    assert np.std(delta) == pytest.approx(expected, rel=0.01)
    assert abs(np.mean(delta)) < 4 * expected / math.sqrt(delta.size)


def test_unreleased_user_tables_carry_no_noise():
    users, data = _data()
    tx = optax.sgd(1.0)
    graphdef, state = init_state(_mf(), tx)
    batch = jax.tree.map(jnp.zeros_like, _batch(users, data))
    step = make_dp_train_step(graphdef, MSE(l2=0.0), tx, clip_norm=1.0, noise_multiplier=1.0,
                              denominator=1.0, chunk=6,
                              private_names=("user_bias_U", "user_emb_UxD"))
    new, _ = jax.jit(step)(state, batch, data, {}, jax.random.key(0))
    for name in ("user_emb_UxD", "user_bias_U"):
        np.testing.assert_array_equal(new.params[name].value, state.params[name].value)
    assert not np.allclose(new.params["item_emb_NxD"].value, state.params["item_emb_NxD"].value)


def _train():
    from jaxrec.data.interactions import Interactions

    users, _ = _data()
    n = len(users)
    return Interactions(users=users.astype(np.int32), items=np.zeros(n, np.int32),
                        ratings=np.ones(n, np.float32), timestamps=np.zeros(n, np.int64),
                        user_ids=np.arange(6), item_ids=np.arange(INFO.num_items))


def test_plan_samples_users_by_poisson_and_caps_their_rows():
    train = _train()
    cfg = PrivacyConfig(method="dp_sgd", epsilon=10.0, sampling_rate=0.5, max_interactions=4,
                        chunk_units=2)
    plan = build_plan(cfg, train, epochs=3, loss=MSE(), model=_mf())
    assert plan.steps_per_epoch == 2 and plan.steps == 6 and plan.delta == pytest.approx(1 / 6)
    assert plan.epsilon <= 10.0 and plan.noise_multiplier > 0 and plan.slots % 2 == 0
    rng = np.random.default_rng(0)
    sampled = []
    for _ in range(400):
        rows, mask = plan.order(rng)
        assert rows.shape == (2, plan.slots, 4)
        for s in range(2):
            for j in range(plan.slots):
                real = rows[s, j][mask[s, j] > 0]
                if len(real):
                    assert len(set(train.users[real])) == 1  # one unit per slot
                    assert len(real) == min(4, np.sum(train.users == train.users[real[0]]))
            sampled.append(int(np.sum(mask[s].max(axis=1))))
    assert np.mean(sampled) == pytest.approx(3.0, rel=0.05)  # 6 users at rate 0.5
    record = plan.record(epochs_run=3)
    assert {"epsilon", "delta", "unit", "noise_multiplier", "clip_norm", "sampling_rate",
            "steps"} <= set(record)


def test_plan_errors_name_the_field():
    train = _train()
    with pytest.raises(ValueError, match=r"^privacy.noise_multiplier=0.1: spends epsilon .* "
                                         r"above privacy.epsilon=1"):
        build_plan(PrivacyConfig(method="dp_sgd", epsilon=1.0, noise_multiplier=0.1), train,
                   epochs=10, loss=MSE(), model=_mf())
    with pytest.raises(ValueError, match=r"^privacy.unit: expected one of user, example"):
        build_plan(PrivacyConfig(method="dp_sgd", unit="item"), train, epochs=1, loss=MSE(),
                   model=_mf())
    assert build_plan(PrivacyConfig(), train, epochs=1, loss=MSE(), model=_mf()) is None
    plan = build_plan(PrivacyConfig(method="dp_sgd", release_user_embeddings=False), train,
                      epochs=1, loss=MSE(), model=_mf())
    assert plan.private_names == ("user_bias_U", "user_emb_UxD")


def test_example_unit_plan_uses_one_row_per_slot():
    plan = build_plan(PrivacyConfig(method="dp_sgd", unit="example", sampling_rate=0.2,
                                    epsilon=math.inf), _train(), epochs=1, loss=MSE(),
                      model=_mf())
    assert plan.noise_multiplier == 0.0 and plan.num_units == 60 and plan.per_unit == 1
    rows, mask = plan.order(np.random.default_rng(0))
    assert rows.shape[2] == 1
    for s in range(plan.steps_per_epoch):  # a step holds distinct interactions
        assert len(set(rows[s][mask[s] > 0].tolist())) == int(mask[s].sum())


@pytest.mark.parametrize("name", ["mf", pytest.param("gmf", marks=pytest.mark.slow),
                                  pytest.param("two_tower", marks=pytest.mark.slow)])
def test_dp_sgd_trains_models_through_the_epoch_program(name):
    """The loop's epoch program runs the DP step on the plan's [steps, units, rows] batches;
    with a loose budget the loss goes down."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from jaxrec.data.interactions import Interactions
    from jaxrec.losses import BPR
    from jaxrec.paths import CONFIG_DIR
    from jaxrec.training.step import epoch_program

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(6), 20).astype(np.int32)
    items = ((users * 3 + rng.integers(0, 3, len(users))) % INFO.num_items).astype(np.int32)
    train = Interactions(users=users, items=items, ratings=np.ones(len(users), np.float32),
                         timestamps=np.zeros(len(users), np.int64), user_ids=np.arange(6),
                         item_ids=np.arange(INFO.num_items))
    data = device_data(users, items, num_users=6, num_items=INFO.num_items)
    node = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    if name == "two_tower":  # dot products: cosine logits in [-1, 1] move BPR slowly
        node.normalize = False
    model = instantiate(node)(ModelContext(INFO), rngs=nnx.Rngs(0))
    loss = BPR(num_negatives=2, l2=1e-4)
    plan = build_plan(PrivacyConfig(method="dp_sgd", epsilon=50.0, sampling_rate=0.5,
                                    max_interactions=8, chunk_units=4, clip_norm=5.0),
                      train, epochs=30, loss=loss, model=model)
    tx = optax.adam(0.05)
    graphdef, state = init_state(model, tx)
    from jaxrec.training.chunks import train_step

    program = type("P", (), {"graphdef": graphdef, "loss": loss, "tx": tx, "privacy": plan})
    epoch = jax.jit(epoch_program(train_step(program)))
    losses = []
    for e in range(30):
        rows, mask = plan.order(rng)
        state, value = epoch(state, data, {}, rows, mask, jax.random.key(e))
        losses.append(float(value))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:3]), losses


def test_dp_sgd_yaml_states_the_schema_defaults():
    """One home per default: configs/privacy/dp_sgd.yaml lists the schema's values (it only
    switches the method on), so the two cannot drift apart."""
    import dataclasses

    from omegaconf import OmegaConf

    from jaxrec.paths import CONFIG_DIR

    node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "privacy" / "dp_sgd.yaml"))
    defaults = {f.name: f.default for f in dataclasses.fields(PrivacyConfig)}
    assert node == {**defaults, "method": "dp_sgd"}


def test_stacked_members_train_privately():
    """A vectorised sweep's stacked chunk (jax.vmap over members) runs the DP step."""
    from types import SimpleNamespace

    from jaxrec.training.chunks import compile_programs, make_chunks
    from jaxrec.training.loop import Member, Tracker

    users, data = _data()
    loss, tx = MSE(l2=0.01), optax.adam(0.05)
    plan = build_plan(PrivacyConfig(method="dp_sgd", sampling_rate=0.5, chunk_units=2),
                      _train(), epochs=3, loss=loss, model=_mf())
    graphdef, s0 = init_state(_mf(0), tx)
    members = [Member(s0, seed=0, hparams={"l2": 0.01}),
               Member(init_state(_mf(1), tx)[1], seed=1, hparams={"l2": 0.02})]
    trackers = [Tracker(m.seed, higher_is_better=False, patience=0) for m in members]
    for t in trackers:
        t.perm, t.mask = plan.order(t.rng)
    program = SimpleNamespace(graphdef=graphdef, loss=loss, tx=tx, privacy=plan, data=data)
    [chunk] = make_chunks(members, lanes=2)
    compile_programs(program, [chunk], trackers, shared_order=False)
    losses = np.asarray(chunk.step(program, trackers, 1, False))
    assert losses.shape == (2, 2) and np.isfinite(losses).all()
