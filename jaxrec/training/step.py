"""The pure train step and the epoch program: one ``lax.scan`` over device-resident batches."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxrec.losses.regularizers import l2_rows
from jaxrec.training.sampling import sample_negatives


class TrainState(NamedTuple):
    """Everything that changes during training, as one pytree (donated to each epoch)."""

    params: Any  # nnx.State of the nnx.Param variables
    rest: Any  # nnx.State of every other variable (rng counters, statistics)
    opt_state: optax.OptState
    step: jax.Array


def init_state(model: nnx.Module, tx: optax.GradientTransformation) -> tuple[Any, TrainState]:
    """Split a model once into its static graph definition and the initial train state."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, TrainState(params, rest, tx.init(params), jnp.zeros((), jnp.int32))


def make_train_step(graphdef, loss, tx: optax.GradientTransformation, *, num_items: int,
                    search_steps: int = 1):
    """Build ``train_step(state, batch, data, key) -> (state, loss_value)``.

    ``batch`` holds ``users_B``, ``items_B``, ``ratings_B`` and ``mask_B`` (0 for
    padding); ``data`` holds the CSR of training items (``indptr``, ``indices``)
    the negative sampler rejects, ``neg_pool`` (the items it draws from, see
    `jaxrec.training.sampling.negative_pool`; absent: all items) and optionally
    ``loss_l2``, a scalar L2 weight
    used instead of ``loss.l2``). ``loss.kind`` chooses the batch kind:
    ``rating`` (pointwise on observed ratings) or ``negatives`` (each positive
    against ``loss.num_negatives`` uniformly sampled unseen items), or ``users``:
    the rows are training users (see :func:`users_kind_data`) and
    ``loss.users_batch(model, users_B, mask_B, data, key, step)`` calls the
    model's whole-user method (``losses/multinomial``, ``losses/sequence``).
    """

    def objective(params, rest, batch, data, key):
        model = nnx.merge(graphdef, params, rest)
        users, items, mask = batch["users"], batch["items"], batch["mask"]
        if loss.kind == "rating":
            value = loss(model(users, items), batch["ratings"], mask_B=mask)
            touched = items
        elif loss.kind == "negatives":
            neg_BxM = sample_negatives(key, users, loss.num_negatives, num_items,
                                       data["indptr"], data["indices"], steps=search_steps,
                                       pool_P=data.get("neg_pool"))
            value = loss(model(users, items), model(users[:, None], neg_BxM), mask_B=mask)
            touched = jnp.concatenate([items[:, None], neg_BxM], axis=1)
        elif loss.kind == "sampled":  # softmax over shared candidates (losses/sampled_softmax)
            from jaxrec.losses.sampled_softmax import sampled_softmax_batch

            value, touched = sampled_softmax_batch(model, loss, users, items, mask, data, key,
                                                   num_items)
        elif loss.kind == "users":  # whole users (Mult-VAE, SASRec): the batch rows are users
            value = loss.users_batch(model, users, mask, data, key, batch["step"])
            touched = items
        else:
            raise ValueError(f"loss.kind: unknown batch kind {loss.kind!r}")
        total = value
        # ``data["loss_l2"]`` (a traced scalar) replaces the static ``loss.l2`` when present,
        # so a vectorised sweep can give each stacked member its own L2 weight.
        l2 = data["loss_l2"] if "loss_l2" in data else loss.l2
        if "loss_l2" in data or loss.l2:
            total = total + l2 * l2_rows(model.l2_rows(users, touched), mask_B=mask)
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        return total, (value, new_rest)

    grad_fn = jax.grad(objective, has_aux=True)

    def train_step(state: TrainState, batch, data, key):
        if loss.kind == "users":  # schedules inside the loss (KL annealing) read the step
            batch = {**batch, "step": state.step}
        grads, (value, rest) = grad_fn(state.params, state.rest, batch, data, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, rest, opt_state, state.step + 1), value

    return train_step


def make_solver_epoch_fn(graphdef):
    """Compile one closed-form "epoch": the model's ``solve_epoch(data, key)``.

    Same signature as :func:`make_epoch_fn` (the batch order is unused); the
    returned loss is whatever objective ``solve_epoch`` reports.
    """

    def epoch(state, data, perm_NbxB, mask_NbxB, key):
        del perm_NbxB, mask_NbxB
        model = nnx.merge(graphdef, state.params, state.rest)
        value = model.solve_epoch(data, key)
        _, params, rest = nnx.split(model, nnx.Param, ...)
        return TrainState(params, rest, state.opt_state, state.step + 1), value

    return jax.jit(epoch, donate_argnums=0)


def make_epoch_fn(train_step):
    """Compile one epoch: ``epoch(state, data, perm_NbxB, mask_NbxB, key) -> (state, mean_loss)``.

    ``data`` holds the device-resident training arrays (``users``, ``items``,
    ``ratings`` ``[E]`` plus the CSR); ``perm_NbxB`` is the host-shuffled row order
    padded to whole batches, ``mask_NbxB`` marks the padding. The state is donated.
    """
    return jax.jit(epoch_program(train_step), donate_argnums=0)


def epoch_program(train_step):
    """The un-jitted epoch of :func:`make_epoch_fn`, for callers that transform it first
    (``jax.vmap`` over stacked states in a vectorised sweep)."""

    def epoch(state, data, perm_NbxB, mask_NbxB, key):
        keys = jax.random.split(key, perm_NbxB.shape[0])

        def body(state, xs):
            rows_B, mask_B, k = xs
            batch = {"users": data["users"][rows_B], "items": data["items"][rows_B],
                     "ratings": data["ratings"][rows_B], "mask": mask_B}
            state, value = train_step(state, batch, data, k)
            return state, value * jnp.sum(mask_B)

        state, weighted = jax.lax.scan(body, state, (perm_NbxB, mask_NbxB, keys))
        return state, jnp.sum(weighted) / jnp.sum(mask_NbxB)

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


def users_kind_data(data: dict[str, jax.Array], indptr: np.ndarray) -> dict[str, jax.Array]:
    """The device data of batch kind ``users``: its rows are the users with >= 1 training
    interaction (``users``; ``items`` and ``ratings`` are placeholders), so the epoch
    order of :func:`epoch_order` shuffles users. The CSR is kept for negative sampling."""
    active = np.flatnonzero(np.diff(np.asarray(indptr)) > 0).astype(np.int32)
    return {**data, "users": jnp.asarray(active), "items": jnp.zeros(len(active), jnp.int32),
            "ratings": jnp.ones(len(active), jnp.float32)}
