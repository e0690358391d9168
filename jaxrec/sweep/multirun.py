"""A Hydra multirun folder read as a study, so ``jaxrec sweep report`` ranks it too.

``jaxrec train -m optim.lr=0.002,0.005 loss.l2=0.03,0.1`` writes ``multirun/<date>/<time>/``
with one numbered job folder per combination (``0/``, ``1/``, ...), each holding Hydra's
``.hydra/overrides.yaml`` and, when the job finished, jaxrec's ``results.json``. The trials
are the job folders; the swept parameters are the overrides whose values differ between
jobs, the fixed ones those all jobs share; the metric is the jobs' monitored key
(``results.json`` ``monitor``) and its direction the metric's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from jaxrec.metrics import higher_is_better
from jaxrec.sweep.spec import ReportError


def is_multirun(path: Path) -> bool:
    """Whether ``path`` is a Hydra multirun folder (``multirun.yaml`` or job folders)."""
    return (path / "multirun.yaml").is_file() or bool(_jobs(path))


def _jobs(path: Path) -> list[Path]:
    jobs = [p for p in path.iterdir() if p.is_dir() and (p / ".hydra" / "overrides.yaml").is_file()]
    return sorted(jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit()
                                       else 0, p.name))


def _value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_multirun(path: str | Path, metric: str | None = None) -> tuple[dict, pd.DataFrame]:
    """``(study meta, trials frame)`` like `jaxrec.sweep.report.load_study` returns."""
    path = Path(path)
    jobs = _jobs(path)
    if not jobs:
        raise ReportError(f"multirun dir: {path} has no job folders (<n>/.hydra/overrides.yaml)")
    overrides, results = {}, {}
    for job in jobs:
        listed = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
        overrides[job.name] = dict(o.split("=", 1) for o in listed if "=" in o)
        done = job / "results.json"
        results[job.name] = json.loads(done.read_text()) if done.is_file() else None
    keys = sorted({k for o in overrides.values() for k in o})
    swept = [k for k in keys if len({o.get(k) for o in overrides.values()}) > 1]
    fixed = [f"{k}={v}" for k in keys if k not in swept
             for v in {o.get(k) for o in overrides.values()}]
    monitors = {r.get("monitor") for r in results.values() if r and r.get("monitor")}
    metric = metric or (sorted(monitors)[0] if monitors else None)
    if metric is None:
        raise ReportError(f"multirun dir: {path}: no finished job (results.json) to rank")
    rows = []
    for name, job_overrides in overrides.items():
        result = results[name]
        row = {"trial": name, "run_dir": str(path / name),
               "status": "ok" if result else "failed",
               "error": None if result else "no results.json (failed or still running)",
               **{k: _value(job_overrides[k]) for k in swept if k in job_overrides}}
        if result:
            row.update(result.get("metrics", {}), best_epoch=result.get("best_epoch"),
                       wall_seconds=result.get("total_seconds"))
        rows.append(row)
    goal = "maximize" if higher_is_better(metric) else "minimize"
    meta = {"name": path.name, "id": "multirun", "method": "hydra multirun", "metric": metric,
            "goal": goal, "swept": swept, "fixed": fixed}
    return meta, pd.DataFrame(rows)
