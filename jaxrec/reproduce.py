"""Paper presets: run them and set jaxrec's numbers beside the published ones.

    python scripts/reproduce.py PRESET... [--local] [--set key=value ...] [--out DIR] [--write]

A paper preset is ``configs/experiment/paper_*.yaml`` with a ``reproduce:`` block
(:class:`~jaxrec.config.ReproduceConfig`): the paper, its protocol and dataset,
the published ``{metric key: value}`` and an absolute tolerance per metric. For
each preset the config is composed as ``jaxrec train experiment=<preset>
[--set ...]`` would compose it, then trained once, or once per fold with
``data.split.fold=k`` when ``reproduce.folds > 1``, each run in its own process
(``python -m jaxrec.train``; ``--in-process`` runs them in this one) with its own run
directory under ``--out``. The metrics come from each run's ``results.json``,
which also states the evaluation protocol the table shows.

The table has one row per (preset, published metric): the published value,
jaxrec's value (mean ± population std over folds, as Surprise's
``cross_validate`` reports), the difference and whether it is within the
preset's tolerance. ``--local`` runs the same preset on
``data=<reproduce.local_data>`` (the same protocol on ml-latest-small, for
machines without the paper's dataset); those numbers are not comparable with
the paper's, so the tolerance column says ``n/a (other dataset)``, and a fixed
negatives file (``eval.negatives_file``, which names the paper dataset's items)
is replaced by negatives drawn once from the seed.

Outputs (written atomically): ``reproduce.md``, ``reproduce.csv`` and
``reproduce.json`` in ``--out``; ``--write`` also replaces this script's section
of ``docs/benchmarks.md`` (`jaxrec.benchmarks`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxrec.config import ReproduceConfig
from jaxrec.io import atomic_write_json

SECTION = "reproduce"
"""This script's marker name in ``docs/benchmarks.md``."""
RUN_OVERRIDES = ("trainer.progress=false", "trainer.save_checkpoint=false")
"""Added to every run: no progress bar in logs, no checkpoint (EASE's is N x N floats)."""
OTHER_DATASET = "n/a (other dataset)"


class ReproduceError(ValueError):
    """A preset that cannot be reproduced as asked (one line naming the preset and key)."""


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


@dataclasses.dataclass
class Row:
    """One (preset, metric) line of the table."""

    preset: str
    paper_dataset: str
    dataset_run: str
    protocol: str
    metric: str
    published: float
    mean: float | None
    std: float | None
    folds: int
    tolerance: float | None
    local: bool
    error: str | None = None

    @property
    def delta(self) -> float | None:
        return None if self.mean is None else self.mean - self.published

    @property
    def within(self) -> bool | None:
        """|mean - published| <= tolerance; None where it is not judged (local, no tolerance)."""
        if self.local or self.tolerance is None or self.mean is None:
            return None
        return within_tolerance(self.mean, self.published, self.tolerance)

    def verdict(self) -> str:
        if self.error is not None:
            return "failed"
        if self.local:
            return OTHER_DATASET
        if self.tolerance is None:
            return "n/a (no tolerance)"
        return f"{'yes' if self.within else 'no'} (±{self.tolerance:g})"


# ---------------------------------------------------------------- presets and configs

def config_dir() -> Path:
    from jaxrec.paths import CONFIG_DIR

    return CONFIG_DIR


def paper_presets() -> list[str]:
    """Names of ``configs/experiment/paper_*.yaml``, sorted."""
    return sorted(p.stem for p in (config_dir() / "experiment").glob("paper_*.yaml"))


def compose(preset: str, overrides: Sequence[str] = (), *, output_dir: str | os.PathLike = "."):
    """``(cfg, data_name)``: the composed config of ``experiment=<preset>`` + ``overrides``.

    ``data_name`` is the chosen ``configs/data`` option. Raises ReproduceError for an
    unknown preset or a bad override (one line).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from jaxrec.config import register_configs

    if not (config_dir() / "experiment" / f"{preset}.yaml").is_file():
        raise ReproduceError(f"unknown preset {preset!r}; paper presets: "
                             f"{', '.join(paper_presets()) or 'none'}")
    register_configs()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = hydra_compose("train", overrides=[f"experiment={preset}",
                                                    f"paths.output_dir={output_dir}",
                                                    *overrides], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
        raise ReproduceError(f"{preset}: {' '.join(str(err).split())}{cause}") from None
    data_name = str(cfg.hydra.runtime.choices.get("data"))
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, data_name


def reproduce_block(cfg, preset: str) -> ReproduceConfig:
    """The typed ``reproduce`` section; ReproduceError when the preset names no paper."""
    from jaxrec.config import typed

    block: ReproduceConfig = typed(cfg, "reproduce", ReproduceConfig)
    if not block.paper:
        raise ReproduceError(f"experiment={preset} has no reproduce.paper: it is not a paper "
                             f"preset (paper presets: {', '.join(paper_presets()) or 'none'})")
    for key in ("published", "tolerance"):
        value = getattr(block, key)
        if value is not None and not isinstance(value, dict):
            raise ReproduceError(f"{preset}: reproduce.{key} must map metric keys to numbers, "
                                 f"got {value!r}")
    published = dict(block.published or {})
    if not published:
        raise ReproduceError(f"{preset}: reproduce.published is empty (give the paper's "
                             "{metric key: value})")
    tolerance = dict(block.tolerance or {})
    for key, value in list(published.items()) + list(tolerance.items()):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ReproduceError(f"{preset}: reproduce value of {key!r} must be a number, "
                                 f"got {value!r}")
    unknown = sorted(set(tolerance) - set(published))
    if unknown:
        raise ReproduceError(f"{preset}: reproduce.tolerance has {unknown[0]!r}, which is not "
                             "in reproduce.published")
    if any(v < 0 for v in tolerance.values()):
        raise ReproduceError(f"{preset}: reproduce.tolerance values must be >= 0")
    if isinstance(block.folds, bool) or not isinstance(block.folds, int) or block.folds < 1:
        raise ReproduceError(f"{preset}: reproduce.folds={block.folds!r} must be an int >= 1")
    return dataclasses.replace(block, published=published, tolerance=tolerance)


def run_overrides(block: ReproduceConfig, preset: str, *, local: bool,
                  extra: Sequence[str] = (), fold: int | None = None) -> list[str]:
    """The Hydra overrides of one run: ``--local`` data swap, user ``--set``, the fold."""
    out = [*RUN_OVERRIDES]
    if local:
        if not block.local_data:
            raise ReproduceError(f"{preset}: reproduce.local_data is empty, so --local has no "
                                 "ml-latest-small version of its protocol to run")
        # a negatives file names the paper dataset's items; locally they are drawn once
        out += [f"data={block.local_data}", "eval.negatives_file=null"]
    out += list(extra)
    if fold is not None:
        out.append(f"data.split.fold={fold}")
    return out


# ---------------------------------------------------------------- running

def run_preset(preset: str, *, out_dir: str | os.PathLike, local: bool = False,
               extra: Sequence[str] = (), in_process: bool = False, resume: bool = False,
               log=None) -> PresetRun:
    """Train ``preset`` (each fold) and collect the runs' ``results.json``.

    A failing run is recorded in ``PresetRun.error`` (the table shows it) rather than
    raised; ``resume`` reuses a run directory's ``results.json`` (written atomically, last,
    so its presence means the run finished) with the same overrides instead of training;
    a preset that is not a paper preset, or a bad override, raises ReproduceError.
    """
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
        if resume and _finished(run_dir, overrides):
            if log:
                log(f"{preset}: reusing {run_dir}")
            run.results.append(json.loads((run_dir / "results.json").read_text()))
            run.run_dirs.append(str(run_dir))
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
    return run


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


# ---------------------------------------------------------------- the table

def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0, as Surprise reports over folds)."""
    if not values:
        raise ValueError("mean_std of no values")
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def within_tolerance(value: float, published: float, tolerance: float) -> bool:
    """``|value - published| <= tolerance``, up to float rounding of the inputs."""
    return abs(value - published) <= tolerance + 1e-9


RATING_METRICS = ("rmse", "mae")


def protocol_of(results: dict[str, Any], split_method: str | None = None,
                metric: str | None = None) -> str:
    """``results.json``'s protocol name (``rating`` for RMSE / MAE, which score the held-out
    ratings whatever the ranking protocol), with the split method when known."""
    name = str(results.get("protocol", "unknown"))
    if metric is not None and metric.split("/")[-1].split("@")[0] in RATING_METRICS:
        name = "rating"
    return f"{name}, split={split_method}" if split_method else name


def rows_of(run: PresetRun) -> list[Row]:
    """The table rows of one preset: one per published metric.

    Raises ReproduceError when a run's results lack a published metric key.
    """
    published = run.reproduce.published
    tolerance = run.reproduce.tolerance
    rows = []
    for metric, value in published.items():
        protocol = protocol_of(run.results[0], run.split_method, metric) if run.results else "-"
        mean = std = None
        if run.error is None:
            values = []
            for k, results in enumerate(run.results):
                metrics = results.get("metrics", {})
                if metric not in metrics:
                    raise ReproduceError(
                        f"{run.preset}: run {run.run_dirs[k]} has no metric {metric!r} (it has "
                        f"{', '.join(sorted(metrics)) or 'none'}); fix reproduce.published")
                values.append(float(metrics[metric]))
            mean, std = mean_std(values)
        rows.append(Row(preset=run.preset, paper_dataset=run.reproduce.dataset,
                        dataset_run=run.dataset_run, protocol=protocol, metric=metric,
                        published=float(value), mean=mean, std=std, folds=len(run.results),
                        tolerance=None if metric not in tolerance else float(tolerance[metric]),
                        local=run.local, error=run.error))
    return rows


def fmt_value(row: Row) -> str:
    if row.error is not None:
        return f"failed: {row.error[:120]}"
    if row.folds > 1:
        return f"{row.mean:.4f} ± {row.std:.4f} ({row.folds} folds)"
    return f"{row.mean:.4f}"


HEADER = ("preset", "paper dataset", "dataset run", "protocol", "metric", "published",
          "jaxrec", "delta", "within tolerance")


def table_cells(row: Row) -> list[str]:
    delta = "-" if row.delta is None else f"{row.delta:+.4f}"
    return [row.preset, row.paper_dataset, row.dataset_run, row.protocol, row.metric,
            f"{row.published:.4f}", fmt_value(row), delta, row.verdict()]


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in table_cells(r)) + " |"
              for r in rows]
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    """The table aligned in columns, for the terminal."""
    cells = [list(HEADER)] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def record(row: Row) -> dict[str, Any]:
    """One row as plain values (CSV / JSON)."""
    return {"preset": row.preset, "paper_dataset": row.paper_dataset,
            "dataset_run": row.dataset_run, "protocol": row.protocol, "metric": row.metric,
            "published": row.published, "jaxrec_mean": row.mean, "jaxrec_std": row.std,
            "folds": row.folds, "delta": row.delta, "tolerance": row.tolerance,
            "within_tolerance": row.within, "verdict": row.verdict(), "local": row.local,
            "error": row.error}


def notes(runs: Sequence[PresetRun]) -> str:
    """One bullet per preset: the paper, its protocol and the deviations."""
    out = []
    for run in runs:
        r = run.reproduce
        line = f"- `{run.preset}`: {_sentence(r.paper)} Protocol: {_sentence(r.protocol)}"
        if r.note:
            line += f" Note: {_sentence(r.note)}"
        out.append(" ".join(line.split()))
    return "\n".join(out)


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else text + "."


def write_outputs(out_dir: str | os.PathLike, rows: Sequence[Row], runs: Sequence[PresetRun],
                  *, command: str) -> dict[str, Path]:
    """``reproduce.md``, ``reproduce.csv``, ``reproduce.json`` in ``out_dir`` (atomic)."""
    from jaxrec.io import atomic_write_text

    out = Path(out_dir)
    paths = {"md": out / "reproduce.md", "csv": out / "reproduce.csv",
             "json": out / "reproduce.json"}
    atomic_write_text(paths["md"], f"```\n{command}\n```\n\n{markdown_table(rows)}\n\n"
                                   f"{notes(runs)}\n")
    buf = io.StringIO()
    records = [record(r) for r in rows]
    writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["preset"])
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_json(paths["json"], {
        "command": command, "rows": records,
        "runs": [{"preset": r.preset, "reproduce": dataclasses.asdict(r.reproduce),
                  "dataset_run": r.dataset_run, "local": r.local, "overrides": r.overrides,
                  "run_dirs": r.run_dirs, "error": r.error,
                  "protocol": [res.get("protocol") for res in r.results],
                  "protocol_details": [res.get("protocol_details") for res in r.results],
                  "metrics": [res.get("metrics") for res in r.results]} for r in runs]})
    return paths


def render_section(rows: Sequence[Row], runs: Sequence[PresetRun], *, command: str,
                   machine: str) -> str:
    from jaxrec import benchmarks

    start, end = benchmarks.markers(SECTION)
    return f"""{start}
## Paper reproductions (scripts/reproduce.py)

{machine}

```
{command}
```

*published* is the paper's number on its dataset; *jaxrec* is this run's (mean ± population \
std over folds for cross-validated presets); *delta* = jaxrec - published. Rows run on \
*dataset run* = ml-latest-small (`--local`) use the paper's protocol on a smaller dataset, so \
they are not judged against the paper's tolerance.

{markdown_table(rows)}

{notes(runs)}
{end}"""


def machine_line() -> str:
    import platform

    import jax

    from jaxrec import benchmarks

    return (f"Machine: {os.cpu_count()}-core CPU, {benchmarks.cpu_model()}; jax {jax.__version__} "
            f"({jax.devices()[0].platform}), Python {platform.python_version()}.")


# ---------------------------------------------------------------- command line

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/reproduce.py",
                                 description="Run paper presets; print a paper-vs-jaxrec table.")
    ap.add_argument("presets", nargs="*", metavar="PRESET",
                    help="configs/experiment/paper_*.yaml names (default with --all: every one)")
    ap.add_argument("--all", action="store_true", help="run every paper preset")
    ap.add_argument("--local", action="store_true",
                    help="run on each preset's reproduce.local_data (ml-latest-small)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="Hydra override for every run (repeatable), e.g. trainer.epochs=5")
    ap.add_argument("--out", type=Path, help="output folder (default outputs/reproduce/<time>)")
    ap.add_argument("--write", action="store_true",
                    help="replace this script's section of docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--in-process", action="store_true",
                    help="train in this process instead of one subprocess per run")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the results.json of runs already finished under --out (a run "
                         "that died is trained again)")
    ap.add_argument("--list", action="store_true", help="list the paper presets and exit")
    args = ap.parse_args(argv)
    if not (args.presets or args.all or args.list):
        ap.error("name at least one preset (or --all / --list)")
    return args


def main(argv: Sequence[str] | None = None, *, doc: str | os.PathLike | None = None) -> int:
    """Run the presets, print the table, write the outputs.

    ``doc`` is the ``docs/benchmarks.md`` that ``--write`` updates (``--doc`` wins).
    Returns the exit status: 0, 1 when a run failed, 2 for a bad preset or override.
    """
    args = parse_args(argv)
    if args.list:
        print("\n".join(paper_presets()))
        return 0

    def log(msg: str) -> None:
        print(f"[reproduce] {msg}", file=sys.stderr, flush=True)

    presets = paper_presets() if args.all else list(args.presets)
    out = args.out or Path("outputs") / "reproduce" / time.strftime("%Y-%m-%d_%H-%M-%S")
    shown = list(sys.argv[1:] if argv is None else argv)
    command = "python scripts/reproduce.py" + "".join(" " + shlex.quote(a) for a in shown)
    runs, rows = [], []
    try:
        for preset in presets:
            run = run_preset(preset, out_dir=out, local=args.local, extra=args.overrides,
                             in_process=args.in_process, resume=args.resume, log=log)
            runs.append(run)
            rows += rows_of(run)
    except ReproduceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text_table(rows))
    paths = write_outputs(out, rows, runs, command=command)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    if args.write:
        from jaxrec import benchmarks

        doc = args.doc or doc or Path("docs") / "benchmarks.md"
        benchmarks.write_section(doc, render_section(rows, runs, command=command,
                                                     machine=machine_line()), SECTION)
        log(f"wrote {doc}")
    return 1 if any(r.error for r in runs) else 0
