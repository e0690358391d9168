"""The pure train step and the epoch program: one ``lax.scan`` over device-resident batches."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxrec.losses.regularizers import l2_rows


class TrainState(NamedTuple):
    """Everything that changes during training, as one pytree (donated to each epoch)."""

    params: Any  # nnx.State of the nnx.Param variables
    rest: Any  # nnx.State of every other variable (rng counters, statistics)
    opt_state: optax.OptState
    step: jax.Array


def init_state(model: nnx.Module, tx: optax.GradientTransformation) -> tuple[Any, TrainState]:
    """Split a model once into its static graph definition and the initial train state."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    # one program for the optimiser's state, not one eager op per array
    return graphdef, TrainState(params, rest, jax.jit(tx.init)(params),
                                jax.device_put(np.zeros((), np.int32)))


def make_train_step(graphdef, loss, tx: optax.GradientTransformation):
    """Build ``train_step(state, batch, data, hparams, key) -> (state, loss_value)``.

    The loss owns its batch (`jaxrec.losses.base`): the step calls
    ``loss.objective(model, batch, data, key, step)`` and adds the L2 penalty on
    the rows it touched, never branching on what the loss samples.

    ``hparams`` are the per-member hyperparameters that reach the step as data
    (traced, so stacked trial members can differ without recompiling); the
    learning rate and weight decay live in the optimiser state instead
    (``optax.inject_hyperparams``). Keys:

    ``l2``  the L2 weight, replacing the static ``loss.l2`` when present.
    """

    grad_fn = jax.grad(make_objective(graphdef, loss), has_aux=True)

    def train_step(state: TrainState, batch, data, hparams, key):
        grads, (value, rest, touched) = grad_fn(state.params, state.rest, batch, data, hparams,
                                                key, state.step)
        if hasattr(tx, "apply"):  # row-sparse: only the rows the batch used (training/sparse.py)
            params, opt_state = tx.apply(grads, state.opt_state, state.params,
                                         {"users": batch["users"], "items": touched})
        else:
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        return TrainState(params, rest, opt_state, state.step + 1), value

    return train_step


def make_objective(graphdef, loss):
    """``objective(params, rest, batch, data, hparams, key, step) -> (total, (value, rest,
    touched))``:
    the loss's batch objective plus the L2 penalty on the rows it touched (see
    :func:`make_train_step`; the DP step, `jaxrec.training.dp`, differentiates it per unit)."""

    def objective(params, rest, batch, data, hparams, key, step):
        model = nnx.merge(graphdef, params, rest)
        value, touched = loss.objective(model, batch, data, key, step)
        total = value
        if "l2" in hparams or loss.l2:
            l2 = hparams["l2"] if "l2" in hparams else loss.l2
            total = total + l2 * l2_rows(model.l2_rows(batch["users"], touched),
                                         mask_B=batch["mask"])
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        return total, (value, new_rest, touched)

    return objective


def make_solver_epoch_fn(graphdef, *, with_first: bool = False):
    """Compile one closed-form "epoch": the model's ``solve_epoch(data, key)``.

    Same signature as :func:`make_epoch_fn` (the batch order is unused); the
    returned loss is whatever objective ``solve_epoch`` reports.
    """

    def epoch(state, data, hparams, perm_NbxB, mask_NbxB, key):
        del hparams, perm_NbxB, mask_NbxB
        model = nnx.merge(graphdef, state.params, state.rest)
        value = model.solve_epoch(data, key)
        _, params, rest = nnx.split(model, nnx.Param, ...)
        value = jnp.stack([value, value]) if with_first else value
        return TrainState(params, rest, state.opt_state, state.step + 1), value

    return jax.jit(epoch, donate_argnums=0)


def make_epoch_fn(train_step):
    """Compile one epoch: ``epoch(state, data, perm_NbxB, mask_NbxB, key) -> (state, mean_loss)``.

    ``data`` holds the device-resident training arrays (``users``, ``items``,
    ``ratings`` ``[E]`` plus the CSR); ``perm_NbxB`` is the host-shuffled row order
    padded to whole batches (or the rows it orders, ``{users, items, ratings}`` of
    ``[Nb, B]``: `jaxrec.training.batch_rows`), ``mask_NbxB`` marks the padding. The state
    is donated.
    """
    return jax.jit(epoch_program(train_step), donate_argnums=0)


def epoch_program(train_step, *, with_first: bool = False):
    """The un-jitted epoch of :func:`make_epoch_fn`, for callers that transform it first
    (``jax.vmap`` over stacked states in a vectorised sweep). ``with_first``: the loss
    is ``[mean over the epoch, the first step's]`` (the training loop's divergence check
    compares later epochs with the untrained model's first step)."""

    def epoch(state, data, hparams, perm_NbxB, mask_NbxB, key):
        keys = jax.random.split(key, mask_NbxB.shape[0])

        def body(state, xs):
            rows_B, mask_B, k = xs
            if isinstance(rows_B, dict):  # the rows themselves (jaxrec.training.batch_rows)
                batch = {**rows_B, "mask": mask_B}
            else:
                batch = {name: data[name][rows_B] for name in data.batch_fields}
                batch["mask"] = mask_B
            state, value = train_step(state, batch, data, hparams, k)
            return state, value * jnp.sum(mask_B)

        state, weighted = jax.lax.scan(body, state, (perm_NbxB, mask_NbxB, keys))
        mean = jnp.sum(weighted) / jnp.sum(mask_NbxB)
        if not with_first:
            return state, mean
        return state, jnp.stack([mean, weighted[0] / jnp.maximum(jnp.sum(mask_NbxB[0]), 1.0)])

    return epoch


def epoch_order(rng: np.random.Generator, num_rows: int, batch_size: int,
                shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Host-side shuffle padded to whole batches: ``(perm_NbxB int32, mask_NbxB float32)``."""
    num_batches = -(-num_rows // batch_size)
    perm = rng.permutation(num_rows) if shuffle else np.arange(num_rows)
    padded = np.zeros(num_batches * batch_size, dtype=np.int32)
    padded[:num_rows] = perm
    mask = np.zeros(num_batches * batch_size, dtype=np.float32)
    mask[:num_rows] = 1.0
    return padded.reshape(num_batches, batch_size), mask.reshape(num_batches, batch_size)
