"""Bayesian search with Optuna's TPE sampler (seeded), one trial asked and told at a time."""

from __future__ import annotations

import math
from typing import Any

from jaxrec.extras import require
from jaxrec.sweep.spec import Parameter, SpecError, SweepSpec

_PURPOSE = "jaxrec sweep with method: bayes"


def distributions(spec: SweepSpec) -> dict[str, Any]:
    """Optuna distributions for the swept parameters (W&B names mapped to Optuna's)."""
    od = require("optuna.distributions", extra="sweep", purpose=_PURPOSE)

    out = {}
    for p in spec.swept:
        field = f"{spec.path}: parameters.{p.key}"
        if p.values is not None:  # lists are not valid Optuna choices: choose an index
            simple = all(v is None or isinstance(v, bool | int | float | str) for v in p.values)
            out[p.key] = od.CategoricalDistribution(
                list(p.values) if simple else list(range(len(p.values))))
        elif p.distribution == "int_uniform":
            out[p.key] = od.IntDistribution(int(p.min), int(p.max))
        elif p.distribution == "uniform":
            out[p.key] = od.FloatDistribution(p.min, p.max)
        elif p.distribution == "q_uniform":
            out[p.key] = od.FloatDistribution(p.min, p.max, step=p.q or 1.0)
        elif p.distribution in ("log_uniform_values", "q_log_uniform_values"):
            out[p.key] = od.FloatDistribution(p.min, p.max, log=True)
        elif p.distribution == "log_uniform":
            out[p.key] = od.FloatDistribution(math.exp(p.min), math.exp(p.max), log=True)
        else:
            raise SpecError(f"{field}.distribution: bayes search supports values, uniform, "
                            f"q_uniform, int_uniform and log-uniform; got {p.distribution}")
    return out


def _decode(p: Parameter, value: Any) -> Any:
    if p.values is not None:
        simple = all(v is None or isinstance(v, bool | int | float | str) for v in p.values)
        return value if simple else p.values[value]
    if p.distribution == "q_log_uniform_values":
        step = p.q or 1.0
        value = round(value / step) * step
        return int(value) if float(step).is_integer() else value
    if isinstance(value, float):
        return float(f"{value:.6g}")  # short, exact override strings
    return value


def _encode(p: Parameter, value: Any) -> Any:
    if p.values is not None:
        simple = all(v is None or isinstance(v, bool | int | float | str) for v in p.values)
        return value if simple else list(p.values).index(value)
    return value


def run_bayes(study, *, run_cap: int, seed: int, startup_trials: int) -> list[dict]:
    """Ask TPE for ``run_cap`` trials in total; trials recorded earlier are told first."""
    optuna = require("optuna", extra="sweep", purpose=_PURPOSE)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec: SweepSpec = study.spec
    dists = distributions(spec)
    swept = {p.key: p for p in spec.swept}
    fixed = {p.key: p.values[0] for p in spec.parameters if p.is_fixed}
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    direction = "maximize" if spec.goal == "maximize" else "minimize"
    tpe = optuna.create_study(direction=direction, sampler=sampler)

    done = 0
    for record in study.records():  # resume: tell TPE what earlier sessions learned
        if not study.is_done(record) or study.trial_key(record["params"]) != record["key"]:
            continue
        try:
            params = {k: _encode(swept[k], record["params"][k]) for k in swept}
            inside = all(d._contains(d.to_internal_repr(params[k])) for k, d in dists.items())
        except (KeyError, ValueError):
            inside = False
        if not inside:  # recorded under another search space
            continue
        tpe.add_trial(_frozen(record, params, dists, spec.metric))
        done += 1
    records = []
    study.expect(max(run_cap, done), done)
    while done < run_cap:
        trial = tpe.ask(dists)
        params = {**fixed, **{k: _decode(swept[k], v) for k, v in trial.params.items()}}
        (record,) = study.run([params])
        value = record["metrics"].get(spec.metric)
        if record["status"] == "ok" and isinstance(value, float) and math.isfinite(value):
            tpe.tell(trial, value)
        else:
            tpe.tell(trial, state=optuna.trial.TrialState.FAIL)
        records.append(record)
        done += 1
    return records


def _frozen(record: dict, params: dict, dists: dict, metric: str):
    import optuna

    value = record["metrics"].get(metric)
    ok = record["status"] == "ok" and isinstance(value, float) and math.isfinite(value)
    return optuna.trial.create_trial(
        params=params, distributions=dists, value=value if ok else None,
        state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL)
