"""Content and hybrid models on ml-latest-small, item cold start and warm: content, hybrid,
two-tower, DeepFM, DCN-v2 and TF-IDF vs popularity and MF.

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_content.py [--split cold_item warm]
        [--only tfidf two_tower] [--write]

``--split cold_item`` (default: both splits) trains each preset
``configs/experiment/<name>_cold_item.yaml`` (all ratings as positives; 20% of
the items, seed 0, held out with all their interactions as test items, 10% of
the rest as validation items; item features genres, year, tags and title) once
in its own subprocess through ``jaxrec.cli train`` (checkpoints off) and
reports ``test/cold_item`` NDCG@10 and Recall@20 (the held-out items ranked
among the cold items, the user's training and validation items masked), the
all-item ``test/`` values, seconds per epoch and epochs run (best). A model that
cannot score cold items (MF) is listed as unable, with its note. ``--split
warm`` runs the ``<name>_warm`` presets (per-user 80/20 split of every user's
interactions, the split of ``mf_bpr_ml-latest-small``) and reports ``test/``
NDCG@10 and Recall@20. ``--write`` replaces only this script's section of
``docs/benchmarks.md`` (between its markers; appended when absent).
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
from jaxrec.io import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
MARK_START, MARK_END = benchmarks.markers("bench_content")
MODELS = ("popularity", "mf", "tfidf", "content", "hybrid", "two_tower", "deepfm", "dcn_v2")
SPLITS = ("cold_item", "warm")
# the warm baselines are the zoo's presets on the same split (data=ml-latest-small-implicit)
WARM_PRESETS = {"popularity": "popularity_ml-latest-small", "mf": "mf_bpr_ml-latest-small"}
OVERRIDES = ("trainer.progress=false", "logger.console=false", "trainer.save_checkpoint=false",
             "eval.save_per_user=false")


def preset(name: str, split: str) -> str:
    return WARM_PRESETS[name] if split == "warm" and name in WARM_PRESETS else f"{name}_{split}"


def run_preset(name: str, split: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaxrec.cli", "train", f"experiment={preset(name, split)}",
           f"paths.output_dir={out}", *OVERRIDES]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        return {"name": name, "split": split,
                "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    res = json.loads((out / "results.json").read_text())
    m = res["metrics"]
    return {"name": name, "split": split, "cold_ndcg": m.get("test/cold_item/ndcg@10"),
            "cold_recall": m.get("test/cold_item/recall@20"), "ndcg": m.get("test/ndcg@10"),
            "recall": m.get("test/recall@20"), "sec_epoch": res["seconds_per_epoch"],
            "epochs": res["epochs_run"], "best": res["best_epoch"],
            "notes": res.get("notes", [])}


def _fmt(x) -> str:
    return "unable" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def table(rows: list[dict], split: str) -> str:
    cold = split == "cold_item"
    head = ("| model | cold NDCG@10 | cold Recall@20 | all-item NDCG@10 | all-item Recall@20 "
            if cold else "| model | NDCG@10 | Recall@20 ")
    lines = [head + "| s/epoch | epochs (best) | command |",
             "| --- | " + "---: | " * (4 if cold else 2) + "---: | ---: | --- |"]
    for r in rows:
        cmd = f"`jaxrec train experiment={preset(r['name'], split)}`"
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error']} |" + " |" * (6 if cold else 4)
                         + f" {cmd} |")
            continue
        values = [r["cold_ndcg"], r["cold_recall"]] if cold else []
        cells = " | ".join(_fmt(v) for v in [*values, r["ndcg"], r["recall"]])
        lines.append(f"| {r['name']} | {cells} | {r['sec_epoch']:.1f} | "
                     f"{r['epochs']} ({r['best']}) | {cmd} |")
    notes = sorted({n for r in rows for n in r.get("notes", [])})
    return "\n".join(lines + [""] + [f"Note: {n}" for n in notes])


def section(rows: list[dict]) -> str:
    out = [MARK_START,
           "## Content and hybrid models on ml-latest-small (scripts/bench_content.py)",
           "",
           "```",
           "JAXREC_DATA_DIR=<folder with ml-latest-small> python scripts/bench_content.py --write",
           "```",
           "",
           f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared, loaded), one run "
           "per model and split, seed 0. Item features: genres, 5-year buckets, tags (TF-IDF) "
           "and title tokens. Tags in MovieLens are applied by users, so they are not pure "
           "item-side metadata. On the cold-item split, negatives (bce/bpr, uniform "
           "sampled-softmax candidates) are drawn only from items with training interactions "
           "(`trainer.negatives=auto`), so held-out cold items are never trained as negatives.",
           ""]
    cold = [r for r in rows if r["split"] == "cold_item"]
    warm = [r for r in rows if r["split"] == "warm"]
    if cold:
        out += ["### Item cold start", "",
                "All ratings as positives; 20% of the items (seed 0) held out with all their "
                "interactions as test items, 10% of the rest as validation items "
                "(`data=ml-latest-small-cold-item`). *cold* = `test/cold_item/*`: each user's "
                "held-out items ranked among all cold items (training and validation items "
                "masked); *all-item* = `test/*` over the whole catalogue. Popularity cannot "
                "tell cold items apart (they all have zero training interactions), so its "
                "ranking is the tie-break (lower item index first).", "",
                table(cold, "cold_item"), ""]
    if warm:
        out += ["### Warm split", "",
                "All ratings as positives, per-user 80/20 with 10% of train as validation "
                "(`data=ml-latest-small-warm`: the split of `data=ml-latest-small-implicit`, "
                "with item features); full ranking over all items. TF-IDF uses no "
                "collaborative signal, so on warm data it stays far below the trained models: "
                "it is the cold-start baseline, not a warm recommender. The DeepFM and DCN-v2 "
                "presets add the user's history profile as a user field "
                "(`model.history=true`; without it DCN-v2 stalls near popularity on this "
                "split, see the presets' headers).", "",
                table(warm, "warm"), ""]
    return "\n".join(out + [MARK_END])


def write_doc(doc: Path, text: str) -> None:
    benchmarks.write_section(doc, text, "bench_content")

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", nargs="+", choices=SPLITS, default=list(SPLITS),
                    help="splits to run (default: both)")
    ap.add_argument("--only", nargs="+", choices=MODELS, help="models to run (default: all)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="raw measurements, saved after every run; rows "
                    "already in it (without an error) are kept and not rerun")
    args = ap.parse_args(argv)
    rows = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    done = {(r["name"], r["split"]) for r in rows if "error" not in r}
    rows = [r for r in rows if (r["name"], r["split"]) in done]
    with tempfile.TemporaryDirectory(prefix="bench_content-") as tmp:
        for split in args.split:
            for name in args.only or MODELS:
                if (name, split) in done:
                    continue
                rows.append(run_preset(name, split, Path(tmp) / f"{name}-{split}"))
                print(json.dumps(rows[-1]), flush=True)
                if args.json:
                    atomic_write_json(args.json, rows)
    rows.sort(key=lambda r: (SPLITS.index(r["split"]), MODELS.index(r["name"])))
    for split in args.split:
        print(table([r for r in rows if r["split"] == split], split))
    if args.write:
        write_doc(args.doc, section(rows))


if __name__ == "__main__":
    main()
