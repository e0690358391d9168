"""Whole-command wall time of the default ``jaxrec train``, cold and warm compilation cache,
with scikit-surprise's SVD as the peer (same split, same factors, same epochs).

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_startup.py [--repeats 3] [--write]

Each repeat runs, in fresh processes and interleaved: ``jaxrec train`` with
``trainer.compile_cache=false`` (every program compiled: a first run), ``jaxrec train``
with a compilation cache filled by an earlier run (a rerun, or the next trial of a sweep),
and Surprise's SVD (its own venv, as ``scripts/bench_train.py`` makes it) fitted for the
epochs the jaxrec run trained. The data's parse cache is warm in all jaxrec runs, so the
columns differ only in compiling. Medians are reported, with the ratio to Surprise (the
issue's targets: <= 3x cold, <= 2x warm).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_train import DEFAULT_PEER_VENV, ensure_peer_venv, export_split, run_peer

from jaxrec import benchmarks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
TARGET_COLD, TARGET_WARM = 3.0, 2.0


def jaxrec_train(cache_dir: Path, out: Path, *, compile_cache: bool) -> dict:
    env = {**os.environ, "JAXREC_CACHE_DIR": str(cache_dir)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", "trainer.progress=false",
                    f"trainer.compile_cache={str(compile_cache).lower()}",
                    f"paths.output_dir={out}"], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    results = json.loads((out / "results.json").read_text())
    return {"wall": wall, "in_run": results["total_seconds"], "epochs": results["epochs_run"],
            "compile": results.get("compile", {}), "rmse": results["metrics"]["test/rmse"]}


def peer_wall(python: Path, split: dict, epochs: int) -> dict:
    start = time.perf_counter()
    result = run_peer(python, split, factors=64, epochs=epochs)
    return {"wall": time.perf_counter() - start, "rmse": result["test_rmse"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jaxrec-bench-startup-"))
    cache = work / "cache"
    python, peer_note = ensure_peer_venv(args.peer_venv, log=lambda m: print(m, file=sys.stderr))
    os.environ.setdefault("JAXREC_CACHE_DIR", str(cache))
    split = export_split(work) if python else None
    first = jaxrec_train(cache, work / "warmup", compile_cache=True)  # parse + xla caches
    runs: dict[str, list[dict]] = {"cold": [], "warm": [], "peer": []}
    for r in range(args.repeats):
        runs["cold"].append(jaxrec_train(cache, work / f"cold{r}", compile_cache=False))
        runs["warm"].append(jaxrec_train(cache, work / f"warm{r}", compile_cache=True))
        if python:
            runs["peer"].append(peer_wall(python, split, first["epochs"]))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]['wall']:.1f} s"
                                              for k, v in runs.items() if v), file=sys.stderr)

    def med(kind: str, key: str = "wall") -> float:
        return statistics.median(x[key] for x in runs[kind])

    peer = med("peer") if runs["peer"] else None
    ratio = lambda s: f"{s / peer:.1f}x" if peer else "-"
    lines = ["| command | whole process s | in-run s | programs compiled / from cache "
             "| vs Surprise SVD | target |", "|---|---|---|---|---|---|"]
    for kind, label, target in (("cold", "`jaxrec train` (trainer.compile_cache=false)",
                                 TARGET_COLD),
                                ("warm", "`jaxrec train` (compilation cache warm)", TARGET_WARM)):
        c = runs[kind][-1]["compile"]
        met = "-" if peer is None else ("met" if med(kind) / peer <= target else "not met")
        lines.append(f"| {label} | {med(kind):.1f} | {med(kind, 'in_run'):.1f} | "
                     f"{c.get('compiled', '-')} / {c.get('cache_hits', '-')} | "
                     f"{ratio(med(kind))} | <= {target:g}x: {met} |")
    if peer is not None:
        lines.append(f"| Surprise SVD, {first['epochs']} epochs, 64 factors (same split) | "
                     f"{peer:.1f} | - | - | 1.0x | |")
    table = "\n".join(lines)
    print(table)
    rmse = {k: runs[k][-1]["rmse"] for k in runs if runs[k]}
    print(f"test RMSE: {rmse}", file=sys.stderr)
    if args.write:
        start, end = benchmarks.markers("bench_startup")
        section = "\n".join([
            start, "## Whole-command time: the default `jaxrec train`", "",
            f"`python scripts/bench_startup.py --repeats {args.repeats} --write` on "
            f"{benchmarks.cpu_model()} ({os.cpu_count()} cores); medians of {args.repeats} "
            "fresh processes, interleaved, data parse cache warm."
            + ("" if python else f" No peer: {peer_note}."), "", table, "",
            "test RMSE " + ", ".join(f"{k} {v:.4f}" for k, v in rmse.items())
            + " (cold and warm runs are the same executables: identical numbers).", end])
        benchmarks.write_section(args.doc, section, "bench_startup")
        print(f"wrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
