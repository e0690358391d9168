"""Private iALS (privacy.method=als): one user's contribution to the released statistics is
bounded by the stated sensitivity, the plan calibrates to epsilon, and an epoch trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.config import PrivacyConfig
from jaxrec.data.interactions import Interactions
from jaxrec.losses import MSE
from jaxrec.models.base import ModelContext
from jaxrec.models.ials import IALS
from jaxrec.privacy import accounting, build_plan
from jaxrec.training.dp_als import item_statistics, keep_at_most, sensitivity
from jaxrec.types import DataInfo

pytest.importorskip("dp_accounting")

INFO = DataInfo(num_users=8, num_items=15, num_train=40, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")


def _ials(**kw):
    return IALS(ModelContext(INFO), dim=4, init_std=0.5, rngs=nnx.Rngs(0), **kw)


def _train(users, items):
    n = len(users)
    return Interactions(users=np.asarray(users, np.int32), items=np.asarray(items, np.int32),
                        ratings=np.ones(n, np.float32), timestamps=np.zeros(n, np.int64),
                        user_ids=np.arange(INFO.num_users), item_ids=np.arange(INFO.num_items))


def test_keep_at_most_caps_every_user():
    users = jnp.asarray(np.repeat(np.arange(4), [1, 3, 6, 10]), jnp.int32)
    kept = np.asarray(keep_at_most(users, 3, jax.random.key(0), 4))
    np.testing.assert_array_equal(np.bincount(np.asarray(users), weights=kept), [1, 3, 3, 3])


@pytest.mark.parametrize("clip", [0.5, 2.0])
def test_one_user_moves_the_statistics_by_at_most_the_sensitivity(clip):
    rng = np.random.default_rng(0)
    k, model = 3, _ials(unobserved_weight=0.3)
    # users 0..6 have <= k interactions (none dropped); user 7 is heavy (20 > k)
    users = np.concatenate([np.repeat(np.arange(7), rng.integers(1, k + 1, 7)),
                            np.full(20, 7)])
    items = rng.integers(0, INFO.num_items, len(users))
    w = jnp.asarray(rng.normal(size=(INFO.num_users, 4)) * 3, jnp.float32)  # norms > clip

    def stats(u, i, w):
        return item_statistics(model, w, jnp.asarray(u, jnp.int32), jnp.asarray(i, jnp.int32),
                               jnp.ones(len(u)), jax.random.key(1), clip_norm=clip,
                               max_interactions=k)

    with_user = stats(users, items, w)
    keep = users != 7
    without = stats(users[keep], items[keep], w.at[7].set(0.0))  # absent: no factor
    diff = np.sqrt(sum(float(jnp.sum(jnp.square(with_user[n] - without[n])))
                       for n in with_user))
    bound = sensitivity(clip_norm=clip, max_interactions=k, max_weight=1.0,
                        unobserved_weight=0.3)
    assert 0 < diff <= bound * (1 + 1e-5)


def test_als_plan_calibrates_over_epochs_and_names_the_field():
    train = _train(np.repeat(np.arange(8), 5), np.arange(40) % 15)
    plan = build_plan(PrivacyConfig(method="als", epsilon=5.0, max_interactions=4), train,
                      epochs=10, loss=None, model=_ials())
    assert plan.method == "als" and plan.private_names == ("user_emb_UxD",)
    assert plan.epsilon <= 5.0 and plan.delta == pytest.approx(1 / 8)
    assert plan.noise_multiplier == pytest.approx(
        accounting.calibrate_noise(5.0, 1 / 8, 1.0, 10), rel=1e-6)
    assert plan.record(epochs_run=10)["sampling"] == "all users, every epoch"
    with pytest.raises(ValueError, match=r"^privacy.method=als: needs model=ials"):
        from jaxrec.models.mf import MF

        build_plan(PrivacyConfig(method="als"), train, epochs=1, loss=MSE(),
                   model=MF(ModelContext(INFO), dim=4, rngs=nnx.Rngs(0)))


def test_private_als_epoch_trains():
    from types import SimpleNamespace

    import optax

    from jaxrec.training.chunks import epoch_programs
    from jaxrec.training.step import init_state
    from tests.helpers import device_data

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(8), 5)
    items = (users * 2 + rng.integers(0, 2, 40)) % 15
    train = _train(users, items)
    model = _ials()
    plan = build_plan(PrivacyConfig(method="als", epsilon=float("inf"), max_interactions=4),
                      train, epochs=3, loss=None, model=model)
    graphdef, state = init_state(model, optax.identity())
    program = SimpleNamespace(graphdef=graphdef, loss=SimpleNamespace(rows="none"),
                              tx=None, privacy=plan)
    epoch, _ = epoch_programs(program, shared_order=True)
    data = device_data(users, items, num_users=8, num_items=15, rows="none")
    values = []
    for e in range(3):
        perm, mask = plan.order(rng)
        state, value = epoch(state, data, {}, perm, mask, jax.random.key(e))
        values.append(float(value[0]))
    assert np.isfinite(values).all() and values[-1] < values[0]
