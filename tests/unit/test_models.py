"""Every model in configs/model/: shapes, score_all vs pairwise scores, training lowers the loss."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hydra.utils import instantiate
from omegaconf import OmegaConf

from jaxrec.losses import BPR, MSE
from jaxrec.models.base import ClosedForm, ModelContext, NextItemLogits, UserLogits
from jaxrec.paths import CONFIG_DIR
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import TINY_MODELS, device_data

MODEL_CONFIGS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))

def _is_gradient_model(name):
    return not isinstance(build(name), ClosedForm)
INFO = DataInfo(num_users=12, num_items=30, num_train=200, rating_mean=3.0, rating_min=1.0,
                rating_max=5.0, implicit=False, name="tiny")


def build(name, **overrides):
    cfg = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    cfg = OmegaConf.merge(cfg, TINY_MODELS.get(name, {}), overrides)
    return instantiate(cfg)(ModelContext(INFO), rngs=nnx.Rngs(0))


def test_model_configs_found():
    assert {"mf", "seed_concat"} <= set(MODEL_CONFIGS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in (
    "sasrec", "multvae", "multdae") else n for n in MODEL_CONFIGS])  # whole-user models: fast
def test_score_all_matches_pairwise_scores(name):  # copies in tests/unit/test_multvae_sasrec.py
    model = build(name)
    users = jnp.array([0, 3, 11], jnp.int32)
    all_UxN = model.score_all(users)
    assert all_UxN.shape == (3, INFO.num_items)
    items = jnp.broadcast_to(jnp.arange(INFO.num_items), (3, INFO.num_items))
    pair_UxN = model(jnp.broadcast_to(users[:, None], items.shape), items)
    np.testing.assert_allclose(all_UxN, pair_UxN, rtol=1e-5, atol=1e-5)
    # [B] and [B, M] inputs
    assert model(users, users).shape == (3,)
    assert model(users[:, None], items[:, :4]).shape == (3, 4)


def test_seed_concat_mlp_variant_shapes():
    model = build("seed_concat", hidden=[16, 8])
    assert model.score_all(jnp.arange(2)).shape == (2, INFO.num_items)


def _planted_data(rng):
    # planted: popular items are rated higher (learnable by additive models too),
    # plus a rank-2 user-item interaction
    item_bias = rng.normal(size=INFO.num_items)
    popularity = np.exp(1.5 * item_bias) / np.exp(1.5 * item_bias).sum()
    u = rng.integers(0, INFO.num_users, 200).astype(np.int32)
    i = rng.choice(INFO.num_items, 200, p=popularity).astype(np.int32)
    user_f, item_f = rng.normal(size=(INFO.num_users, 2)), rng.normal(size=(INFO.num_items, 2))
    r = np.clip(3 + item_bias[i] + (user_f[u] * item_f[i]).sum(1), 1, 5).astype(np.float32)
    order = np.lexsort((i, u))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=INFO.num_users))])
    return {"users": u, "items": i, "ratings": r, "indptr": indptr.astype(np.int32),
            "indices": i[order]}


def _device(d):
    return device_data(d["users"], d["items"], ratings=d["ratings"], num_users=INFO.num_users,
                       num_items=INFO.num_items)


@pytest.mark.parametrize("name", MODEL_CONFIGS)
@pytest.mark.parametrize("loss", [MSE(l2=1e-4), pytest.param(BPR(num_negatives=2, l2=1e-4),
                                                     marks=pytest.mark.slow)])  # BPR: slow tier
def test_training_lowers_the_loss(name, loss):
    if not _is_gradient_model(name):
        pytest.skip("fitted in closed form (solve_epoch)")
    if isinstance(build(name), (UserLogits, NextItemLogits)):
        pytest.skip("trains on whole users (loss=multinomial / sequence_bce): "
                    "tests/unit/test_multvae_sasrec.py")
    rng = np.random.default_rng(0)
    data = _device(_planted_data(rng))
    model = build(name)
    tx = optax.adam(0.05)
    graphdef, state = init_state(model, tx)
    step = make_train_step(graphdef, loss, tx)
    epoch = make_epoch_fn(step)
    losses = []
    for e in range(15):
        perm, mask = epoch_order(rng, 200, 64)
        state, value = epoch(state, data, {}, perm, mask, jax.random.key(e))
        losses.append(float(value))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses


def test_popularity_solves_to_item_counts():
    rng = np.random.default_rng(0)
    data = {k: jnp.asarray(v) for k, v in _planted_data(rng).items()}
    model = build("popularity")
    model.solve_epoch(data, jax.random.key(0))
    expected = np.bincount(np.asarray(data["items"]), minlength=INFO.num_items)
    np.testing.assert_array_equal(model.score_all(jnp.arange(2))[1], expected)
