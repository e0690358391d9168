"""Sweep specs in the Weights & Biases sweep format, and the local study options.

A spec file ``sweeps/<name>.yaml`` is a W&B sweep config, so the same file runs
online with ``wandb sweep`` / ``wandb agent`` and locally with ``jaxrec sweep``::

    method: grid                       # grid | random | bayes
    metric: {name: valid/rmse, goal: minimize}   # goal: optional, the metric's direction
    run_cap: 16                        # random / bayes: number of trials
    parameters:
      optim.lr: {values: [1e-3, 3e-3]}
      loss.l2: {distribution: log_uniform_values, min: 1e-3, max: 1.0}
    command: [${env}, ${interpreter}, -m, jaxrec.cli, train,
              experiment=mf_ml-latest-small, ${args_no_hyphens}]

``metric.goal`` must agree with the metric's direction
(`jaxrec.metrics.higher_is_better`); left out, it is that direction here (W&B
itself defaults to minimize, so files meant for ``wandb sweep`` state it).
Fixed ``key=value`` words of ``command`` (here ``experiment=...``) are applied
to every trial; each trial adds its own ``parameter=value`` overrides.
Nested W&B parameters (``optim: {parameters: {lr: ...}}``) are flattened to
dotted keys.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import yaml
from omegaconf._utils import get_yaml_loader

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "q_uniform",
                 "log_uniform", "log_uniform_values", "q_log_uniform_values", "normal",
                 "q_normal", "log_normal")
_PARAM_KEYS = {"value", "values", "distribution", "min", "max", "q", "mu", "sigma",
               "probabilities", "parameters"}
_TOP_KEYS = {"method", "metric", "parameters", "command", "program", "name", "description",
             "run_cap", "early_terminate", "project", "entity", "controller", "job"}


class SpecError(ValueError):
    """A sweep spec is malformed; the message names the file, field and value."""


class ReportError(ValueError):
    """A folder to report on is not a study (or a Hydra multirun): one line."""


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One swept (or fixed) parameter: a Hydra key and how its values are chosen."""

    key: str
    values: tuple | None = None  # grid / categorical choices (a fixed value is one choice)
    distribution: str = "categorical"
    min: float | None = None
    max: float | None = None
    q: float | None = None
    mu: float = 0.0
    sigma: float = 1.0
    probabilities: tuple | None = None

    @property
    def is_fixed(self) -> bool:
        return self.values is not None and len(self.values) == 1


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file."""

    name: str  # the file stem: the study name
    path: Path
    method: str
    metric: str
    goal: str
    parameters: tuple[Parameter, ...]
    fixed_overrides: tuple[str, ...]  # key=value words of ``command``
    run_cap: int | None
    description: str = ""

    @property
    def mode(self) -> str:
        return "max" if self.goal == "maximize" else "min"

    @property
    def swept(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if not p.is_fixed)


@dataclasses.dataclass
class SweepOptions:
    """Local study settings, given on the command line as ``sweep.<field>=value``.

    Attributes:
      dir: the study directory; default ``outputs/sweeps/<spec name>`` (running the
        same command again resumes the study there).
      seed: seed of the random / bayes samplers.
      run_cap: overrides the spec's ``run_cap`` (random / bayes trial count).
      vectorize: train trials that differ only in continuous hyperparameters and
        seeds together, as stacked states in one compiled program.
      max_group: the largest vectorised group (the memory bound may lower it).
      group_memory_mb: memory budget of one group's training states; 0: a quarter
        of the device's memory.
      lanes: members of a group stepped side by side by ``jax.vmap``; 0 picks it
        (the whole group on an accelerator; on a CPU, as many as fit one core's
        L2 cache, often 1: the members then step one after another through the
        group's one compiled program).
      wandb: log every trial as its own W&B run (offline unless WANDB_MODE says otherwise).
      retry_failed: run failed trials again on resume (diverged ones are final).
      startup_trials: bayes: random trials before TPE takes over.
    """

    dir: str | None = None
    seed: int = 0
    run_cap: int | None = None
    vectorize: bool = True
    max_group: int = 16
    group_memory_mb: float = 0.0
    lanes: int = 0
    wandb: bool = True
    retry_failed: bool = True
    startup_trials: int = 5


def _fail(path: Path, field: str, msg: str):
    raise SpecError(f"{path}: {field}: {msg}")


def _flatten(path: Path, params: Any, prefix: str = "") -> list[tuple[str, dict]]:
    if not isinstance(params, dict) or not params:
        _fail(path, prefix.rstrip(".") or "parameters", f"expected a non-empty mapping, "
              f"got {params!r}")
    out = []
    for key, body in params.items():
        full = f"{prefix}{key}"
        if not isinstance(body, dict):
            _fail(path, f"parameters.{full}", f"expected a mapping such as "
                  f"{{values: [...]}}, got {body!r}")
        if "parameters" in body:
            out += _flatten(path, body["parameters"], prefix=f"{full}.")
        else:
            out.append((full, body))
    return out


def _number(path: Path, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, field, f"expected a number, got {value!r}")
    return float(value)


def _parameter(path: Path, key: str, body: dict) -> Parameter:
    field = f"parameters.{key}"
    unknown = sorted(set(body) - _PARAM_KEYS)
    if unknown:
        _fail(path, f"{field}.{unknown[0]}",
              f"unknown key (valid: {', '.join(sorted(_PARAM_KEYS))})")
    if "value" in body:
        return Parameter(key, values=(body["value"],), distribution="constant")
    dist = body.get("distribution")
    if "values" in body:
        values = body["values"]
        if not isinstance(values, list) or not values:
            _fail(path, f"{field}.values", f"expected a non-empty list, got {values!r}")
        if dist not in (None, "categorical"):
            _fail(path, f"{field}.distribution", f"{dist!r} does not take values; use "
                  "categorical or min/max")
        probs = body.get("probabilities")
        if probs is not None and (len(probs) != len(values) or not math.isclose(sum(probs), 1)):
            _fail(path, f"{field}.probabilities", f"expected {len(values)} numbers summing "
                  f"to 1, got {probs!r}")
        return Parameter(key, values=tuple(values), probabilities=None if probs is None
                         else tuple(probs))
    if dist is None:
        dist = "int_uniform" if all(isinstance(body.get(k), int) for k in ("min", "max")) \
            else "uniform"
    if dist not in DISTRIBUTIONS or dist in ("constant", "categorical"):
        _fail(path, f"{field}.distribution", f"unknown or value-less distribution {dist!r} "
              f"(choose from {', '.join(DISTRIBUTIONS)})")
    if dist in ("normal", "q_normal", "log_normal"):
        return Parameter(key, distribution=dist, mu=_number(path, f"{field}.mu", body.get("mu", 0)),
                         sigma=_number(path, f"{field}.sigma", body.get("sigma", 1)),
                         q=body.get("q"))
    lo = _number(path, f"{field}.min", body.get("min"))
    hi = _number(path, f"{field}.max", body.get("max"))
    if not lo < hi:
        _fail(path, f"{field}.max", f"must exceed min ({lo}), got {hi}")
    if dist in ("log_uniform_values", "q_log_uniform_values") and lo <= 0:
        _fail(path, f"{field}.min", f"{dist} needs min > 0, got {lo}")
    q = body.get("q")
    if q is not None:
        q = _number(path, f"{field}.q", q)
    return Parameter(key, distribution=dist, min=lo, max=hi, q=q)


def _fixed_overrides(path: Path, command: Any) -> tuple[str, ...]:
    if command is None:
        return ()
    if not isinstance(command, list):
        _fail(path, "command", f"expected a list of words, got {command!r}")
    words = [str(w) for w in command]
    if "${args_no_hyphens}" not in words:
        _fail(path, "command", "must pass ${args_no_hyphens} (the trial's key=value overrides "
              "for Hydra)")
    return tuple(w for w in words if "=" in w and not w.startswith(("$", "-")))


def packaged_specs() -> list[str]:
    """The names of the sweep specs shipped with jaxrec (``sweeps/*.yaml``)."""
    from jaxrec.paths import SWEEPS_DIR

    return sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))


def resolve_spec(path: str | Path) -> Path:
    """``path`` when it is a file, else the packaged spec of that name (``mf_lr_l2`` or
    ``mf_lr_l2.yaml``); one line listing the packaged ones when neither exists."""
    from jaxrec.paths import SWEEPS_DIR

    path = Path(path)
    if path.is_file():
        return path
    packaged = SWEEPS_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    raise SpecError(f"{path}: no such sweep file (packaged specs: "
                    f"{', '.join(packaged_specs()) or 'none'})")


def load_spec(path: str | Path) -> SweepSpec:
    """Parse and check a sweep file; every error is one line naming file, field and value."""
    path = resolve_spec(path)
    try:
        raw = yaml.load(path.read_text(), Loader=get_yaml_loader())  # 1e-3 is a float
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping with method, metric and parameters")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        _fail(path, unknown[0], f"unknown key (valid: {', '.join(sorted(_TOP_KEYS))})")
    method = raw.get("method")
    if method not in METHODS:
        _fail(path, "method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    metric = raw.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        _fail(path, "metric", f"expected {{name: valid/..., goal: minimize|maximize}}, "
              f"got {metric!r}")
    goal = _goal(path, metric["name"], metric.get("goal"))
    params = tuple(_parameter(path, k, b) for k, b in _flatten(path, raw.get("parameters")))
    run_cap = raw.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int)
                                or run_cap < 1):
        _fail(path, "run_cap", f"expected a positive integer, got {run_cap!r}")
    if method == "grid":
        for p in params:
            if p.values is None:
                _fail(path, f"parameters.{p.key}", f"grid search needs values, got "
                      f"distribution {p.distribution}")
    return SweepSpec(name=path.stem, path=path, method=method, metric=metric["name"], goal=goal,
                     parameters=params, fixed_overrides=_fixed_overrides(path, raw.get("command")),
                     run_cap=run_cap, description=str(raw.get("description") or ""))


def _goal(path: Path, name: str, goal: Any) -> str:
    """``metric.goal``, defaulting to the metric's direction; a contradicting goal is an error."""
    from jaxrec.metrics.catalog import higher_is_better

    try:
        natural = "maximize" if higher_is_better(name) else "minimize"
    except ValueError as err:
        raise SpecError(f"{path}: metric.name: {err}") from None
    if goal is None:
        return natural
    if goal not in GOALS:
        _fail(path, "metric.goal", f"expected minimize or maximize, got {goal!r}")
    if goal != natural:
        _fail(path, "metric.goal", f"{goal} contradicts {name}, which is "
              f"{'higher' if natural == 'maximize' else 'lower'} is better (goal: {natural}, "
              "or leave it out)")
    return goal


def parse_options(overrides: list[str]) -> tuple[SweepOptions, list[str], list[str]]:
    """Split command-line overrides into sweep options, launcher overrides and train overrides."""
    opts = SweepOptions()
    fields = {f.name: f for f in dataclasses.fields(SweepOptions)}
    launcher, train = [], []
    for word in overrides:
        if word.startswith("sweep."):
            key, _, value = word.removeprefix("sweep.").partition("=")
            if key not in fields or not _:
                raise SpecError(f"command line: {word}: unknown sweep option (valid: "
                                f"{', '.join('sweep.' + f for f in fields)})")
            setattr(opts, key, _convert(word, fields[key], value))
        elif word.startswith(("hydra/launcher", "hydra.launcher", "hydra.sweep")):
            launcher.append(word)
        else:
            train.append(word)
    return opts, launcher, train


def _convert(word: str, field: dataclasses.Field, value: str) -> Any:
    """The value of ``sweep.<field>=value`` as the field's type, or a one-line SpecError."""
    kind = str(field.type)  # "int | None", "bool", "float", "str | None" (postponed annotations)
    if value.lower() in ("null", "none", "~", ""):
        if "None" in kind:
            return None
        raise SpecError(f"command line: {word}: expected {kind.split(' ')[0]}, got {value!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    if kind.startswith("bool"):
        if not isinstance(parsed, bool):
            raise SpecError(f"command line: {word}: expected true or false, got {value!r}")
        return parsed
    if kind.startswith("int"):
        if isinstance(parsed, bool) or not isinstance(parsed, int):
            raise SpecError(f"command line: {word}: expected an integer, got {value!r}")
        if field.name in ("run_cap", "max_group") and parsed < 1:
            raise SpecError(f"command line: {word}: expected a positive integer, got {value!r}")
        if parsed < 0:
            raise SpecError(f"command line: {word}: expected an integer >= 0, got {value!r}")
        return parsed
    if kind.startswith("float"):
        if isinstance(parsed, bool) or not isinstance(parsed, int | float) or parsed < 0:
            raise SpecError(f"command line: {word}: expected a number >= 0, got {value!r}")
        return float(parsed)
    return value
