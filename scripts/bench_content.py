"""Item cold-start benchmark on ml-latest-small: content, hybrid, two-tower and TF-IDF vs
popularity and MF.

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_content.py [--only tfidf two_tower] [--write]

Each preset ``configs/experiment/<name>_cold_item.yaml`` (all ratings as
positives; 20% of the items, seed 0, held out with all their interactions as
test items, 10% of the rest as validation items; item features genres, year,
tags and title) is trained once in its own subprocess through
``jaxrec.train.run`` (checkpoints off) and reported with ``test/cold_item``
NDCG@10 and Recall@20 (the held-out items ranked among the cold items, the
user's training and validation items masked), the all-item ``test/`` values,
seconds per epoch and epochs run (best). A model that cannot score cold items
(MF) is listed as unable, with its note. ``--write`` replaces only this
script's section of ``docs/benchmarks.md`` (between its markers; appended when
absent).
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
MARK_START, MARK_END = benchmarks.markers("bench_content")
PRESETS = ("popularity", "mf", "tfidf", "content", "hybrid", "two_tower")
OVERRIDES = ("trainer.progress=false", "logger.console=false", "trainer.save_checkpoint=false",
             "eval.save_per_user=false")


def run_preset(name: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaxrec.cli", "train", f"experiment={name}_cold_item",
           f"paths.output_dir={out}", *OVERRIDES]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        return {"name": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    res = json.loads((out / "results.json").read_text())
    m = res["metrics"]
    return {"name": name, "cold_ndcg": m.get("test/cold_item/ndcg@10"),
            "cold_recall": m.get("test/cold_item/recall@20"), "ndcg": m.get("test/ndcg@10"),
            "recall": m.get("test/recall@20"), "sec_epoch": res["seconds_per_epoch"],
            "epochs": res["epochs_run"], "best": res["best_epoch"],
            "notes": res.get("notes", [])}


def _fmt(x) -> str:
    return "unable" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def table(rows: list[dict]) -> str:
    lines = ["| model | cold NDCG@10 | cold Recall@20 | all-item NDCG@10 | all-item Recall@20 "
             "| s/epoch | epochs (best) | command |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        cmd = f"`jaxrec train experiment={r['name']}_cold_item`"
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error']} | | | | | | {cmd} |")
            continue
        lines.append(f"| {r['name']} | {_fmt(r['cold_ndcg'])} | {_fmt(r['cold_recall'])} | "
                     f"{_fmt(r['ndcg'])} | {_fmt(r['recall'])} | {r['sec_epoch']:.1f} | "
                     f"{r['epochs']} ({r['best']}) | {cmd} |")
    notes = sorted({n for r in rows for n in r.get("notes", [])})
    return "\n".join(lines + [""] + [f"Note: {n}" for n in notes])


def section(rows: list[dict]) -> str:
    return "\n".join([
        MARK_START,
        "## Item cold start on ml-latest-small (scripts/bench_content.py)",
        "",
        "```",
        "JAXREC_DATA_DIR=<folder with ml-latest-small> python scripts/bench_content.py --write",
        "```",
        "",
        "All ratings as positives; 20% of the items (seed 0) held out with all their "
        "interactions as test items, 10% of the rest as validation items "
        "(`data=ml-latest-small-cold-item`). *cold* = `test/cold_item/*`: each user's held-out "
        "items ranked among all cold items (training and validation items masked); "
        "*all-item* = `test/*` over the whole catalogue. Item features: genres, 5-year "
        "buckets, tags (TF-IDF) and title tokens. Popularity cannot tell cold items apart "
        "(they all have zero training interactions), so its ranking is the tie-break "
        "(lower item index first). Tags in MovieLens are applied by users, so they are "
        "not pure item-side metadata. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared, loaded), one run "
        "per model.",
        "",
        table(rows),
        MARK_END,
    ])


def write_doc(doc: Path, text: str) -> None:
    benchmarks.write_section(doc, text, "bench_content")

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=PRESETS, help="presets to run (default: all)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_content-") as tmp:
        for name in args.only or PRESETS:
            rows.append(run_preset(name, Path(tmp) / name))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.write:
        write_doc(args.doc, section(rows))


if __name__ == "__main__":
    main()
