"""Training-speed benchmark on ml-latest-small, with scikit-surprise's SVD as a peer.

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_train.py [--repeats 3] [--write]

For each configuration (mf/mse at batch 4096 and 1024, mf/bpr, seed_concat/mse)
and each repeat, a fresh subprocess trains for a fixed number of epochs
(``trainer.epochs=E trainer.patience=0``) through ``jaxrec.runner.train`` and
reports seconds per epoch (compile and validation excluded), the AOT compile
time, the median validation time, the time of one full ranking of all users over
all items (train items masked), the process's peak RSS and the final test
metric. Repeats are interleaved across configurations and medians reported.

The peer, Surprise's SVD, never becomes a jaxrec dependency: it lives in its own
venv (created once under ``~/.cache/jaxrec/bench-venvs/surprise`` or
``--peer-venv``) and runs ``scripts/_bench_peer_surprise.py`` on jaxrec's own
default split, written to CSV with raw ids. ``--write`` replaces only this
script's section of ``docs/benchmarks.md`` (between its markers).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
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
PEER_SCRIPT = Path(__file__).resolve().parent / "_bench_peer_surprise.py"
DEFAULT_PEER_VENV = Path("~/.cache/jaxrec/bench-venvs/surprise").expanduser()
MARK_START, MARK_END = benchmarks.markers("bench_train")
RESULT_PREFIX = "BENCH_RESULT "
TARGET_EPOCH_MS = 45.0  # mf/mse epoch, ~80k ratings, dim 64, 2-core CPU
TARGET_RANK_ALL_MS = 100.0  # full ranking of all 610 users over all items


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    key: str
    label: str
    overrides: tuple[str, ...]


CONFIGS = (
    BenchConfig("mf-mse", "mf/mse (default)", ()),
    BenchConfig("mf-mse-b1024", "mf/mse", ("trainer.batch_size=1024",)),
    BenchConfig("mf-bpr", "mf/bpr (implicit)", ("data=ml-latest-small-implicit", "loss=bpr")),
    BenchConfig("mf-mse-lazy", "mf/mse, lazy Adam on every table (optim.sparse=true)",
                ("optim.sparse=true",)),
    BenchConfig("mf-bpr-lazy", "mf/bpr (implicit), lazy Adam on every table (optim.sparse=true)",
                ("data=ml-latest-small-implicit", "loss=bpr", "optim.sparse=true")),
    BenchConfig("seed_concat-mse", "seed_concat/mse", ("model=seed_concat",)),
    BenchConfig("mf-mse-ckpt", "mf/mse, state checkpoint every epoch",
                ("trainer.checkpoint_every=1", "trainer.checkpoint_seconds=0")),
)
TARGET_CHECKPOINT_OVERHEAD = 0.10  # whole training loop with a checkpoint every epoch vs none


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per configuration (median)")
    ap.add_argument("--epochs", type=int, default=20, help="fixed epochs per run")
    ap.add_argument("--only", nargs="+", choices=[c.key for c in CONFIGS],
                    help="configurations to run (default: all)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    ap.add_argument("--no-peer", action="store_true", help="skip the Surprise comparison")
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV,
                    help="venv holding scikit-surprise (created when missing)")
    ap.add_argument("--peer-factors", type=int, default=64,
                    help="Surprise SVD n_factors (64 = jaxrec's dim; Surprise's default is 100)")
    ap.add_argument("--worker", nargs="*", metavar="OVERRIDE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1:
        ap.error("--repeats and --epochs must be >= 1")
    return args


# ---------------------------------------------------------------- worker (one run)

def compose_cfg(overrides, output_dir):
    from jaxrec.api import compose

    return compose(["logger.console=false", "trainer.progress=false",
                    "trainer.save_checkpoint=false", *overrides], output_dir=output_dir)


def split_digest(dataset) -> str:
    """Fingerprint of the train / test rows, to check that every process saw one split."""
    h = hashlib.sha1()
    for part in (dataset.train, dataset.test):
        for arr in (part.users, part.items, part.ratings):
            h.update(arr.tobytes())
    return h.hexdigest()[:12]


def measure(overrides, *, epochs: int, output_dir: str, rank_repeats: int = 5) -> dict:
    """Train one configuration for ``epochs`` epochs and return its timings and metrics."""
    import resource

    import jax
    import numpy as np
    from flax import nnx

    from jaxrec.assembly import assemble
    from jaxrec.metrics.evaluator import make_evaluators
    from jaxrec.metrics.scoring import evaluate
    from jaxrec.runner import train

    cfg = compose_cfg([*overrides, f"trainer.epochs={epochs}", "trainer.patience=0"], output_dir)
    results = train(cfg)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    # One full ranking of every user over every item, train items masked: the
    # evaluator with all held-out (valid + test) rows as targets. Scoring cost does
    # not depend on the parameter values, so a freshly built model is timed.
    run = assemble(cfg, evaluate=False, training=False)
    dataset = run.dataset
    graphdef, params, rest = nnx.split(run.model, nnx.Param, ...)
    rankers = make_evaluators("all", dataset.full, [dataset.train], run.eval_cfg,
                              explicit=False)  # explicit=False: ranking only, no rmse / mae
    evaluate(rankers, graphdef, (params, rest))  # compile
    rank_times = []
    for _ in range(rank_repeats):
        t = time.perf_counter()
        evaluate(rankers, graphdef, (params, rest))
        rank_times.append(time.perf_counter() - t)

    test_key = results["monitor"].replace("valid/", "test/", 1)
    return {
        "seconds_per_epoch": results["seconds_per_epoch"],
        "loop_seconds": results["loop_seconds"],
        "compile_seconds": results["compile_seconds"],
        "eval_seconds": results["eval_seconds"],
        "eval_users": int(len(np.unique(dataset.valid.users))) if dataset.valid else 0,
        "rank_all_seconds": statistics.median(rank_times),
        "rank_all_users": rankers[0].num_users,
        "num_users": dataset.info.num_users,
        "num_items": dataset.info.num_items,
        "peak_rss_mb": peak_mb,
        "test_key": test_key,
        "test_value": results["metrics"][test_key],
        "test_rmse": results["metrics"].get("test/rmse"),
        "best_epoch": results["best_epoch"],
        "epochs_run": results["epochs_run"],
        "train_rows": results["data"]["train"],
        "batch_size": int(cfg.trainer.batch_size),
        "optim": f"{cfg.optim.name} lr {cfg.optim.lr:g}, loss l2 {cfg.loss.get('l2', 0):g}",
        "model": str(cfg.model._target_).rsplit(".", 1)[-1],
        "dim": int(cfg.model.get("dim", cfg.model.get("user_dim", 0))),
        "split_digest": split_digest(dataset),
        "device": str(jax.devices()[0].platform),
    }


def worker_main(overrides, epochs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        print(RESULT_PREFIX + json.dumps(measure(overrides, epochs=epochs, output_dir=out)))


def run_worker(config: BenchConfig, epochs: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--epochs", str(epochs),
           "--worker", *config.overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    return _parse_result(proc, config.key)


def _parse_result(proc: subprocess.CompletedProcess, what: str, prefix: str = RESULT_PREFIX):
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(prefix + "{"):
            return json.loads(line[len(prefix):])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise RuntimeError(f"{what}: exit {proc.returncode}, no result\n{tail}")


# ---------------------------------------------------------------- peer (Surprise)

def ensure_peer_venv(venv: Path, log=print) -> tuple[Path | None, str]:
    """The venv's python with ``surprise`` importable, creating it once; (None, why) if not
    (a second try builds it against cython and numpy<2)."""
    return benchmarks.peer_venv(venv, "surprise", [
        ["scikit-surprise"], ["cython", "numpy<2"],
        ["--no-build-isolation", "scikit-surprise"]], log)

def export_split(out_dir: Path) -> dict:
    """jaxrec's default split (train and test rows, raw ids) as CSV for the peer."""
    from jaxrec.data.pipeline import build_dataset

    cfg = compose_cfg([], out_dir)
    dataset = build_dataset(cfg.data)
    paths = {}
    for name in ("train", "test"):
        part = getattr(dataset, name)
        users, items = part.user_ids[part.users], part.item_ids[part.items]
        path = out_dir / f"{name}.csv"
        with open(path, "w") as f:
            f.writelines(f"{u},{i},{r:g}\n" for u, i, r in
                         zip(users.tolist(), items.tolist(), part.ratings.tolist(), strict=True))
        paths[name] = path
    return {"train": paths["train"], "test": paths["test"], "train_rows": len(dataset.train),
            "valid_rows": len(dataset.valid) if dataset.valid else 0,
            "test_rows": len(dataset.test), "split_digest": split_digest(dataset),
            "rating_min": dataset.info.rating_min, "rating_max": dataset.info.rating_max}


def run_peer(python: Path, split: dict, *, factors: int, epochs: int) -> dict:
    cmd = [str(python), str(PEER_SCRIPT), "--train", str(split["train"]), "--test",
           str(split["test"]), "--factors", str(factors), "--epochs", str(epochs),
           "--rating-min", str(split["rating_min"]), "--rating-max", str(split["rating_max"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    return _parse_result(proc, "surprise SVD", prefix="")


# ---------------------------------------------------------------- summary and doc

def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def summarise(runs: list[dict]) -> dict:
    """Medians over repeats (plus the min / max seconds per epoch)."""
    out = dict(runs[0])
    for key in ("seconds_per_epoch", "loop_seconds", "compile_seconds", "eval_seconds",
                "rank_all_seconds",
                "peak_rss_mb", "test_value", "fit_seconds", "test_rmse", "test_rmse_clipped"):
        if key in out and out[key] is not None:
            out[key] = median_of(runs, key)
    out["spe_min"] = min(r["seconds_per_epoch"] for r in runs)
    out["spe_max"] = max(r["seconds_per_epoch"] for r in runs)
    out["repeats"] = len(runs)
    return out


def format_table(rows: list[tuple[BenchConfig, dict]]) -> str:
    head = ("| config | dim | batch | train rows | ms / epoch (min-max) | compile s "
            "| valid eval ms (users) | rank-all ms (users x items) | peak RSS MiB | test metric |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for cfg, s in rows:
        lines.append(
            f"| {cfg.label} | {s['dim']} | {s['batch_size']} | {s['train_rows']:,} "
            f"| {1e3 * s['seconds_per_epoch']:.1f} ({1e3 * s['spe_min']:.1f}-"
            f"{1e3 * s['spe_max']:.1f}) | {s['compile_seconds']:.2f} "
            f"| {1e3 * s['eval_seconds']:.1f} ({s['eval_users']}) "
            f"| {1e3 * s['rank_all_seconds']:.1f} ({s['rank_all_users']} x {s['num_items']:,}) "
            f"| {s['peak_rss_mb']:.0f} | {s['test_key']} {s['test_value']:.4f} |")
    return "\n".join(lines)


def format_findings(rows: list[tuple[BenchConfig, dict]], peer: dict | None, peer_note: str,
                    *, epochs: int, factors: int) -> str:
    by_key = {cfg.key: s for cfg, s in rows}
    lines = []
    for key in ("mf-mse", "mf-mse-b1024"):
        if key in by_key:
            ms = 1e3 * by_key[key]["seconds_per_epoch"]
            verdict = "meets" if ms <= TARGET_EPOCH_MS else "MISSES"
            lines.append(f"- Target: mf/mse epoch (dim 64, batch {by_key[key]['batch_size']}) "
                         f"<= {TARGET_EPOCH_MS:.0f} ms: {ms:.1f} ms median, {verdict} it "
                         f"({ms / TARGET_EPOCH_MS:.2f}x the target; fastest run "
                         f"{1e3 * by_key[key]['spe_min']:.1f} ms).")
    if "mf-mse" in by_key:
        s = by_key["mf-mse"]
        ms = 1e3 * s["rank_all_seconds"]
        verdict = "meets" if ms < TARGET_RANK_ALL_MS else "MISSES"
        lines.append(f"- Target: full-ranking evaluation of all users over all items "
                     f"< {TARGET_RANK_ALL_MS:.0f} ms: mf ranks {s['rank_all_users']} users x "
                     f"{s['num_items']:,} items in {ms:.1f} ms, {verdict} it.")
    if "mf-mse-ckpt" in by_key and "mf-mse" in by_key:
        on, off = by_key["mf-mse-ckpt"]["loop_seconds"], by_key["mf-mse"]["loop_seconds"]
        overhead = on / off - 1
        verdict = "meets" if overhead <= TARGET_CHECKPOINT_OVERHEAD else "MISSES"
        lines.append(f"- Target: whole training loop (epochs, validation, checkpoint writes) "
                     f"with a state checkpoint after every epoch "
                     f"(`trainer.checkpoint_every=1 trainer.checkpoint_seconds=0`) <= "
                     f"{100 * TARGET_CHECKPOINT_OVERHEAD:.0f}% over none: {on:.2f} s vs "
                     f"{off:.2f} s for {epochs} epochs, {100 * overhead:+.0f}%, {verdict} it "
                     f"({1e3 * (on - off) / epochs:.0f} ms per save). The default "
                     "(`trainer.checkpoint_seconds=60`) saves at most once a minute.")
    fastest = min(s["compile_seconds"] for _, s in rows)
    for cfg, s in rows:
        if s["compile_seconds"] > max(10.0, 5 * fastest):
            lines.append(f"- Compile outlier: {cfg.label} takes {s['compile_seconds']:.1f} s to "
                         f"compile (fastest row {fastest:.1f} s) and peaks at "
                         f"{s['peak_rss_mb']:.0f} MiB RSS.")
    if peer is None:
        lines.append(f"- Peer: {peer_note}")
        return "\n".join(lines)
    lines.append(
        f"- Peer: Surprise {peer['surprise_version']} `SVD(n_factors={factors}, "
        f"n_epochs={epochs})` (biased MF, plain SGD one rating at a time, lr 0.005, reg 0.02; "
        f"n_factors {factors} {'matches jaxrec dim 64' if factors == 64 else '(not 64)'}) "
        f"trained on exactly jaxrec's train rows ({peer['train_rows']:,}; jaxrec's validation "
        f"rows are not used) and tested on the same {peer['test_rows']:,} test rows: "
        f"{1e3 * peer['seconds_per_epoch']:.1f} ms / epoch median "
        f"(fastest {1e3 * peer['spe_min']:.1f} ms; {peer['fit_seconds']:.2f} s fit), "
        f"test RMSE {peer['test_rmse']:.4f} "
        f"({peer['test_rmse_clipped']:.4f} clipped to the rating scale, Surprise's default), "
        f"peak RSS {peer['peak_rss_mb']:.0f} MiB; split {peer['split_check']}. "
        f"jaxrec's mf/mse uses mini-batches with {by_key.get('mf-mse', rows[0][1])['optim']}.")
    for key in ("mf-mse", "mf-mse-b1024"):
        if key not in by_key:
            continue
        s = by_key[key]
        ratio = s["seconds_per_epoch"] / peer["seconds_per_epoch"]
        total = s["compile_seconds"] + epochs * s["seconds_per_epoch"]
        lines.append(
            f"- Ratio jaxrec/Surprise, mf/mse batch {s['batch_size']}: seconds per epoch "
            f"{ratio:.2f} on medians ({'jaxrec faster' if ratio < 1 else 'Surprise faster'}), "
            f"{s['spe_min'] / peer['spe_min']:.2f} on the fastest runs; "
            f"compile + {epochs} epochs vs Surprise fit {total / peer['fit_seconds']:.2f}; "
            f"test RMSE {s['test_rmse']:.4f} vs {peer['test_rmse']:.4f} "
            f"(ratio {s['test_rmse'] / peer['test_rmse']:.3f}).")
    return "\n".join(lines)


def machine_info() -> dict:
    import jax

    cpu = benchmarks.cpu_model()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "nproc": nproc or str(os.cpu_count()), "jax": jax.__version__,
            "python": platform.python_version(), "load": os.getloadavg()}


def render_section(*, command: str, machine: dict, table: str, findings: str,
                   epochs: int, repeats: int, load_end) -> str:
    load = "/".join(f"{x:.1f}" for x in machine["load"])
    load_end = "/".join(f"{x:.1f}" for x in load_end)
    return f"""{MARK_START}
## Training speed (scripts/bench_train.py)

Machine: {machine['nproc']}-core CPU (`nproc` = {machine['nproc']}), {machine['cpu']}; \
jax {machine['jax']}, Python {machine['python']}. Load average (1/5/15 min) {load} at the \
start, {load_end} at the end (the machine is shared: numbers are medians).

```
{command}
```

ml-latest-small, seed 0; {epochs} epochs per run (`trainer.epochs={epochs} \
trainer.patience=0`), median of {repeats} runs per row, each run its own process \
(repeats interleaved across rows). *ms / epoch* excludes the AOT compile and \
validation; *valid eval* is jaxrec's median validation pass (full ranking of the \
users with validation rows, plus RMSE / MAE on explicit data); *rank-all* is one \
full ranking of every user with a held-out row over all items (train items masked, \
top-20 metrics), untrained parameters; *peak RSS* is the process's max RSS (Python, \
JAX and XLA included); *test metric* is the monitored metric on the test split from \
the best validated epoch.

{table}

{findings}
{MARK_END}"""


def replace_section(doc: str, section: str) -> str:
    """``doc`` with this script's marked section replaced (or appended when absent)."""
    return benchmarks.replace_section(doc, section, "bench_train")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker, args.epochs)
        return
    data_dir = os.environ.get("JAXREC_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-latest-small").is_dir():
        sys.exit("error: set JAXREC_DATA_DIR to a folder holding ml-latest-small/")

    def log(msg: str) -> None:
        print(f"[bench_train] {msg}", file=sys.stderr, flush=True)

    machine = machine_info()
    configs = [c for c in CONFIGS if not args.only or c.key in args.only]

    peer_python, peer_note = (None, "skipped (--no-peer)")
    if not args.no_peer:
        peer_python, peer_note = ensure_peer_venv(args.peer_venv, log)
        if peer_python is None:
            log(f"continuing without the peer: {peer_note}")
        else:
            log(f"Surprise venv {args.peer_venv} ({peer_note})")

    runs: dict[str, list[dict]] = {c.key: [] for c in configs}
    peer_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-split-") as tmp:
        split = export_split(Path(tmp)) if peer_python else None
        for rep in range(args.repeats):
            for cfg in configs:
                log(f"repeat {rep + 1}/{args.repeats}: {cfg.key}")
                runs[cfg.key].append(run_worker(cfg, args.epochs))
            if peer_python:
                log(f"repeat {rep + 1}/{args.repeats}: surprise SVD")
                peer_runs.append(run_peer(peer_python, split, factors=args.peer_factors,
                                          epochs=args.epochs))

    rows = [(c, summarise(runs[c.key])) for c in configs]
    peer = None
    if peer_runs:
        peer = summarise(peer_runs)
        jax_digests = {s["split_digest"] for c, s in rows
                       if not any(o.startswith("data=") for o in c.overrides)}
        same = jax_digests == {split["split_digest"]}
        peer["split_check"] = (f"digest {split['split_digest']} matches the jaxrec runs'" if same
                               else f"digest MISMATCH {split['split_digest']} vs {jax_digests}")
    table = format_table(rows)
    findings = format_findings(rows, peer, peer_note, epochs=args.epochs,
                               factors=args.peer_factors)
    shown = sys.argv[1:] if argv is None else argv
    command = "JAXREC_DATA_DIR=<folder with ml-latest-small> python scripts/bench_train.py"
    command += "".join(" " + shlex.quote(a) for a in shown)
    print(f"\n{table}\n\n{findings}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "runs": runs, "peer": peer_runs,
                                         "peer_note": peer_note}, indent=1))
    if args.write:
        section = render_section(command=command, machine=machine, table=table,
                                 findings=findings, epochs=args.epochs, repeats=args.repeats,
                                 load_end=os.getloadavg())
        benchmarks.write_section(args.doc, section, "bench_train")
        log(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
