"""Running a preset: train each fold (in a subprocess or in process), reuse finished runs,
collect each run's ``results.json``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxrec.config import ReproduceConfig
from jaxrec.io import atomic_write_json
from jaxrec.reproduce.presets import compose, reproduce_block, run_overrides


@dataclasses.dataclass
class PresetRun:
    """The runs of one preset: its reproduce block and each fold's ``results.json``."""

    preset: str
    reproduce: ReproduceConfig
    dataset_run: str  # the data config the runs used (configs/data/<name>.yaml)
    local: bool
    results: list[dict[str, Any]]  # one results.json per fold
    run_dirs: list[str]
    overrides: list[str]  # of fold 0 (the others differ in data.split.fold)
    split_method: str = ""  # data.split.method of the runs
    error: str | None = None


def run_preset(preset: str, *, out_dir: str | os.PathLike, local: bool = False,
               extra: Sequence[str] = (), in_process: bool = False, resume: bool = False,
               log=None, trained: dict[str, tuple[str, dict]] | None = None) -> PresetRun:
    """Train ``preset`` (each fold) and collect the runs' ``results.json``.

    A failing run is recorded in ``PresetRun.error`` (the table shows it) rather than
    raised; ``resume`` reuses a run directory's ``results.json`` (written atomically, last,
    so its presence means the run finished) with the same overrides instead of training;
    ``trained`` maps `run_key` to ``(run dir, results)`` of every run finished so far in
    this invocation, so a fold identical to an earlier preset's (two Surprise presets on the
    same local folds) is read, not trained again. A preset that is not a paper preset, or
    a bad override, raises ReproduceError.
    """
    trained = {} if trained is None else trained
    block = reproduce_block(compose(preset, extra)[0], preset)
    folds = block.folds
    first = run_overrides(block, preset, local=local, extra=extra,
                          fold=0 if folds > 1 else None)
    cfg, data_name = compose(preset, first)  # what fold 0 runs (bad overrides fail here)
    root = Path(out_dir) / "runs" / (preset + ("-local" if local else ""))
    run = PresetRun(preset=preset, reproduce=block, dataset_run=data_name, local=local,
                    results=[], run_dirs=[], overrides=first,
                    split_method=str(cfg.data.split.method))
    for fold in range(folds):
        overrides = run_overrides(block, preset, local=local, extra=extra,
                                  fold=fold if folds > 1 else None)
        run_dir = root / (f"fold{fold}" if folds > 1 else "run")
        key = run_key(cfg if overrides == first else compose(preset, overrides)[0])
        if key in trained:
            same_dir, same_results = trained[key]
            if log:
                log(f"{preset}: fold {fold + 1}/{folds} is the run {same_dir}: reusing it")
            run.results.append(same_results)
            run.run_dirs.append(same_dir)
            continue
        if resume and _finished(run_dir, overrides):
            if log:
                log(f"{preset}: reusing {run_dir}")
            run.results.append(json.loads((run_dir / "results.json").read_text()))
            run.run_dirs.append(str(run_dir))
            trained[key] = (str(run_dir), run.results[-1])
            continue
        if log:
            log(f"{preset}: training{f' fold {fold + 1}/{folds}' if folds > 1 else ''} "
                f"on data={data_name} -> {run_dir}")
        try:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            (run_dir / "results.json").unlink(missing_ok=True)  # a stale one is not this run's
            atomic_write_json(run_dir / "overrides.json", list(overrides))
            results = (_run_in_process if in_process else _run_subprocess)(
                preset, overrides, run_dir)
        except Exception as err:  # noqa: BLE001 -- recorded in the table, the next preset runs
            run.error = " ".join(str(err).split())[:500] or type(err).__name__
            if log:
                log(f"{preset}: FAILED: {run.error}")
            break
        run.results.append(results)
        run.run_dirs.append(str(run_dir))
        trained[key] = (str(run_dir), results)
    return run


def run_key(cfg) -> str:
    """What a run trains and evaluates: its composed config without the preset's
    ``reproduce`` block (published numbers) and output paths."""
    import hashlib

    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=False)
    for section in ("reproduce", "paths"):
        plain.pop(section, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


def _finished(run_dir: Path, overrides: list[str]) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly ``overrides``."""
    stamp = run_dir / "overrides.json"
    return ((run_dir / "results.json").is_file() and stamp.is_file()
            and json.loads(stamp.read_text()) == list(overrides))


def _run_in_process(preset: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    from jaxrec.runner import train

    cfg, _ = compose(preset, overrides, output_dir=run_dir)
    return train(cfg)


def _run_subprocess(preset: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "jaxrec.train", f"experiment={preset}", *overrides,
           f"hydra.run.dir={run_dir}", f"paths.output_dir={run_dir}"]
    with open(run_dir / "train.log", "w") as log_file:
        proc = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    results = run_dir / "results.json"
    if proc.returncode != 0 or not results.is_file():
        tail = (run_dir / "train.log").read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"exit {proc.returncode}: " + " | ".join(tail))
    return json.loads(results.read_text())
