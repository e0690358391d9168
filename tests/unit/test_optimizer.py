import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrec.config import OptimConfig
from jaxrec.training.optimizer import make_optimizer


def _run(cfg, steps=3):
    params = {"w": jnp.array([1.0, -2.0])}
    tx = make_optimizer(cfg, steps_per_epoch=2, total_epochs=5)
    state = tx.init(params)
    for _ in range(steps):
        grads = {"w": jnp.array([0.5, 0.25])}
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("name,ref", [
    ("adam", lambda: optax.adam(0.01)),
    ("sgd", lambda: optax.sgd(0.01, momentum=0.9)),
    ("adagrad", lambda: optax.adagrad(0.01)),
    ("adamw", lambda: optax.adamw(0.01, weight_decay=0.1)),
])
def test_matches_optax_reference(name, ref):
    cfg = OptimConfig(name=name, lr=0.01, weight_decay=0.1 if name == "adamw" else 0.0,
                      momentum=0.9 if name == "sgd" else None)
    got, _ = _run(cfg)
    params = {"w": jnp.array([1.0, -2.0])}
    tx = ref()
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update({"w": jnp.array([0.5, 0.25])}, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(got["w"], params["w"], rtol=1e-6)


def test_learning_rate_is_injected_state():
    _, state = _run(OptimConfig(name="adam", lr=0.02, weight_decay=0.001))
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.02)
    assert float(state.hyperparams["weight_decay"]) == pytest.approx(0.001)


def test_sgd_weight_decay_is_l2_gradient():
    got, _ = _run(OptimConfig(name="sgd", lr=0.1, weight_decay=0.5), steps=1)
    np.testing.assert_allclose(got["w"], [1.0 - 0.1 * (0.5 + 0.5), -2.0 - 0.1 * (0.25 - 1.0)])


@pytest.mark.parametrize("field,value", [("name", "lion"), ("schedule", "zigzag"), ("lr", 0.0),
                                         ("weight_decay", -1.0)])
def test_invalid_values_fail_with_the_field_name(field, value):
    cfg = OptimConfig(**{field: value})
    with pytest.raises(ValueError, match=f"optim.{field}"):
        make_optimizer(cfg, steps_per_epoch=1, total_epochs=1)


def test_cosine_schedule_decays_to_zero():
    params = {"w": jnp.zeros(())}
    tx = make_optimizer(OptimConfig(name="sgd", lr=1.0, schedule="cosine"), steps_per_epoch=2,
                        total_epochs=2)
    state = tx.init(params)
    steps = []
    for _ in range(4):
        updates, state = tx.update({"w": jnp.ones(())}, state, params)
        steps.append(-float(updates["w"]))
    np.testing.assert_allclose(steps, [1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5,
                                       0.5 * (1 + np.cos(3 * np.pi / 4))], rtol=1e-5)
