"""A private run's plan: the checked settings, the calibrated noise, the sampling of units.

``build_plan`` turns the ``privacy`` config section into a :class:`PrivacyPlan` (or
None when ``privacy.method=none``), with every check done on the host before anything
compiles. The plan draws each epoch's batches (``order``: Poisson sampling of units,
the sampling the accountant is told about) and writes ``results.json["privacy"]``
(``record``). The DP step itself is `jaxrec.training.dp`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxrec.config import PrivacyConfig

METHODS = ("none", "dp_sgd", "als")
UNITS = ("user", "example")


@dataclasses.dataclass
class PrivacyPlan:
    """How a private run samples, clips, noises and accounts (see docs/privacy.md).

    Attributes:
      unit, epsilon_target, delta, clip_norm, noise_multiplier, sampling_rate, accountant:
        the settings (noise calibrated when not given).
      epsilon: what the accountant gives for the planned steps (<= the target).
      steps_per_epoch, epochs: an epoch is ``ceil(1 / sampling_rate)`` steps.
      num_units: users (unit=user) or training interactions (unit=example).
      slots: unit slots per step (the fixed batch shape; a multiple of ``chunk``).
      per_unit: interactions of a sampled unit used per step (L).
      chunk: units whose gradients are computed at once.
      private_names: parameters trained without noise and never released.
      truncation_bound: the probability that some step samples more units than ``slots``
        (the excess is dropped); ``(1 + e^epsilon)`` times it is taken out of ``delta``.
    """

    unit: str
    epsilon_target: float
    epsilon: float
    delta: float
    clip_norm: float
    noise_multiplier: float
    sampling_rate: float
    accountant: str
    steps_per_epoch: int
    epochs: int
    num_units: int
    slots: int
    per_unit: int
    chunk: int
    private_names: tuple[str, ...]
    truncation_bound: float
    unit_rows: np.ndarray = dataclasses.field(repr=False)  # training rows grouped by unit
    unit_indptr: np.ndarray = dataclasses.field(repr=False)  # [num_units + 1]
    truncated_steps: int = 0
    method: str = "dp_sgd"  # or als: private iALS (jaxrec.training.dp_als)
    sensitivity: float = 1.0  # als: one user's L2 contribution to an epoch's statistics
    shift: float = 0.0  # als: ridge added to the noisy item systems

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def denominator(self) -> float:
        """The expected number of units per step: the noisy sum is divided by it."""
        return self.sampling_rate * self.num_units

    def order(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of Poisson-sampled batches: ``(rows [S, slots, L] int32, mask float32)``.

        Each unit joins each step independently with probability ``sampling_rate``; a
        sampled unit brings ``min(n_u, per_unit)`` of its rows, drawn without replacement.
        """
        if self.method == "als":  # every user, every epoch: the solve reads all the data
            return np.zeros((1, 1), np.int32), np.ones((1, 1), np.float32)
        S, U, L = self.steps_per_epoch, self.slots, self.per_unit
        rows = np.zeros((S, U, L), np.int32)
        mask = np.zeros((S, U, L), np.float32)
        sizes = np.diff(self.unit_indptr)
        for s in range(S):
            chosen = np.flatnonzero(rng.random(self.num_units) < self.sampling_rate)
            if len(chosen) > U:  # probability <= truncation_bound over the whole run
                chosen = np.sort(rng.choice(chosen, U, replace=False))
                self.truncated_steps += 1
            if L == 1 and np.all(sizes[chosen] == 1):
                rows[s, :len(chosen), 0] = self.unit_rows[self.unit_indptr[chosen]]
                mask[s, :len(chosen), 0] = 1.0
                continue
            for j, u in enumerate(chosen):
                lo, n = self.unit_indptr[u], sizes[u]
                pick = np.arange(n) if n <= L else rng.choice(n, L, replace=False)
                rows[s, j, :len(pick)] = self.unit_rows[lo + pick]
                mask[s, j, :len(pick)] = 1.0
        return rows, mask

    def record(self, epochs_run: int | None = None) -> dict[str, Any]:
        """``results.json["privacy"]``: the guarantee and the settings that give it."""
        from jaxrec.privacy.accounting import epsilon_for

        out = {"method": self.method, "epsilon": self.epsilon, "delta": self.delta,
               "unit": self.unit, "noise_multiplier": self.noise_multiplier,
               "clip_norm": self.clip_norm, "sampling_rate": self.sampling_rate,
               "steps": self.steps, "epsilon_target": self.epsilon_target,
               "accountant": self.accountant,
               "sampling": "poisson" if self.method == "dp_sgd" else "all users, every epoch",
               "units": self.num_units,
               "units_per_step": self.slots, "max_interactions": self.per_unit,
               "steps_per_epoch": self.steps_per_epoch,
               "release_user_embeddings": not self.private_names,
               "unreleased_parameters": list(self.private_names),
               "truncation_bound": self.truncation_bound,
               "truncated_steps": self.truncated_steps}
        if epochs_run is not None:
            steps_run = epochs_run * self.steps_per_epoch
            out["steps_run"] = steps_run
            out["epsilon_steps_run"] = epsilon_for(
                self.noise_multiplier, self.sampling_rate, steps_run, self._accounted_delta(),
                accountant=self.accountant)
        return out

    def _accounted_delta(self) -> float:
        if not math.isfinite(self.epsilon_target):
            return self.delta
        return self.delta - (1.0 + math.exp(min(self.epsilon_target, 700.0))) * \
            self.truncation_bound


def user_tables(model, num_users: int) -> tuple[str, ...]:
    """The model's per-user parameter tables: top-level ``nnx.Param`` attributes named
    ``user_*`` with one row per user (a user's row depends on that user's data alone)."""
    from flax import nnx

    return tuple(sorted(name for name, value in vars(model).items()
                        if isinstance(value, nnx.Param) and name.startswith("user_")
                        and value.shape and value.shape[0] == num_users))


def build_plan(cfg: PrivacyConfig, train, *, epochs: int, loss, model) -> PrivacyPlan | None:
    """Check the ``privacy`` section and plan the run (None for ``privacy.method=none``).

    Raises:
      ValueError: one line naming the ``privacy.`` field, its value and what to change.
    """
    if cfg.method not in METHODS:
        raise ValueError(f"privacy.method: expected one of {', '.join(METHODS)}, "
                         f"got {cfg.method!r}")
    if cfg.method == "none":
        return None
    _check(cfg, loss)
    if cfg.method == "als":
        return _als_plan(cfg, train, epochs=epochs, model=model)
    from jaxrec.privacy import accounting

    units = train.users if cfg.unit == "user" else np.arange(len(train), dtype=np.int64)
    unit_rows = np.argsort(units, kind="stable").astype(np.int32)
    counts = np.bincount(units, minlength=train.num_users if cfg.unit == "user" else 0)
    num_units = len(counts)
    unit_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    q = cfg.sampling_rate
    steps_per_epoch = int(math.ceil(1.0 / q))
    steps = epochs * steps_per_epoch
    delta = 1.0 / num_units if cfg.delta is None else cfg.delta
    if not 0.0 < delta < 1.0:
        raise ValueError(f"privacy.delta={delta}: must be in (0, 1); null = 1 / units")
    finite = math.isfinite(cfg.epsilon)
    factor = 1.0 + math.exp(min(cfg.epsilon, 700.0)) if finite else 1.0
    slots, bound = accounting.capacity(num_units, q, steps, delta / (100.0 * factor))
    delta_acc = delta - factor * bound
    if cfg.noise_multiplier is not None:
        sigma = float(cfg.noise_multiplier)
        epsilon = accounting.epsilon_for(sigma, q, steps, delta_acc, accountant=cfg.accountant)
        if finite and epsilon > cfg.epsilon:
            raise ValueError(
                f"privacy.noise_multiplier={sigma:g}: spends epsilon {epsilon:.3g} over {steps} "
                f"steps, above privacy.epsilon={cfg.epsilon:g}; raise privacy.noise_multiplier, "
                "set it to null (calibrate), or lower trainer.epochs / privacy.sampling_rate")
    elif finite:
        sigma = accounting.calibrate_noise(cfg.epsilon, delta_acc, q, steps,
                                           accountant=cfg.accountant)
        epsilon = accounting.epsilon_for(sigma, q, steps, delta_acc, accountant=cfg.accountant)
    else:
        sigma, epsilon = 0.0, math.inf
    chunk = min(cfg.chunk_units, slots)
    slots = -(-slots // chunk) * chunk
    private = () if cfg.release_user_embeddings else user_tables(model, train.num_users)
    if not cfg.release_user_embeddings and not private:
        raise ValueError(f"privacy.release_user_embeddings=false: {type(model).__name__} has "
                         "no per-user parameter table (user_* with a row per user); set it true")
    return PrivacyPlan(unit=cfg.unit, epsilon_target=cfg.epsilon, epsilon=epsilon, delta=delta,
                       clip_norm=cfg.clip_norm, noise_multiplier=sigma, sampling_rate=q,
                       accountant=cfg.accountant, steps_per_epoch=steps_per_epoch,
                       epochs=epochs, num_units=num_units, slots=slots,
                       per_unit=cfg.max_interactions if cfg.unit == "user" else 1, chunk=chunk,
                       private_names=private, truncation_bound=bound, unit_rows=unit_rows,
                       unit_indptr=unit_indptr)


def _check(cfg: PrivacyConfig, loss) -> None:
    """One-line errors for settings no private run can use."""
    from jaxrec.privacy.accounting import ACCOUNTANTS

    if cfg.unit not in UNITS:
        raise ValueError(f"privacy.unit: expected one of {', '.join(UNITS)}, got {cfg.unit!r}")
    if cfg.accountant not in ACCOUNTANTS:
        raise ValueError(f"privacy.accountant: expected one of {', '.join(ACCOUNTANTS)}, "
                         f"got {cfg.accountant!r}")
    for name in ("epsilon", "clip_norm", "sampling_rate"):
        if not getattr(cfg, name) > 0:
            raise ValueError(f"privacy.{name}={getattr(cfg, name)}: must be > 0")
    if cfg.sampling_rate > 1:
        raise ValueError(f"privacy.sampling_rate={cfg.sampling_rate}: must be <= 1")
    if cfg.noise_multiplier is not None and not cfg.noise_multiplier >= 0:
        raise ValueError(f"privacy.noise_multiplier={cfg.noise_multiplier}: must be >= 0 "
                         "(null: calibrated to privacy.epsilon)")
    for name in ("max_interactions", "chunk_units"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"privacy.{name}={getattr(cfg, name)}: must be >= 1")
    if not cfg.release_user_embeddings and cfg.unit != "user":
        raise ValueError("privacy.release_user_embeddings=false: needs privacy.unit=user "
                         f"(got {cfg.unit})")
    if cfg.method == "als":
        return
    if loss.rows != "interactions":
        raise ValueError(f"privacy.method={cfg.method}: loss={loss.name} trains on "
                         f"{loss.rows} rows; DP-SGD needs a loss over interactions "
                         "(mse, bce, bpr, sampled_softmax with in_batch=false)")
    if getattr(loss, "in_batch", False):
        raise ValueError(f"privacy.method={cfg.method}: loss.in_batch=true mixes units' "
                         "interactions in one objective; set loss.in_batch=false and "
                         "loss.num_negatives > 0")


def _als_plan(cfg: PrivacyConfig, train, *, epochs: int, model) -> PrivacyPlan:
    """Private iALS: one Gaussian mechanism per epoch on the item-side statistics of
    clipped user factors (`jaxrec.training.dp_als`)."""
    from jaxrec.models.ials import IALS
    from jaxrec.privacy import accounting

    if not isinstance(model, IALS) or cfg.unit != "user":
        raise ValueError(f"privacy.method=als: needs model=ials loss=none privacy.unit=user "
                         f"(got {type(model).__name__}, unit {cfg.unit}); or privacy=dp_sgd")
    delta = 1.0 / train.num_users if cfg.delta is None else cfg.delta
    if not 0.0 < delta < 1.0:
        raise ValueError(f"privacy.delta={delta}: must be in (0, 1); null = 1 / units")
    weight = 1.0 + model.alpha * float(np.max(train.ratings)) if model.alpha else 1.0
    delta_sens = accounting.sensitivity(
        clip_norm=cfg.clip_norm, max_interactions=cfg.max_interactions, max_weight=weight,
        unobserved_weight=model.unobserved_weight)
    if cfg.noise_multiplier is not None:
        sigma = float(cfg.noise_multiplier)
        epsilon = accounting.epsilon_for(sigma, 1.0, epochs, delta, accountant=cfg.accountant)
        if math.isfinite(cfg.epsilon) and epsilon > cfg.epsilon:
            raise ValueError(
                f"privacy.noise_multiplier={sigma:g}: spends epsilon {epsilon:.3g} over {epochs} "
                f"epochs, above privacy.epsilon={cfg.epsilon:g}; raise privacy.noise_multiplier,"
                " set it to null (calibrate), or lower trainer.epochs")
    elif math.isfinite(cfg.epsilon):
        sigma = accounting.calibrate_noise(cfg.epsilon, delta, 1.0, epochs,
                                           accountant=cfg.accountant)
        epsilon = accounting.epsilon_for(sigma, 1.0, epochs, delta, accountant=cfg.accountant)
    else:
        sigma, epsilon = 0.0, math.inf
    dim = model.user_emb_UxD.shape[1]
    empty = np.zeros(1, np.int64)
    return PrivacyPlan(unit="user", epsilon_target=cfg.epsilon, epsilon=epsilon, delta=delta,
                       clip_norm=cfg.clip_norm, noise_multiplier=sigma, sampling_rate=1.0,
                       accountant=cfg.accountant, steps_per_epoch=1, epochs=epochs,
                       num_units=train.num_users, slots=train.num_users,
                       per_unit=cfg.max_interactions, chunk=1, private_names=("user_emb_UxD",),
                       truncation_bound=0.0, unit_rows=empty, unit_indptr=empty, method="als",
                       sensitivity=delta_sens, shift=4.0 * sigma * delta_sens * math.sqrt(dim))
