"""A study on disk: its trials, their records, ``results.csv``, and running trials in-process.

Layout of a study directory (``outputs/sweeps/<spec name>`` unless ``sweep.dir=``)::

    study.json          name, id (the W&B group is ``<name>-<id>``), method, metric, spec,
                        fixed: the non-swept overrides that identify the study
                        (`jaxrec.sweep.identity`: other ones open ``<name>-<hash>``)
    results.csv         one row per trial, rewritten atomically after every trial
    trials/t000/        a normal run dir (config.yaml, metrics.jsonl, results.json, ...)
         trial.json     the trial's record: params, overrides, status, error, metrics, timings

Running the same command again reopens the study and skips every trial whose
record says ``ok`` or ``diverged`` (``failed`` ones run again unless
``sweep.retry_failed=false``); a trial is identified by its overrides.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from jaxrec.io import atomic_write_json, atomic_write_text
from jaxrec.logging.progress import Progress
from jaxrec.sweep.expand import format_value, trial_overrides
from jaxrec.sweep.identity import fixed_overrides, study_dir
from jaxrec.sweep.spec import SweepOptions, SweepSpec

FINAL = ("ok", "diverged")
_TIMING = ("best_epoch", "epochs_run", "stop_reason", "compile_seconds", "seconds_per_epoch",
           "eval_seconds", "total_seconds", "wall_seconds", "group_size", "vector_group")


def _override_key(word: str) -> str:
    return word.split("=", 1)[0].lstrip("+~")


def merge_overrides(*groups: list[str] | tuple[str, ...]) -> list[str]:
    """Concatenate override lists; a later ``key=...`` replaces an earlier one for the same key."""
    merged: dict[str, str] = {}
    for group in groups:
        for word in group:
            key = _override_key(word)
            merged.pop(key, None)
            merged[key] = word
    return list(merged.values())


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if text.startswith(type(err).__name__) else f"{type(err).__name__}: {text}"


@dataclasses.dataclass
class Trial:
    """One planned trial: its parameters, overrides and directory."""

    name: str
    key: str
    params: dict[str, Any]
    overrides: list[str]  # every override that composes the trial's config
    dir: Path


class Study:
    """A study directory and the trials recorded in it."""

    def __init__(self, spec: SweepSpec, opts: SweepOptions, train_overrides: list[str],
                 launcher_overrides: list[str] | None = None, *, execute=None):
        """``execute(study, trials)`` runs trials (in-process or through a launcher:
        `jaxrec.sweep.api` chooses); the study only plans and records them."""
        self.spec, self.opts = spec, opts
        self.execute = execute
        self.checked = False  # `preflight` ran on the first trial of this session
        self.progress: Progress | None = None  # set by `expect` (or the first `run`)
        self.train_overrides = list(train_overrides)
        self.launcher_overrides = list(launcher_overrides or [])
        self.fixed = fixed_overrides(spec, self.train_overrides)  # what identifies the study
        self.dir = study_dir(spec, opts, self.fixed)
        (self.dir / "trials").mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "study.json"
        if meta_path.exists():
            self.meta = json.loads(meta_path.read_text())
        else:
            self.meta = {"name": spec.name, "id": secrets.token_hex(3),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                         "spec": str(spec.path), "method": spec.method,
                         "metric": spec.metric, "goal": spec.goal}
        self.meta.update(metric=spec.metric, goal=spec.goal, method=spec.method,
                         swept=[p.key for p in spec.swept], fixed=self.fixed)
        atomic_write_json(meta_path, self.meta)
        atomic_write_text(self.dir / "spec.yaml", spec.path.read_text())

    # ------------------------------------------------------------ naming and overrides

    @property
    def group(self) -> str:
        """The W&B group of every trial: study name and study id."""
        return f"{self.spec.name}-{self.meta['id']}"

    def base_overrides(self) -> list[str]:
        """Overrides every trial shares, before its own parameters."""
        out = ["logger.console=false", "trainer.progress=false"]
        if self.opts.wandb:
            out += ["logger.wandb=true", f"logger.group={format_value(self.group)}",
                    f"logger.tags=[sweep,{format_value(self.spec.name)}]"]
        else:
            out.append("logger.wandb=false")
        if self.spec.metric.startswith("valid/"):  # early stopping follows the study's metric
            out += [f"trainer.monitor={format_value(self.spec.metric)}",
                    f"trainer.mode={self.spec.mode}"]
        return merge_overrides(out, self.spec.fixed_overrides, self.train_overrides)

    def trial_key(self, params: dict[str, Any]) -> str:
        words = merge_overrides(self.spec.fixed_overrides, self.train_overrides,
                                trial_overrides(params))
        return hashlib.sha1(json.dumps(sorted(words)).encode()).hexdigest()[:12]

    # ------------------------------------------------------------ records

    def records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted((self.dir / "trials").glob("*/trial.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):  # a half-written record: rerun the trial
                continue
        return out

    def is_done(self, record: dict[str, Any] | None) -> bool:
        if record is None:
            return False
        return record["status"] in FINAL or (record["status"] == "failed"
                                             and not self.opts.retry_failed)

    def plan(self, param_sets: list[dict[str, Any]]) -> tuple[list[Trial], list[dict]]:
        """Trials for ``param_sets``: those still to run, and the records of those already done."""
        by_key = {r["key"]: r for r in self.records()}
        used = {p.name for p in (self.dir / "trials").iterdir() if p.is_dir()}
        todo, done, seen, counter = [], [], set(), 0
        for params in param_sets:
            key = self.trial_key(params)
            if key in seen:  # a random draw or bayes suggestion repeated: run it once
                continue
            seen.add(key)
            record = by_key.get(key)
            if self.is_done(record):
                done.append(record)
                continue
            if record is not None:
                name = record["trial"]
            else:
                while f"t{counter:03d}" in used:
                    counter += 1
                name = f"t{counter:03d}"
                used.add(name)
            trial_dir = self.dir / "trials" / name
            overrides = merge_overrides(self.base_overrides(), trial_overrides(params),
                                        [f"name={format_value(self.spec.name + '-' + name)}",
                                         f"paths.output_dir={format_value(str(trial_dir))}"])
            todo.append(Trial(name, key, dict(params), overrides, trial_dir))
        return todo, done

    def start(self, trial: Trial) -> None:
        """Clear what an interrupted attempt left, but its training-state checkpoints (the
        trial resumes from them), and record the trial as running."""
        keep = trial.dir / "checkpoints" / "state"
        resumable = keep.is_dir()  # its metrics.jsonl is continued from the checkpoint too
        if trial.dir.exists():
            for path in trial.dir.iterdir():
                if resumable and path.name in ("metrics.jsonl", "wandb"):
                    continue
                if path.name == "checkpoints":
                    for sub in path.iterdir():
                        if sub != keep:
                            shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        trial.dir.mkdir(parents=True, exist_ok=True)
        self.write_record(trial, status="running")

    def write_record(self, trial: Trial, *, status: str, results: dict | None = None,
                     error: BaseException | str | None = None, **extra: Any) -> dict:
        results = results or {}
        record = {"trial": trial.name, "key": trial.key, "params": trial.params,
                  "overrides": trial.overrides, "status": status,
                  "error": None if error is None else (error if isinstance(error, str)
                                                       else one_line(error)),
                  "metrics": results.get("metrics", {}), "run_dir": str(trial.dir),
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  **{k: results.get(k) for k in _TIMING if k in results}, **extra}
        atomic_write_json(trial.dir / "trial.json", record)
        return record

    def finish(self, trial: Trial, outcome: dict | BaseException, **extra: Any) -> dict:
        """Record a trial's results dict, or the exception it ended with."""
        from jaxrec.training.loop import TrainingDiverged

        if isinstance(outcome, BaseException):
            status = "diverged" if isinstance(outcome, TrainingDiverged) else "failed"
            record = self.write_record(trial, status=status, error=outcome, **extra)
        else:
            record = self.write_record(trial, status="ok", results=outcome, **extra)
        self.write_results()
        self._print(record)
        return record

    def _print(self, record: dict) -> None:
        value = record["metrics"].get(self.spec.metric)
        shown = f"{self.spec.metric}={value:.4f}" if isinstance(value, float) else record["status"]
        params = " ".join(f"{k}={format_value(v)}" for k, v in record["params"].items()
                          if k in self.meta["swept"])
        extra = f" ({record['error']})" if record.get("error") else ""
        group = f" [vectorised x{record['group_size']}]" if record.get("group_size", 1) > 1 else ""
        note = f"  {self.progress.step()}" if self.progress is not None else ""
        print(f"{record['trial']}  {shown}  {params}{group}{extra}{note}", file=sys.stderr,
              flush=True)

    def expect(self, total: int, done: int = 0) -> None:
        """This invocation ends with ``total`` trials, ``done`` of them recorded before: each
        finished trial prints ``[k/total, elapsed, ~left]``."""
        self.progress = Progress(total, done)

    def failed(self) -> list[dict[str, Any]]:
        """The records whose status is ``failed`` (diverged trials are results, not failures)."""
        return [r for r in self.records() if r["status"] == "failed"]

    # ------------------------------------------------------------ results.csv

    def write_results(self) -> Path:
        """Rewrite ``results.csv`` (atomically) from every trial record."""
        records = sorted(self.records(), key=lambda r: r["trial"])
        order = [p.key for p in self.spec.parameters]  # the spec's order (records are sorted)
        params = list(dict.fromkeys([*(k for k in order if any(k in r["params"] for r in records)),
                                     *(k for r in records for k in r["params"])]))
        metrics = sorted({k for r in records for k in r["metrics"]},
                         key=lambda k: (k != self.spec.metric, not k.startswith("valid/"), k))
        columns = ["trial", "status", *params, *metrics, *_TIMING, "overrides", "error", "run_dir"]
        buf = io.StringIO()
        out = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        out.writeheader()
        for r in records:
            row = {**{k: r.get(k) for k in ("trial", "status", "error", "run_dir")},
                   **{k: r.get(k) for k in _TIMING},
                   **{k: _cell(v) for k, v in r["params"].items()}, **r["metrics"],
                   "overrides": " ".join(trial_overrides(
                       {k: r["params"][k] for k in params if k in r["params"]}))}
            out.writerow(row)
        path = self.dir / "results.csv"
        atomic_write_text(path, buf.getvalue())
        return path

    # ------------------------------------------------------------ running

    def run(self, param_sets: list[dict[str, Any]]) -> list[dict]:
        """Run the trials of ``param_sets`` not yet done; returns their records, in order."""
        todo, done = self.plan(param_sets)
        if self.progress is None:
            self.expect(len(todo) + len(done), len(done))
        if done:
            print(f"study {self.group}: {len(done)} trial(s) already done, {len(todo)} to run",
                  file=sys.stderr)
        if todo and not self.checked:  # errors every trial would hit stop the study here
            from jaxrec.sweep.preflight import preflight

            preflight(self, todo[0])
            self.checked = True
        self.execute(self, todo)
        self.write_results()
        by_key = {r["key"]: r for r in self.records()}
        return [by_key[k] for k in dict.fromkeys(self.trial_key(p) for p in param_sets)
                if k in by_key]


def _cell(value: Any) -> Any:
    return format_value(value) if isinstance(value, list | tuple | dict) else value
