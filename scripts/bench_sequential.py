"""Next-item benchmark on ml-latest-small leave-last: SASRec's losses (and its time
features), HSTU, BERT4Rec and GRU4Rec's losses against MF-BPR and popularity, under the
next-item protocol (test scored from train + valid).

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_sequential.py --out /tmp/bench-seq \
        [--only sasrec_gbce popularity] [--reuse] [--write]

Each row is one training run of an experiment preset (plus the row's overrides) in its
own subprocess, written to ``--out/<row>``. ``--reuse`` reads a row's finished run
instead of training it again when its saved ``config.yaml`` has the same model, loss,
optimiser, trainer, eval and split settings as the row's composed config (so runs made
with ``jaxrec train <overrides> logger.console=false`` count). ``--write`` replaces
only this script's section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from jaxrec import benchmarks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
NAME = "bench_sequential"
SASREC = "experiment=sasrec_ml-latest-small"
GRU4REC = "experiment=gru4rec_ml-latest-small"
SEQUENTIAL = ("sasrec", "hstu", "bert4rec", "gru4rec")  # rows whose test input is a history
ROWS = {  # row -> overrides
    "popularity": ["experiment=popularity_leave_last_ml-latest-small"],
    "mf_bpr": ["experiment=mf_bpr_leave_last_ml-latest-small"],
    "sasrec_sequence_bce": [SASREC, "loss=sequence_bce"],
    "sasrec_softmax_ce": [SASREC, "loss=softmax_ce"],
    "sasrec_sequence_sampled_softmax": [SASREC, "loss=sequence_sampled_softmax"],
    "sasrec_gbce": [SASREC, "loss=gbce"],
    "bert4rec": ["experiment=bert4rec_ml-latest-small"],
    "gru4rec_top1max": [GRU4REC, "loss=top1_max"],
    "gru4rec_bprmax": [GRU4REC, "loss=bpr_max"],
    "gru4rec_ce": [GRU4REC, "loss=minibatch_ce"],
    "sasrec_time_features": [SASREC, "loss=softmax_ce", "model.time_features=true"],
    "hstu": ["experiment=hstu_ml-latest-small"],
}
WORKER_OVERRIDES = ["logger.console=false"]
COMPARED = ("model", "loss", "optim", "trainer", "eval", "seed")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="run folders, one per row")
    ap.add_argument("--only", nargs="+", choices=list(ROWS), help="rows (default: all)")
    ap.add_argument("--reuse", action="store_true", help="read finished runs of the same config")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def compose_cfg(overrides, output_dir):
    from jaxrec.api import compose

    return compose(overrides, output_dir=output_dir)


def same_config(run_dir: Path, overrides: list[str]) -> bool:
    """Whether ``run_dir`` holds a finished run of ``overrides`` (the compared sections)."""
    from omegaconf import OmegaConf

    if not (run_dir / "results.json").is_file() or not (run_dir / "config.yaml").is_file():
        return False
    saved = OmegaConf.load(run_dir / "config.yaml")
    cfg = compose_cfg([*overrides, *WORKER_OVERRIDES], run_dir)

    def pick(c, key: str):
        node = OmegaConf.select(c, key)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

    return all(pick(saved, k) == pick(cfg, k) for k in (*COMPARED, "data.split",
                                                          "data.preprocess"))


def train_row(row: str, run_dir: Path) -> None:
    """Train one row in its own process (``jaxrec.cli train``) into ``run_dir``."""
    cmd = [sys.executable, "-m", "jaxrec.cli", "train", *ROWS[row], *WORKER_OVERRIDES,
           f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{row}: exit {proc.returncode}\n{tail}")


def train_input_metrics(run_dir: Path) -> dict[str, float]:
    """Test metrics of the run's best state scored from train only (the protocol before
    ``eval.test_input``): the same model, only its test input differs."""
    from jaxrec.assembly import load_run
    from jaxrec.metrics.scoring import evaluate

    loaded = load_run(run_dir)
    for ev in loaded.run.test_evals:
        ev.input_tables = None
    return evaluate(loaded.run.test_evals, loaded.graphdef, loaded.state)


def read_row(row: str, run_dir: Path) -> dict:
    res = json.loads((run_dir / "results.json").read_text())
    m = res["metrics"]
    before = None
    if res.get("protocol_details", {}).get("test_input") == "train+valid" and (
            run_dir / "checkpoints" / "best").is_dir() and row.startswith(SEQUENTIAL):
        before = train_input_metrics(run_dir)["test/ndcg@10"]
    return {"row": row, "overrides": " ".join(ROWS[row]),
            "ndcg10": m["test/ndcg@10"], "hit10": m["test/hit@10"], "ndcg10_train_input": before,
            "valid_ndcg10": m.get("valid/ndcg@10"), "epochs_run": res.get("epochs_run"),
            "best_epoch": res.get("best_epoch"),
            "train_seconds": res.get("seconds_per_epoch", 0.0) * (res.get("epochs_run") or 0),
            "test_input": res.get("protocol_details", {}).get("test_input")}


def format_table(rows: list[dict]) -> str:
    lines = ["| row | overrides | test NDCG@10 | test HR@10 | valid NDCG@10 | test input "
             "| test NDCG@10 from train only | train s | epochs (best) |",
             "|---|---|---|---|---|---|---|---|---|"]

    def num(x):
        return "-" if x is None else f"{x:.4f}"

    for r in sorted(rows, key=lambda r: -r["ndcg10"]):
        lines.append(f"| {r['row']} | `{r['overrides']}` | {r['ndcg10']:.4f} | {r['hit10']:.4f} "
                     f"| {num(r['valid_ndcg10'])} | {r['test_input']} "
                     f"| {num(r.get('ndcg10_train_input'))} | {r['train_seconds']:.0f} "
                     f"| {r['epochs_run']} ({r['best_epoch']}) |")
    return "\n".join(lines)


def render_section(*, command: str, machine: str, table: str) -> str:
    start, end = benchmarks.markers(NAME)
    return f"""{start}
## Next-item on ml-latest-small: SASRec's losses, BERT4Rec, GRU4Rec (scripts/bench_sequential.py)

Machine: {machine} (shared: seconds are indicative).

```
{command}
```

Protocol (`data=ml-latest-small-leave-last`): implicit, each user's latest rating is \
test and the second latest validation; full ranking over all items with train and \
valid items masked; test metrics from the best validated epoch (seed 0). Test is scored \
from train + valid (`protocol_details.test_input`, `jaxrec.metrics.inputs`): SASRec \
predicts `seq[-1]` from `seq[:-1]`; *from train only* scores the same best state's test \
from the training sequence (the protocol before, `seq[-1]` from `seq[:-2]`; MF and \
popularity read no history). Every SASRec row keeps the preset's other settings (lr 0.002, \
batch 64, max_len 100, D 50, 2 blocks); the losses' own settings are their \
`configs/loss` defaults (sampled softmax: 256 popularity candidates with logQ; gBCE: \
k = 256, t = 0.75). BERT4Rec and GRU4Rec rows run their presets (`bert4rec_ml-latest-small`: \
D 64, 2 blocks, 2 heads, mask probability 0.2, max_len 50, lr 0.001, at most 30 epochs; \
`gru4rec_ml-latest-small`: one GRU layer of 100, constrained embedding, in-batch plus 2048 \
popularity^0.5 negatives, max_len 100, lr 0.002, at most 20 epochs): budgets of minutes \
on this CPU, a few hundred Adam steps, far from the papers' training lengths.

{table}
{end}"""


def main(argv=None) -> None:
    args = parse_args(argv)
    data_dir = os.environ.get("JAXREC_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-latest-small").is_dir():
        sys.exit("error: set JAXREC_DATA_DIR to a folder holding ml-latest-small/")
    rows = []
    for row in [r for r in ROWS if not args.only or r in args.only]:
        run_dir = args.out / row
        if args.reuse and same_config(run_dir, ROWS[row]):
            print(f"[{NAME}] {row}: reusing {run_dir}", file=sys.stderr, flush=True)
        else:
            print(f"[{NAME}] {row}: training into {run_dir}", file=sys.stderr, flush=True)
            train_row(row, run_dir)
        rows.append(read_row(row, run_dir))
    table = format_table(rows)
    print(table)
    if args.write:
        import jax

        machine = (f"{os.cpu_count()}-core CPU, {benchmarks.cpu_model()}; jax {jax.__version__}"
                   f", Python {platform.python_version()}")
        shown = sys.argv[1:] if argv is None else argv
        command = "JAXREC_DATA_DIR=<folder with ml-latest-small> python scripts/bench_sequential.py"
        command += "".join(" " + shlex.quote(a) for a in shown)
        benchmarks.write_section(args.doc, render_section(command=command, machine=machine,
                                                          table=table), NAME)
        print(f"[{NAME}] wrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
