"""The training loop: epochs, validation, early stopping, best checkpoint, test metrics."""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxrec.config import EvalConfig, TrainerConfig
from jaxrec.data.pipeline import Dataset
from jaxrec.metrics.evaluator import make_evaluators
from jaxrec.models.base import ClosedForm, NextItemLogits, UserLogits
from jaxrec.training.checkpoint import save_params
from jaxrec.training.sampling import negative_pool, num_search_steps
from jaxrec.training.step import (
    epoch_order,
    init_state,
    make_epoch_fn,
    make_solver_epoch_fn,
    make_train_step,
    users_kind_data,
)

MINIMIZED = ("rmse", "mae", "loss")


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclasses.dataclass
class FitResult:
    metrics: dict[str, float]  # best valid/* and final test/* metrics
    best_epoch: int
    epochs_run: int
    stop_reason: str
    monitor: str
    compile_seconds: float
    seconds_per_epoch: float
    eval_seconds: float
    params: Any  # best (params, rest) states
    graphdef: Any


def monitor_mode(key: str, mode: str = "auto") -> str:
    """``min`` for error metrics and losses, ``max`` for ranking metrics (unless given)."""
    if mode != "auto":
        if mode not in ("min", "max"):
            raise ValueError(f"trainer.mode: expected min, max or auto, got {mode!r}")
        return mode
    return "min" if key.split("/")[-1].split("@")[0] in MINIMIZED else "max"


def resolve_monitor(trainer: TrainerConfig, loss) -> str:
    """The monitored metric key: ``trainer.monitor``, or the loss's default when ``auto``."""
    return loss.default_monitor if trainer.monitor == "auto" else trainer.monitor


def expected_metric_keys(split: str, eval_cfg: EvalConfig, *, explicit: bool) -> list[str]:
    keys = [f"{split}/{m}@{k}" for m in eval_cfg.metrics for k in eval_cfg.ks]
    if explicit and eval_cfg.rating_metrics:
        keys += [f"{split}/rmse", f"{split}/mae"]
    return keys


@functools.lru_cache(maxsize=32)
def model_fns(graphdef):
    """Pure scoring functions over ``(params, rest)`` for the evaluators.

    Cached per graph definition: the evaluators compile once per function object.
    """

    def score_fn(state, users_U):
        return nnx.merge(graphdef, *state).score_all(users_U)

    def predict_fn(state, users_B, items_B):
        return nnx.merge(graphdef, *state)(users_B, items_B)

    return score_fn, predict_fn


@functools.lru_cache(maxsize=32)
def history_score_fn(graphdef):
    """``(state, history_UxN) -> scores_UxN`` through the model's ``score_history`` (fold-in)."""

    def score_history(state, history_UxN):
        return nnx.merge(graphdef, *state).score_history(history_UxN)

    return score_history


def scoring_fn(evaluator, graphdef):
    """The model function an evaluator consumes, by its ``inputs``: users, pairs or history."""
    if evaluator.inputs == "history":
        return history_score_fn(graphdef)
    score_fn, predict_fn = model_fns(graphdef)
    return score_fn if evaluator.inputs == "users" else predict_fn


def evaluate(evaluators, graphdef, state) -> dict[str, float]:
    out: dict[str, float] = {}
    for ev in evaluators:
        out.update(ev.run(scoring_fn(ev, graphdef), state))
    return out


def _device_data(train, pool_P: np.ndarray) -> dict[str, jax.Array]:
    """The training arrays on device; ``pool_P``: the negative pool (`negative_pool`)."""
    indptr, indices = train.csr()
    return {"users": jnp.asarray(train.users, jnp.int32),
            "items": jnp.asarray(train.items, jnp.int32),
            "ratings": jnp.asarray(train.ratings, jnp.float32),
            "indptr": jnp.asarray(indptr, jnp.int32), "indices": jnp.asarray(indices, jnp.int32),
            "neg_pool": jnp.asarray(pool_P)}


def check_negatives(train, pool: np.ndarray, negatives: str) -> None:
    """Every user must have an unseen item in the negative pool (host check, before compiling)."""
    counts = np.bincount(train.users, minlength=train.num_users)
    if counts.max() >= len(pool):
        user = int(np.argmax(counts))
        raise ValueError(f"data: user {train.user_ids[user]!r} has interacted with every item "
                         f"of the negative pool (trainer.negatives={negatives}, {len(pool)} items);"
                         " no negatives can be sampled")


def fit(*, model: nnx.Module, loss, tx, dataset: Dataset, trainer: TrainerConfig,
        eval_cfg: EvalConfig, writer, seed: int, run_dir: str | Path | None = None,
        evaluators: tuple[list, list] | None = None) -> FitResult:
    """Train ``model`` on ``dataset.train``, validate, early-stop, and test from the best state.

    Metrics are logged through ``writer`` with keys ``train/loss``, ``valid/<metric>@k``;
    the final ``test/*`` metrics come from the best validated state, whose
    parameters are saved under ``run_dir/checkpoints/best`` when
    ``trainer.save_checkpoint`` is set. ``evaluators`` = ``(valid, test)``
    replaces the full-ranking ones built from ``eval_cfg`` (see
    `jaxrec.metrics.protocols.build_evaluators`).
    """
    if trainer.epochs < 1 or trainer.batch_size < 1 or trainer.eval_every < 1:
        raise ValueError(f"trainer: epochs, batch_size and eval_every must be >= 1, got "
                         f"{trainer.epochs}, {trainer.batch_size}, {trainer.eval_every}")
    explicit = not dataset.info.implicit
    has_valid = dataset.valid is not None and len(dataset.valid) > 0
    monitor = resolve_monitor(trainer, loss)
    mode = monitor_mode(monitor, trainer.mode)
    if has_valid:
        available = expected_metric_keys("valid", eval_cfg, explicit=explicit)
        if evaluators is not None:  # extra evaluators (e.g. slices) name their own keys
            available += [k for ev in evaluators[0] for k in getattr(ev, "keys", ())
                          if k not in available]
        if monitor not in available:
            hint = ""
            if trainer.monitor == "auto" and not explicit and loss.kind == "rating":
                hint = (f" ({type(loss).__name__} monitors {monitor}, which implicit data lacks;"
                        " use loss=bce or loss=bpr, or set trainer.monitor)")
            raise ValueError(f"trainer.monitor: {monitor!r} is not computed{hint}; available: "
                             f"{', '.join(available)}")
    train = dataset.train
    pool = negative_pool(train.items, train.num_items, trainer.negatives)
    if loss.kind in ("negatives", "users") and getattr(loss, "num_negatives", 0):
        check_negatives(train, pool, trainer.negatives)  # the rejection samplers need one

    # evaluators check their inputs on the host: bad input fails before any compile
    if evaluators is not None:
        valid_evals, test_evals = evaluators
    else:
        valid_evals = make_evaluators("valid", dataset.valid, [train], eval_cfg,
                                      explicit=explicit) if has_valid else []
        exclude = [train] + ([dataset.valid] if has_valid else [])
        test_evals = make_evaluators("test", dataset.test, exclude, eval_cfg, explicit=explicit)

    solver = loss.kind == "solver"
    if solver != isinstance(model, ClosedForm):
        raise ValueError(f"loss: {type(model).__name__} " + (
            "is fitted in closed form; use loss=none" if not solver
            else "trains by gradient steps; choose a loss such as mse, bce or bpr"))
    users_kind = loss.kind == "users"  # whole-user losses need a model method, and vice versa
    if users_kind != isinstance(model, (UserLogits, NextItemLogits)) or (
            users_kind and not hasattr(model, loss.model_method)):
        raise ValueError(f"loss: {type(loss).__name__} does not train {type(model).__name__}" + (
            f" (it needs model.{loss.model_method})" if users_kind else
            "; it trains on whole users: use loss=multinomial (Mult-VAE/DAE) or "
            "loss=sequence_bce (SASRec)"))
    if solver:
        tx = optax.identity()  # no optimiser state next to closed-form parameters
    graphdef, state = init_state(model, tx)
    data = _device_data(train, pool)
    num_rows = len(train)
    if users_kind:  # an epoch shuffles the training users, not the interactions
        data = users_kind_data(data, train.csr()[0])
        num_rows = int(data["users"].shape[0])
    if solver:
        epoch_fn = make_solver_epoch_fn(graphdef)
    else:
        epoch_fn = make_epoch_fn(make_train_step(graphdef, loss, tx, num_items=train.num_items,
                                                 search_steps=num_search_steps(train.csr()[0])))
    rng = np.random.default_rng(seed)
    base_key = jax.random.key(seed)
    perm, mask = epoch_order(rng, num_rows, trainer.batch_size)
    t0 = time.perf_counter()
    epoch_fn = epoch_fn.lower(state, data, perm, mask, base_key).compile()
    compile_seconds = time.perf_counter() - t0

    sign = 1.0 if mode == "max" else -1.0
    best_score, best_epoch, best_state = -math.inf, 0, None  # score = sign * metric
    bad_evals, stop_reason = 0, "max_epochs"
    train_seconds, eval_times, epochs_run = 0.0, [], 0
    ckpt_dir = Path(run_dir) / "checkpoints" / "best" if run_dir is not None else None
    bar = _progress(trainer)
    pending: list[tuple[int, jax.Array]] = []

    for epoch in range(1, trainer.epochs + 1):
        t = time.perf_counter()
        if epoch > 1:
            perm, mask = epoch_order(rng, num_rows, trainer.batch_size)
        state, loss_value = epoch_fn(state, data, perm, mask, jax.random.fold_in(base_key, epoch))
        pending.append((epoch, loss_value))
        epochs_run = epoch
        bar.update(1)
        last = epoch == trainer.epochs
        if not (epoch % trainer.eval_every == 0 or last):
            _flush_some(pending, writer, bar, keep=1)  # lagged: the previous epoch is done
            train_seconds += time.perf_counter() - t
            continue
        jax.block_until_ready(state)
        train_seconds += time.perf_counter() - t
        _flush_some(pending, writer, bar, keep=1)
        ep, value = pending.pop()
        record = {"train/loss": _checked_loss(ep, value)}
        if not has_valid:
            writer.write(epoch, record)
            best_epoch = epoch
            continue
        t = time.perf_counter()
        metrics = evaluate(valid_evals, graphdef, (state.params, state.rest))
        eval_times.append(time.perf_counter() - t)
        writer.write(epoch, {**record, **metrics})
        value = metrics[monitor]
        bar.set_postfix({monitor: f"{value:.4f}"}, refresh=False)
        if sign * value > best_score:
            best_score, best_epoch, bad_evals = sign * value, epoch, 0
            best_state = jax.tree.map(jnp.copy, (state.params, state.rest))
            if ckpt_dir is not None and trainer.save_checkpoint:
                save_params(ckpt_dir, best_state[0])
        else:
            bad_evals += 1
            if trainer.patience and bad_evals >= trainer.patience:
                stop_reason = "patience"
                break
    bar.close()
    if not has_valid:  # nothing to select on: the final state is the result
        best_state = (state.params, state.rest)
        if ckpt_dir is not None and trainer.save_checkpoint:
            save_params(ckpt_dir, best_state[0])

    t = time.perf_counter()
    final = evaluate(test_evals, graphdef, best_state)
    test_seconds = time.perf_counter() - t
    if has_valid:
        final.update(evaluate(valid_evals, graphdef, best_state))
    eval_seconds = float(np.median(eval_times[1:] if len(eval_times) > 1 else eval_times)
                         ) if eval_times else test_seconds
    return FitResult(metrics=final, best_epoch=best_epoch, epochs_run=epochs_run,
                     stop_reason=stop_reason, monitor=monitor, compile_seconds=compile_seconds,
                     seconds_per_epoch=train_seconds / max(epochs_run, 1),
                     eval_seconds=eval_seconds, params=best_state, graphdef=graphdef)


def _checked_loss(epoch: int, value: jax.Array) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise TrainingDiverged(f"train/loss is {v} at epoch {epoch}; stopping")
    return v


def _flush_some(pending, writer, bar, *, keep: int) -> None:
    """Fetch and log the queued epoch losses, leaving the newest ``keep`` in flight."""
    while len(pending) > keep:
        ep, value = pending.pop(0)
        v = _checked_loss(ep, value)
        writer.write(ep, {"train/loss": v})
        bar.set_postfix(loss=f"{v:.4f}", refresh=False)


def _progress(trainer: TrainerConfig):
    from tqdm import tqdm

    return tqdm(total=trainer.epochs, desc="train", unit="epoch", leave=False,
                disable=not (trainer.progress and sys.stderr.isatty()))
