"""LightGCN seconds per epoch against RecBole's LightGCN, on the same ml-1m-sized split.

    python scripts/bench_lightgcn.py [--epochs 2] [--write] [--json F]

Data: sparse synthetic implicit data with ml-1m's shape (6,040 users x 3,706 items x 165
interactions per user = 996,600 rows, Zipf item popularity; ``data=synthetic``), a
random 80/20 split without validation. Both sides train LightGCN with RecBole's
defaults: 64-dimensional embeddings, 2 layers, BPR with one uniform negative per
positive, batch 2,048, Adam with learning rate 0.001 and an L2 weight of 1e-5, on
exactly the same training rows (this script exports jaxrec's split as RecBole atomic
files).

jaxrec: one subprocess through ``jaxrec.api.run``; *s / epoch* is the run's
``seconds_per_epoch`` (compile and evaluation excluded). RecBole: its own venv
(``~/.cache/jaxrec/bench-venvs/recbole``, created once with ``pip install torch recbole
'numpy<2' 'pandas<2.3' 'scipy<1.12'``: RecBole 1.2 uses ``np.float_`` and
``dok_matrix._update``;
never a jaxrec dependency) runs ``scripts/_bench_peer_recbole.py``, which times each
``Trainer._train_epoch`` call. Target (the performance issue): jaxrec <= 0.1x RecBole's
seconds per epoch. ``--write`` replaces this script's section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaxrec import benchmarks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
NAME = "bench_lightgcn"
RESULT_PREFIX = "BENCH_LIGHTGCN "
PEER_SCRIPT = Path(__file__).resolve().parent / "_bench_peer_recbole.py"
DEFAULT_PEER_VENV = Path("~/.cache/jaxrec/bench-venvs/recbole").expanduser()
TARGET = 0.1  # jaxrec / RecBole seconds per epoch
PEER_INSTALL = ["torch", "recbole", "numpy<2", "pandas<2.3", "scipy<1.12"]
SHAPE = {"users": 6040, "items": 3706, "per_user": 165}  # ml-1m: 6,040 x 3,706, ~1M ratings
SETTING = {"dim": 64, "layers": 2, "batch_size": 2048, "lr": 0.001, "reg": 1e-5}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed on each side")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    ap.add_argument("--no-peer", action="store_true", help="skip RecBole")
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV,
                    help="venv holding torch and recbole (created when missing)")
    ap.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")
    return args


def overrides(epochs: int) -> list[str]:
    s = SETTING
    return ["data=synthetic", f"data.dataset.num_users={SHAPE['users']}",
            f"data.dataset.num_items={SHAPE['items']}",
            f"data.dataset.interactions_per_user={SHAPE['per_user']}",
            "data.dataset.popularity=1.0", "data.dataset.sparse=true",
            "data.preprocess.implicit=true", "data.split.valid=0", "model=lightgcn",
            f"model.dim={s['dim']}", f"model.num_layers={s['layers']}", "loss=bpr",
            "loss.num_negatives=1", f"loss.l2={s['reg']}", f"optim.lr={s['lr']}",
            f"trainer.batch_size={s['batch_size']}", f"trainer.epochs={epochs}",
            "trainer.patience=0", "trainer.checkpoint_every=0", "trainer.save_checkpoint=false",
            "trainer.progress=false", "eval.save_per_user=false", "eval.metrics=[ndcg]",
            "eval.ks=[10]", "logger.console=false"]


# ---------------------------------------------------------------- jaxrec side

def worker_main(out: Path, epochs: int) -> None:
    """Train in this process; export the split for the peer; print the measurements."""
    from jaxrec.api import compose
    from jaxrec.data.pipeline import build_dataset
    from jaxrec.runner import train

    cfg = compose(overrides(epochs), output_dir=out / "run")
    res = train(cfg)
    dataset = build_dataset(cfg.data)
    folder = out / "recbole" / "bench"
    folder.mkdir(parents=True)
    for name, part in (("train", dataset.train), ("valid", dataset.test),
                       ("test", dataset.test)):  # RecBole wants all three; only train is used
        pairs = zip(part.users.tolist(), part.items.tolist(), strict=True)
        lines = [f"{u}\t{i}" for u, i in pairs]
        (folder / f"bench.{name}.inter").write_text(
            "user_id:token\titem_id:token\n" + "\n".join(lines) + "\n")
    print(RESULT_PREFIX + json.dumps({
        "seconds_per_epoch": res["seconds_per_epoch"], "compile_seconds": res["compile_seconds"],
        "epochs": res["epochs_run"], "train_rows": len(dataset.train),
        "test_ndcg10": res["metrics"].get("test/ndcg@10"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def run_jaxrec(out: Path, epochs: int) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(out),
                           "--epochs", str(epochs)], capture_output=True, text=True,
                          timeout=3600)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return {**json.loads(line[len(RESULT_PREFIX):]),
                    "process_seconds": time.perf_counter() - t}
    raise RuntimeError(f"jaxrec worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def run_peer(python: Path, data: Path, epochs: int) -> dict:
    s = SETTING
    cmd = [str(python), str(PEER_SCRIPT), "--data", str(data), "--epochs", str(epochs),
           "--dim", str(s["dim"]), "--layers", str(s["layers"]),
           "--batch-size", str(s["batch_size"]), "--lr", str(s["lr"]), "--reg", str(s["reg"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"RecBole peer failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


# ---------------------------------------------------------------- report

def findings(jax_row: dict, peer: dict | None, peer_note: str) -> list[str]:
    lines = [f"- jaxrec: {jax_row['seconds_per_epoch']:.2f} s per epoch over "
             f"{jax_row['train_rows']:,} training rows (compile {jax_row['compile_seconds']:.1f} s,"
             f" whole process {jax_row['process_seconds']:.0f} s, peak RSS "
             f"{jax_row['peak_rss_mb']:.0f} MiB)."]
    if peer is None:
        return lines + [f"- Peer: {peer_note}"]
    peer_epoch = statistics.median(peer["epoch_seconds"])
    ratio = jax_row["seconds_per_epoch"] / peer_epoch
    lines += [
        f"- RecBole {peer['recbole_version']} (torch {peer['torch_version']}, "
        f"{peer['torch_threads']} threads): {peer_epoch:.2f} s per epoch (median of "
        + ", ".join(f"{x:.2f}" for x in peer["epoch_seconds"])
        + f") over {peer['train_rows']:,} rows; peak RSS {peer['peak_rss_mb']:.0f} MiB.",
        f"- Target: jaxrec <= {TARGET:g}x RecBole per epoch: {ratio:.3f}x, "
        f"{'met' if ratio <= TARGET else 'not met'}."]
    if peer["train_rows"] != jax_row["train_rows"]:
        lines.append(f"- WARNING: RecBole read {peer['train_rows']:,} rows, jaxrec trained on "
                     f"{jax_row['train_rows']:,}.")
    return lines


def render(command: str, lines: list[str], load_start, load_end) -> str:
    start, end = benchmarks.markers(NAME)
    load = ["/".join(f"{x:.1f}" for x in ld) for ld in (load_start, load_end)]
    return (f"{start}\n## LightGCN against RecBole on an ml-1m-sized split "
            f"(scripts/bench_lightgcn.py)\n\nMachine: {os.cpu_count()}-core CPU, "
            f"{benchmarks.cpu_model()}; Python {platform.python_version()}. Load average "
            f"(1/5/15 min) {load[0]} at the start, {load[1]} at the end.\n\n```\n{command}\n"
            f"```\n\nSynthetic implicit data of ml-1m's shape ({SHAPE['users']:,} users x "
            f"{SHAPE['items']:,} items x {SHAPE['per_user']} interactions per user, Zipf "
            "popularity), random 80/20 split; both sides: LightGCN, 64 dimensions, 2 layers, "
            "BPR with one uniform negative, batch 2,048, Adam lr 0.001, L2 1e-5, the same "
            "training rows. Seconds per epoch exclude compilation and evaluation.\n\n"
            + "\n".join(lines) + f"\n{end}")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker_main(Path(args.worker), args.epochs)
        return

    def log(msg: str) -> None:
        print(f"[bench_lightgcn] {msg}", file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    peer, note = None, "skipped (`--no-peer`)."
    with tempfile.TemporaryDirectory(prefix="bench-lightgcn-") as tmp:
        log(f"jaxrec: {args.epochs} epochs")
        row = run_jaxrec(Path(tmp), args.epochs)
        if not args.no_peer:
            python, why = benchmarks.peer_venv(args.peer_venv, "torch, recbole", [PEER_INSTALL],
                                               log)
            if python is None:
                note = f"{why}."
            else:
                log(f"RecBole ({why} venv {args.peer_venv}): {args.epochs} epochs")
                try:
                    peer = run_peer(python, Path(tmp) / "recbole", args.epochs)
                except RuntimeError as err:  # the jaxrec row still counts
                    log(str(err))
                    note = f"RecBole failed: {str(err).splitlines()[-1]}"
    lines = findings(row, peer, note)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"jaxrec": row, "recbole": peer}, indent=1))
    if args.write:
        shown = sys.argv[1:] if argv is None else argv
        command = "python scripts/bench_lightgcn.py" + "".join(" " + shlex.quote(a)
                                                              for a in shown)
        benchmarks.write_section(args.doc, render(command, lines, load_start, os.getloadavg()),
                                 NAME)
        log(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
