"""Context fields on ml-latest-small: DeepFM, DCN-V2 and the two-tower model with and
without ``model.context`` (hour of day, weekday, log time gap; README, "Context features
of interactions").

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_context.py [--only deepfm]
        [--context hour weekday gap] [--write] [--json rows.json]

Each model's warm preset ``configs/experiment/<name>_warm.yaml`` (all ratings as
positives, per-user 80/20 split with 10% of train as validation, item features) is
trained once as it is and once with ``model.context=[...]``, each in its own
subprocess through ``jaxrec.cli train`` (checkpoints off), and the ``test/`` NDCG@10
and Recall@20 are printed side by side with seconds per epoch and epochs run (best).
``--write`` replaces only this script's section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from jaxrec import benchmarks
from jaxrec.io import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
MODELS = ("deepfm", "dcn_v2", "two_tower")
OVERRIDES = ("trainer.progress=false", "logger.console=false", "trainer.save_checkpoint=false",
             "eval.save_per_user=false")


def run(name: str, context: tuple[str, ...], out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaxrec.cli", "train", f"experiment={name}_warm",
           f"model.context=[{','.join(context)}]", f"paths.output_dir={out}", *OVERRIDES]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    row = {"name": name, "context": list(context)}
    if proc.returncode != 0:
        return {**row, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    res = json.loads((out / "results.json").read_text())
    m = res["metrics"]
    return {**row, "ndcg": m["test/ndcg@10"], "recall": m["test/recall@20"],
            "valid_ndcg": m.get("valid/ndcg@10"), "sec_epoch": res["seconds_per_epoch"],
            "epochs": res["epochs_run"], "best": res["best_epoch"]}


def _cells(r: dict | None) -> str:
    if r is None:
        return "- | - | -"
    if "error" in r:
        return f"error: {r['error']} | | "
    return (f"{r['ndcg']:.3f} | {r['recall']:.3f} | "
            f"{r['sec_epoch']:.1f} s, {r['epochs']} ({r['best']})")


def table(rows: list[dict], context: tuple[str, ...]) -> str:
    lines = ["| model | NDCG@10 | Recall@20 | s/epoch, epochs (best) | NDCG@10 with context "
             "| Recall@20 with context | s/epoch, epochs (best) | command (with context) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name in MODELS:
        plain = next((r for r in rows if r["name"] == name and not r["context"]), None)
        ctx = next((r for r in rows if r["name"] == name and r["context"]), None)
        if plain is None and ctx is None:
            continue
        cmd = f"`jaxrec train experiment={name}_warm 'model.context=[{','.join(context)}]'`"
        lines.append(f"| {name} | {_cells(plain)} | {_cells(ctx)} | {cmd} |")
    return "\n".join(lines)


def section(rows: list[dict], context: tuple[str, ...]) -> str:
    start, end = benchmarks.markers("bench_context")
    return "\n".join([
        start, "## Context fields on ml-latest-small (scripts/bench_context.py)", "",
        "```", "JAXREC_DATA_DIR=<folder with ml-latest-small> python scripts/bench_context.py "
        "--write", "```", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared, loaded), one run per "
        "model and setting, seed 0. The warm presets (`<model>_warm`: all ratings as positives, "
        "per-user 80/20 split with 10% of train as validation, item features), as they are "
        f"and with `model.context=[{','.join(context)}]` (README, *Context features of "
        "interactions*): each training "
        "row's own hour, weekday and log-bucketed gap since the user's previous training "
        "interaction; each split scored in the context of the user's first held-out "
        "interaction of that split (its hour and weekday, the gap since the user's latest "
        "known interaction before it). Test metrics, full ranking over all items.", "",
        table(rows, context), "",
        "MovieLens timestamps are when a rating was entered (users rate in bulk sessions), "
        "not when the movie was watched, and on a per-user random split the held-out "
        "ratings sit inside the same sessions as the training ones, so hour, weekday and gap "
        "carry little about which movie comes next: the differences are of the size of "
        "one-seed noise (two-tower, which stops after 3-4 epochs, varies most). Where the "
        "data carries the signal the fields learn it: on a planted set whose item depends "
        "on the weekday and a device column, test HR@4 goes from 0.13 to 1.00 (DeepFM), "
        "0.09 to 1.00 (DCN-V2) and 0.05 to 0.97 (two-tower) with "
        "`model.context=[weekday,device]` (`tests/unit/test_context_fields.py`). "
        "Seconds per epoch are wall time on a machine shared with other jobs.", "", end])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=MODELS, help="models to run (default: all)")
    ap.add_argument("--context", nargs="+", default=["hour", "weekday", "gap"],
                    help="the context fields of the context runs")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="raw measurements, saved after every run; rows "
                    "already in it (without an error) are kept and not rerun")
    args = ap.parse_args(argv)
    context = tuple(args.context)
    rows = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    rows = [r for r in rows if "error" not in r]
    done = {(r["name"], tuple(r["context"])) for r in rows}
    with tempfile.TemporaryDirectory(prefix="bench_context-") as tmp:
        for name in args.only or MODELS:
            for fields in ((), context):
                if (name, fields) in done:
                    continue
                rows.append(run(name, fields, Path(tmp) / f"{name}-{len(fields)}"))
                print(json.dumps(rows[-1]), flush=True)
                if args.json:
                    atomic_write_json(args.json, rows)
    rows = [r for r in rows if tuple(r["context"]) in ((), context)]
    print(table(rows, context))
    if args.write:
        benchmarks.write_section(args.doc, section(rows, context), "bench_context")


if __name__ == "__main__":
    main()
