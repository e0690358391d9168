"""Utility vs epsilon of user-level DP-SGD on ml-latest-small (privacy=dp_sgd).

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_privacy.py [--epochs 15]
        [--epsilons 1 3 10 inf] [--only explicit implicit] [--write]

Each configuration trains once in its own subprocess through ``jaxrec.cli train``
(checkpoints off): ``explicit`` is biased MF with MSE on the explicit random 80/20
split (``data=ml-latest-small``, reports ``test/rmse``), ``implicit`` is BPR-MF on the
per-user 80/20 implicit split (``experiment=mf_bpr_ml-latest-small``, reports
``test/ndcg@10``). Every private run is user-level (``privacy.unit=user``), delta =
1 / users, clip 1, sampling rate 0.1 (10 steps an epoch), the noise calibrated to
epsilon for ``--epochs`` epochs; ``inf`` clips and samples without noise (no
guarantee). ``users`` says whether the per-user tables are released (noised like
everything else) or kept unreleased (joint DP: only item-side parameters carry noise).
The non-private row trains the same model with the ordinary step and batch 4096;
``drop`` is the relative change from it. ``--write`` replaces only this script's
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from jaxrec import benchmarks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
TASKS = {  # name: (overrides, metric, variants of the user tables)
    "implicit": (["experiment=mf_bpr_ml-latest-small"], "test/ndcg@10", ("unreleased",)),
    "explicit": (["data=ml-latest-small", "model=mf", "loss=mse"], "test/rmse",
                 ("released", "unreleased")),
}
COMMON = ("trainer.progress=false", "logger.console=false", "trainer.save_checkpoint=false",
          "eval.save_per_user=false", "model.dim=16", "optim.lr=0.02", "trainer.patience=5")


def run(overrides: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaxrec.cli", "train", f"paths.output_dir={out}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads((out / "results.json").read_text())


def measure(task: str, epochs: int, epsilons: list[float], tmp: Path) -> list[dict]:
    overrides, metric, variants = TASKS[task]
    base = [*overrides, *COMMON, f"trainer.epochs={epochs}"]
    res = run(base, tmp / f"{task}-baseline")
    rows = [{"task": task, "metric": metric, "users": "-", "epsilon": None,
             "value": res.get("metrics", {}).get(metric), "error": res.get("error"),
             "seconds": res.get("total_seconds")}]
    for users in variants:
        for eps in epsilons:
            res = run([*base, "privacy=dp_sgd", "privacy.unit=user", f"privacy.epsilon={eps}",
                       f"privacy.release_user_embeddings={users == 'released'}"],
                      tmp / f"{task}-{users}-{eps}")
            p = res.get("privacy", {})
            rows.append({"task": task, "metric": metric, "users": users, "epsilon": eps,
                         "value": res.get("metrics", {}).get(metric), "error": res.get("error"),
                         "sigma": p.get("noise_multiplier"), "steps": p.get("steps"),
                         "spent": p.get("epsilon"), "seconds": res.get("total_seconds")})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _fmt(x, spec=".4f") -> str:
    return "-" if x is None else (str(x) if isinstance(x, str) else format(x, spec))


def table(rows: list[dict]) -> str:
    lines = ["| task | metric | users | epsilon | noise multiplier | steps | value | drop | "
             "seconds |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    baselines = {r["task"]: r["value"] for r in rows if r["epsilon"] is None}
    for r in rows:
        base = baselines.get(r["task"])
        drop = "-" if r["epsilon"] is None or r["value"] is None or not base else \
            f"{100 * (r['value'] - base) / base:+.1f}%"
        eps = "non-private" if r["epsilon"] is None else (
            "inf (no noise)" if math.isinf(r["epsilon"]) else f"{r['epsilon']:g}")
        value = r["error"] if r["error"] else _fmt(r["value"])
        lines.append(f"| {r['task']} | {r['metric']} | {r['users']} | {eps} | "
                     f"{_fmt(r.get('sigma'), '.3f')} | {_fmt(r.get('steps'), 'd')} | {value} | "
                     f"{drop} | {_fmt(r['seconds'], '.0f')} |")
    return "\n".join(lines)


def section(rows: list[dict], epochs: int) -> str:
    start, end = benchmarks.markers("bench_privacy")
    return "\n".join([
        start, "## Private training on ml-latest-small (scripts/bench_privacy.py)", "",
        f"User-level DP-SGD (`privacy=dp_sgd privacy.unit=user`), delta = 1/610, clip 1, "
        f"sampling rate 0.1, {epochs} epochs (patience 5), MF dim 16, Adam lr 0.02; the "
        "noise is calibrated (RDP accountant) for the planned steps. `users`: `released` = "
        "every parameter noised; `unreleased` = per-user tables trained without noise and "
        "never released (joint DP, docs/privacy.md). `drop`: relative change from the "
        "non-private run (RMSE: lower is better; NDCG: higher is better). Machine: "
        f"{benchmarks.cpu_model()} ({platform.machine()}), shared with other jobs.", "",
        table(rows), end])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 3.0, 10.0, math.inf])
    ap.add_argument("--only", nargs="+", choices=list(TASKS), default=list(TASKS))
    ap.add_argument("--json", type=Path, help="also save the measured rows here")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for task in args.only
                for r in measure(task, args.epochs, args.epsilons, Path(tmp))]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    text = section(rows, args.epochs)
    print(text)
    if args.write:
        benchmarks.write_section(args.doc, text, "bench_privacy")


if __name__ == "__main__":
    main()
