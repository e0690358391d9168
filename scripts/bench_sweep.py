"""Sweep-launch benchmark: the 16-trial mf learning-rate x L2 grid on ml-latest-small, run
as separate processes, as a Hydra multirun, sequentially in one process, and vectorised.

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_sweep.py [--modes ...] [--write]

Modes (every one trains the same 16 configurations of ``sweeps/mf_lr_l2.yaml``):

* ``processes``: 16 ``jaxrec train`` processes one after another (what ``wandb agent``
  does: a new interpreter, imports, data load and compile per trial);
* ``multirun``: ``jaxrec train -m optim.lr=... loss.l2=...`` (Hydra's basic launcher:
  one process, trials one after another);
* ``sequential``: ``jaxrec sweep sweeps/mf_lr_l2.yaml sweep.vectorize=false``;
* ``vectorised``: ``jaxrec sweep sweeps/mf_lr_l2.yaml`` (automatic grouping: one
  compiled program for the group; vmap lanes chosen from the state size and device);
* ``vmap16``: the same with ``sweep.lanes=16`` (all 16 states stacked side by side);
* ``single``: the first trial alone, one ``jaxrec train`` (what one trial costs; not in
  the default ``--modes``).

W&B logging is off in every mode (``sweep.wandb=false``) so that the times compare
launching and training. Wall times include everything (interpreter start, data,
compile, training, evaluation, checkpoints). ``--write`` replaces this script's
section of ``docs/benchmarks.md`` (between its markers).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaxrec import benchmarks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SPEC = ROOT / "sweeps" / "mf_lr_l2.yaml"
MARK_START, MARK_END = benchmarks.markers("bench_sweep")
MODES = ("processes", "multirun", "sequential", "vectorised", "vmap16", "single")
QUIET = ["logger.console=false", "trainer.progress=false"]


def grid() -> tuple[list[str], list[dict]]:
    """The spec's fixed overrides and its 16 parameter combinations."""
    sys.path.insert(0, str(ROOT))
    from jaxrec.sweep.expand import expand
    from jaxrec.sweep.spec import load_spec

    spec = load_spec(SPEC)
    return list(spec.fixed_overrides), expand(spec, run_cap=None, seed=0)


def jaxrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "jaxrec.cli", *args]


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t


def best_from_csv(path: Path) -> float:
    with open(path) as f:
        values = [float(r["valid/rmse"]) for r in csv.DictReader(f) if r["status"] == "ok"]
    return min(values)


def bench(mode: str, fixed: list[str], trials: list[dict], tmp: Path, env: dict,
          extra: list[str]) -> tuple[float, float | None, str]:
    """``(wall seconds, best valid/rmse, command)`` of one mode."""
    out = tmp / mode
    out.mkdir()
    if mode in ("processes", "single"):  # single: the first trial alone, one process
        wall, best = 0.0, []
        for i, t in enumerate(trials if mode == "processes" else trials[:1]):
            words = [f"{k}={v}" for k, v in t.items()]
            wall += run(jaxrec("train", *fixed, *words, *QUIET, *extra,
                               f"paths.output_dir={out / str(i)}"), tmp, env)
            best.append(json.loads((out / str(i) / "results.json").read_text())
                        ["metrics"]["valid/rmse"])
        many = "16 x " if mode == "processes" else ""
        return wall, min(best), f"{many}jaxrec train " + " ".join(fixed) + " optim.lr=.. loss.l2=.."
    if mode == "multirun":
        keys = list(trials[0])
        values = {k: list(dict.fromkeys(t[k] for t in trials)) for k in keys}
        sweep_words = [f"{k}={','.join(str(v) for v in vs)}" for k, vs in values.items()]
        assert len(list(itertools.product(*values.values()))) == len(trials)
        cmd = jaxrec("train", "-m", *fixed, *sweep_words, *QUIET, *extra,
                     f"hydra.sweep.dir={out}")
        wall = run(cmd, tmp, env)
        best = min(json.loads(p.read_text())["metrics"]["valid/rmse"]
                   for p in out.glob("*/results.json"))
        return wall, best, "jaxrec train -m " + " ".join([*fixed, *sweep_words])
    opts = {"sequential": ["sweep.vectorize=false"], "vectorised": [],
            "vmap16": ["sweep.lanes=16"]}[mode]
    cmd = jaxrec("sweep", str(SPEC), f"sweep.dir={out / 'study'}", "sweep.wandb=false",
                 *opts, *extra)
    wall = run(cmd, tmp, env)
    shown = " ".join(["jaxrec sweep sweeps/mf_lr_l2.yaml", *opts])
    return wall, best_from_csv(out / "study" / "results.csv"), shown


def machine() -> str:
    cpu = benchmarks.cpu_model(platform.processor() or platform.machine())
    try:
        load = f" (load average {os.getloadavg()[0]:.1f} at start)"
    except OSError:
        load = ""
    import jax

    return f"{os.cpu_count()}-core {cpu}, {jax.devices()[0].platform}{load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default=",".join(MODES[:-1]),
                        help=f"comma-separated subset of {', '.join(MODES)}")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write {mode: [wall s, best]} here")
    parser.add_argument("overrides", nargs="*", help="train overrides for every mode "
                        "(e.g. trainer.epochs=10 for a quick look)")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    fixed, trials = grid()
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.setdefault("JAXREC_CACHE_DIR", str(Path(tempfile.gettempdir()) / "jaxrec-bench-cache"))
    where = machine()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        run(jaxrec("data", "download", "ml-latest-small"), Path(tmp), env)  # warm the npz cache
        for mode in modes:
            wall, best, command = bench(mode, fixed, trials, Path(tmp), env, args.overrides)
            results[mode] = (wall, best, command)
            per = wall / (1 if mode == "single" else len(trials))
            print(f"{mode:11s} {wall:7.1f} s  ({per:5.2f} s/trial)  "
                  f"best valid/rmse {best:.4f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({m: [w, b] for m, (w, b, _) in results.items()}))
    table = render(results, len(trials), where, args.overrides, args.modes)
    print("\n" + table)
    if args.write:
        write_doc(table)
        print(f"wrote {DOC}")


TARGET_PER_TRIAL = 1.3  # a trial inside a sequential sweep vs the same trial alone


def render(results: dict, n: int, where: str, overrides: list[str],
           modes: str = ",".join(MODES[:-1])) -> str:
    base = results.get("processes", (None,))[0]
    seq = results.get("sequential", (None,))[0]
    lines = [f"Sweep launch: the {n}-trial mf learning-rate x L2 grid "
             f"(`sweeps/mf_lr_l2.yaml`) on ml-latest-small, W&B off, on a {where}.",
             "Command: `python scripts/bench_sweep.py"
             + ("" if modes == ",".join(MODES[:-1]) else f" --modes {modes}") + " --write"
             + (" " + " ".join(overrides) if overrides else "") + "`.", "",
             "| mode | wall time | per trial | vs separate processes | vs sequential in-process "
             "| best valid/rmse | command |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for mode, (wall, best, command) in results.items():
        rel = f"{wall / base:.2f}x" if base else "-"
        rel_seq = f"{wall / seq:.2f}x" if seq else "-"
        per = wall / (1 if mode == "single" else n)
        lines.append(f"| {mode} | {wall:.1f} s | {per:.2f} s | {rel} | {rel_seq} | "
                     f"{best:.4f} | `{command}` |")
    single = results.get("single", (None,))[0]
    if single and seq:
        ratio = seq / n / single
        lines += ["", f"- Target: a trial of the in-process sequential sweep vs the same kind of "
                  f"trial alone (`single`, a whole `jaxrec train` process): {seq / n:.2f} s vs "
                  f"{single:.2f} s, {ratio:.2f}x (target <= {TARGET_PER_TRIAL:g}x: "
                  f"{'met' if ratio <= TARGET_PER_TRIAL else 'not met'}): "
                  "later trials in the same process reuse its compiled programs and loaded data."]
    if single and "vectorised" in results:
        lines.append(f"- All {n} trials vectorised take {results['vectorised'][0] / single:.1f}x "
                     "one trial alone (the GPU goal is <= 2x; this is a 2-core CPU).")
    return "\n".join(lines)


def write_doc(table: str) -> None:
    section = f"{MARK_START}\n## Sweeps (`scripts/bench_sweep.py`)\n\n{table}\n{MARK_END}"
    benchmarks.write_section(DOC, section, "bench_sweep")

if __name__ == "__main__":
    main()
