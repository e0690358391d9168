"""Optax optimisers from config, with learning rate and weight decay as injected hyperparameters.

``optax.inject_hyperparams`` keeps ``learning_rate`` and ``weight_decay`` in the
optimiser state as arrays, so they are data rather than compile-time
constants (a sweep can vectorise over them without recompiling).
"""

from __future__ import annotations

import dataclasses

import optax

from jaxrec.config import OptimConfig

_BASE = {
    "adam": lambda lr, momentum: optax.adam(lr),
    "adagrad": lambda lr, momentum: optax.adagrad(lr),
    "sgd": lambda lr, momentum: optax.sgd(lr, momentum=momentum),
}
OPTIMIZERS = (*_BASE, "adamw")
SCHEDULES = ("constant", "cosine", "exponential", "warmup_cosine")
SPARSE = ("auto", "true", "false")


def sparse_setting(cfg: OptimConfig) -> str:
    """``optim.sparse`` as one of :data:`SPARSE` (YAML and the CLI give true/false as bools)."""
    return str(cfg.sparse).lower()


def _factor_schedule(cfg: OptimConfig, steps_per_epoch: int, total_epochs: int):
    """Multiplier on the base learning rate as a function of the step count."""
    total = max(steps_per_epoch * total_epochs, 1)
    warmup = steps_per_epoch * cfg.warmup_epochs
    if cfg.schedule == "constant":
        return optax.constant_schedule(1.0) if warmup == 0 else optax.linear_schedule(
            0.0, 1.0, warmup)
    if cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(1.0, total)
    if cfg.schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, max(warmup, 1), total)
    if cfg.schedule == "exponential":
        return optax.exponential_decay(1.0, steps_per_epoch * cfg.decay_epochs, cfg.decay_rate,
                                       staircase=True)
    raise ValueError(f"optim.schedule: unknown value {cfg.schedule!r}; choose from {SCHEDULES}")


def sparse_tables(cfg: OptimConfig, train, model, loss, privacy) -> dict[int, str] | None:
    """The tables of the row-sparse optimiser (`jaxrec.training.sparse.table_kinds` of the
    training data's users and items) where ``optim.sparse`` turns it on, else None (dense);
    ``privacy``: the run's privacy plan or None. One-line errors for an impossible ``true``."""
    from jaxrec.training.sparse import resolve_sparse, table_kinds

    if not resolve_sparse(sparse_setting(cfg), model=model, loss=loss,
                          private=privacy is not None):
        return None
    return table_kinds(train.num_users, train.num_items)


def validate_optim(cfg: OptimConfig) -> None:
    """Raise a one-line error for invalid optimiser settings (before compiling)."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"optim.name: unknown optimiser {cfg.name!r}; choose from {OPTIMIZERS}")
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule: unknown value {cfg.schedule!r}; choose from {SCHEDULES}")
    if not cfg.lr > 0:
        raise ValueError(f"optim.lr: must be > 0, got {cfg.lr}")
    if sparse_setting(cfg) not in SPARSE:
        raise ValueError(f"optim.sparse: unknown value {cfg.sparse!r}; choose from {SPARSE}")
    if cfg.weight_decay < 0:
        raise ValueError(f"optim.weight_decay: must be >= 0, got {cfg.weight_decay}")


def make_optimizer(cfg: OptimConfig, *, steps_per_epoch: int, total_epochs: int,
                   sparse_rows: dict[int, str] | None = None):
    """Build the optimiser named by ``cfg.name``.

    The returned transformation's state holds ``hyperparams['learning_rate']``
    (the base rate, which the schedule multiplies) and ``hyperparams['weight_decay']``.
    With ``sparse_rows`` (``{table rows: users | items}``, see
    `jaxrec.training.sparse.table_kinds`) it is a
    `jaxrec.training.sparse.RowSparseOptimizer`: the same rule, lazily on those tables.
    """
    validate_optim(cfg)
    factor = _factor_schedule(cfg, steps_per_epoch, total_epochs)
    if sparse_rows is not None:
        from jaxrec.training.sparse import AUTO_MIN_RATIO, RowSparseOptimizer

        dense = _inject(dataclasses.replace(cfg, grad_clip=None), factor)
        ratio = AUTO_MIN_RATIO if sparse_setting(cfg) == "auto" else 0.0
        return RowSparseOptimizer(cfg.name, dense, factor, dict(sparse_rows),
                                  momentum=cfg.momentum, grad_clip=cfg.grad_clip,
                                  min_ratio=ratio)
    return _inject(cfg, factor)


def _inject(cfg: OptimConfig, factor) -> optax.GradientTransformation:
    def build(learning_rate, weight_decay):
        parts = [] if cfg.grad_clip is None else [optax.clip_by_global_norm(cfg.grad_clip)]
        if cfg.name == "adamw":  # decay decoupled from the adaptive scaling (Loshchilov & Hutter)
            parts += [optax.scale_by_adam(), optax.add_decayed_weights(weight_decay),
                      optax.scale(-1.0)]
        else:  # decay added to the gradient (classic L2)
            parts += [optax.add_decayed_weights(weight_decay), _BASE[cfg.name](1.0, cfg.momentum)]
        parts += [optax.scale_by_schedule(factor), optax.scale(learning_rate)]
        return optax.chain(*parts)

    return optax.inject_hyperparams(build)(learning_rate=cfg.lr, weight_decay=cfg.weight_decay)
