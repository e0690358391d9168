"""The DP-SGD train step: per-unit clipped gradients plus Gaussian noise, then any optax update.

A batch is ``[U, L]``: U unit slots (a Poisson sample of users or interactions,
`jaxrec.privacy.plan.PrivacyPlan.order`), each with up to L of its interactions
(``mask`` 0 for padding and empty slots). For each unit the step takes the gradient of
the *sum* of the ordinary objective over the unit's interactions
(`jaxrec.training.step.make_objective`, L2 penalty included), clips it to ``clip_norm``
(global L2 norm over the released parameters), sums the clipped gradients, adds
``N(0, (noise_multiplier * clip_norm)^2)`` once per step to every released
coordinate, divides by the expected number of units per step, and hands the result to
the optimiser -- so any optax optimiser works, as in ``optax.contrib.dpsgd``, whose
clip-and-noise this mirrors for units of several interactions.

Parameters named in ``private_names`` (per-user tables when
``privacy.release_user_embeddings=false``) are neither clipped nor noised: their
gradients are summed as they are (docs/privacy.md: joint differential privacy).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxrec.training.step import TrainState, make_objective


def is_private(path, private_names: tuple[str, ...]) -> bool:
    """Whether a parameter leaf (its tree path) is one of the unreleased per-user tables."""
    first = path[0] if path else None
    name = getattr(first, "key", getattr(first, "name", None))
    return str(name) in private_names


def private_mask(params, private_names: tuple[str, ...]):
    """A pytree of bools like ``params``: True for unreleased (un-noised) leaves."""
    return jax.tree_util.tree_map_with_path(lambda p, _: is_private(p, private_names), params)


def make_unit_grads(graphdef, loss, *, clip_norm: float, private_names: tuple[str, ...] = ()):
    """``unit_grads(params, rest, batch_UxL, data, hparams, keys_U, step)`` ->
    ``(grads_U, norms_U, sums_U, counts_U, rest_U)``: each unit's clipped gradient of its
    summed objective (leading axis U), its norm before clipping (over the released
    parameters), its summed loss and its number of interactions."""
    objective = make_objective(graphdef, loss)

    def unit_objective(params, rest, batch_L, data, hparams, key, step):
        total, (value, new_rest, _) = objective(params, rest, batch_L, data, hparams, key, step)
        count = jnp.sum(batch_L["mask"])
        return count * total, (value * count, count, new_rest)

    grad_fn = jax.grad(unit_objective, has_aux=True)

    def one(params, rest, batch_L, data, hparams, key, step):
        grads, (value, count, new_rest) = grad_fn(params, rest, batch_L, data, hparams, key, step)
        private = private_mask(grads, private_names)
        released = [g for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(private),
                                      strict=True) if not p]
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in released))
        factor = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-12))
        grads = jax.tree.map(lambda g, p: g if p else g * factor, grads, private)
        return grads, norm, value, count, new_rest

    return jax.vmap(one, in_axes=(None, None, 0, None, None, 0, None))


def make_dp_train_step(graphdef, loss, tx: optax.GradientTransformation, *, clip_norm: float,
                       noise_multiplier: float, denominator: float, chunk: int,
                       private_names: tuple[str, ...] = ()):
    """Build the DP-SGD ``train_step(state, batch_UxL, data, hparams, key)``.

    Same signature and state as `jaxrec.training.step.make_train_step`; the batch arrays
    are ``[U, L]`` with U a multiple of ``chunk`` (units whose gradients are held in
    memory at once). ``denominator`` divides the noisy sum: the expected number of units
    per step (``sampling_rate * units``), a constant, so the average leaks nothing.
    """
    unit_grads = make_unit_grads(graphdef, loss, clip_norm=clip_norm,
                                 private_names=private_names)
    std = float(noise_multiplier) * float(clip_norm)

    def train_step(state: TrainState, batch, data, hparams, key):
        key_units, key_noise = jax.random.split(key)
        U = batch["mask"].shape[0]
        keys_U = jax.random.split(key_units, U)
        as_chunks = lambda x: x.reshape(U // chunk, chunk, *x.shape[1:])

        def body(acc, xs):
            batch_C, keys_C = xs
            grads_C, _, sums_C, counts_C, rest_C = unit_grads(
                state.params, state.rest, batch_C, data, hparams, keys_C, state.step)
            grads, total, count = acc
            grads = jax.tree.map(lambda a, g: a + jnp.sum(g, axis=0), grads, grads_C)
            return (grads, total + jnp.sum(sums_C), count + jnp.sum(counts_C)), rest_C

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        (summed, total, count), rests = jax.lax.scan(
            body, (zeros, jnp.zeros(()), jnp.zeros(())),
            (jax.tree.map(as_chunks, batch), as_chunks(keys_U)))
        grads = add_noise(summed, key_noise, std=std, private_names=private_names)
        grads = jax.tree.map(lambda g: g / denominator, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        rest = jax.tree.map(lambda x: x[0, 0], rests)
        return TrainState(params, rest, opt_state, state.step + 1), total / jnp.maximum(count, 1.0)

    return train_step


def add_noise(summed, key, *, std: float, private_names: tuple[str, ...] = ()):
    """``summed`` plus independent ``N(0, std^2)`` on every released coordinate."""
    if std == 0.0:
        return summed
    leaves, treedef = jax.tree.flatten(summed)
    private = jax.tree.leaves(private_mask(summed, private_names))
    keys = jax.random.split(key, len(leaves))
    noisy = [g if p else g + std * jax.random.normal(k, g.shape, g.dtype)
             for g, p, k in zip(leaves, private, keys, strict=True)]
    return jax.tree.unflatten(treedef, noisy)
