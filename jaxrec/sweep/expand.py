"""Turning a spec into trials: grid (cartesian product) and random (seeded draws)."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import numpy as np

from jaxrec.sweep.spec import Parameter, SpecError, SweepSpec

_PLAIN = re.compile(r"[A-Za-z0-9_.\-/]+")  # strings Hydra reads back without quotes


def format_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back (``1e-05``, ``[64,32]``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    text = str(value)
    if isinstance(value, str) and not _PLAIN.fullmatch(text):  # e.g. valid/ndcg@10
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


def grid(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, the first parameter varying slowest."""
    keys = [p.key for p in spec.parameters]
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(p.values for p in spec.parameters))]


def sample(param: Parameter, rng: np.random.Generator) -> Any:
    """One draw of a W&B-style distribution."""
    d = param.distribution
    if param.values is not None:
        if len(param.values) == 1:
            return param.values[0]
        index = rng.choice(len(param.values), p=param.probabilities)
        return param.values[int(index)]
    lo, hi, q = param.min, param.max, param.q
    if d == "int_uniform":
        return int(rng.integers(int(lo), int(hi) + 1))
    if d in ("uniform", "q_uniform"):
        x = rng.uniform(lo, hi)
    elif d == "log_uniform":  # W&B: min / max are natural-log exponents
        x = math.exp(rng.uniform(lo, hi))
    elif d in ("log_uniform_values", "q_log_uniform_values"):
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    elif d in ("normal", "q_normal"):
        x = rng.normal(param.mu, param.sigma)
    elif d == "log_normal":
        x = math.exp(rng.normal(param.mu, param.sigma))
    else:
        raise SpecError(f"parameters.{param.key}.distribution: cannot sample {d!r}")
    if d.startswith("q_"):
        step = q if q is not None else 1.0
        x = round(x / step) * step
        return int(x) if float(step).is_integer() else float(f"{x:.12g}")
    return float(f"{x:.6g}")  # short, exact override strings


def random_trials(spec: SweepSpec, *, run_cap: int, seed: int) -> list[dict[str, Any]]:
    """``run_cap`` independent draws from a generator seeded with ``seed`` (reproducible)."""
    rng = np.random.default_rng(seed)
    return [{p.key: sample(p, rng) for p in spec.parameters} for _ in range(run_cap)]


def expand(spec: SweepSpec, *, run_cap: int | None, seed: int) -> list[dict[str, Any]]:
    """The trials of a grid or random study (bayes trials are asked for one at a time)."""
    cap = run_cap if run_cap is not None else spec.run_cap
    if spec.method == "grid":
        trials = grid(spec)
        return trials[:cap] if cap is not None else trials
    if spec.method == "random":
        if cap is None:
            raise SpecError(f"{spec.path}: run_cap: random search needs a trial count "
                            "(run_cap in the file, or sweep.run_cap=N)")
        return random_trials(spec, run_cap=cap, seed=seed)
    raise SpecError(f"{spec.path}: method: {spec.method} trials are not expanded in advance")


def trial_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{k}={format_value(v)}" for k, v in params.items()]
