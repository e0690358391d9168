"""Model-zoo quality benchmark on ml-latest-small implicit feedback, with implicit's ALS as a peer.

    JAXREC_DATA_DIR=/path/to/data python scripts/bench_zoo.py [--only ease ials] [--write]

Each experiment preset (``ease``, ``ials``, ``popularity``, ``random``, ``multvae``, ``multdae`` and
``mf_bpr``; ``gmf``, ``mlp``, ``neumf``, ``lightgcn``), all
``configs/experiment/<name>_ml-latest-small.yaml``: all ratings
as positives, per-user 80/20 split, 10% of train for validation, seed 0) is
trained once in its own subprocess through ``jaxrec.runner.train`` (checkpoints
off) and reported with its test NDCG@10 and Recall@20 (full ranking, train and
validation items masked, from the best validated epoch), its train seconds
(epochs only: compile and validation excluded), compile seconds, epochs run
(best) and peak RSS.

The peer, the ``implicit`` library's ``AlternatingLeastSquares``, never
becomes a jaxrec dependency: it lives in its own venv (created once under
``~/.cache/jaxrec/bench-venvs/implicit`` or ``--peer-venv``), is fitted twice,
on exactly jaxrec's train rows (exported with jaxrec's indices) and on train +
validation rows, and scored by this script's numpy copy of jaxrec's metric
definitions, with train and validation items masked. When it cannot be
installed the table is written without it.
``--write`` replaces only this script's section of ``docs/benchmarks.md``
(between its markers).
"""

from __future__ import annotations

import argparse
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
DEFAULT_PEER_VENV = Path("~/.cache/jaxrec/bench-venvs/implicit").expanduser()
MARK_START, MARK_END = benchmarks.markers("bench_zoo")
RESULT_PREFIX = "BENCH_ZOO "
PRESETS = ("ease", "ials", "mf_bpr", "multdae", "multvae", "popularity", "random")
PRESETS += ("gmf", "mlp", "neumf", "lightgcn")  # NCF (He et al. 2017), LightGCN
BPR_SPEED_OVERRIDES = ("loss.num_negatives=1", "trainer.epochs=10", "trainer.patience=0")
WORKER_OVERRIDES = ("trainer.progress=false", "logger.console=false",
                    "trainer.save_checkpoint=false")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=PRESETS, help="presets to run (default: all)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    ap.add_argument("--no-peer", action="store_true", help="skip implicit's ALS")
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV,
                    help="venv holding the implicit library (created when missing)")
    ap.add_argument("--peer-factors", type=int, default=64, help="implicit ALS factors")
    ap.add_argument("--peer-iterations", type=int, default=15, help="implicit ALS iterations")
    ap.add_argument("--peer-bpr-iterations", type=int, default=100,
                    help="implicit BPR iterations")
    ap.add_argument("--worker", nargs="+", metavar="PRESET", help=argparse.SUPPRESS)
    ap.add_argument("--peer-split", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer-speed", default="", help=argparse.SUPPRESS)  # ALGO:FACTORS:CG,...
    return ap.parse_args(argv)


# ---------------------------------------------------------------- jaxrec side (one preset)

def compose_cfg(overrides, output_dir):
    from jaxrec.api import compose

    return compose(overrides, output_dir=output_dir)


def split_digest(dataset) -> str:
    """Fingerprint of the train / valid / test rows, to check every process saw one split."""
    import hashlib

    h = hashlib.sha1()
    for part in (dataset.train, dataset.valid, dataset.test):
        for arr in (part.users, part.items):
            h.update(arr.tobytes())
    return h.hexdigest()[:12]


def worker_main(preset: str, extra: list[str]) -> None:
    import resource

    from jaxrec.data.pipeline import build_dataset
    from jaxrec.runner import train

    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as out:
        t = time.perf_counter()
        cfg = compose_cfg([f"experiment={preset}_ml-latest-small", *WORKER_OVERRIDES, *extra],
                          out)
        res = train(cfg)
        wall = time.perf_counter() - t
    m = res["metrics"]
    print(RESULT_PREFIX + json.dumps({
        "preset": preset, "overrides": extra,
        "model": str(cfg.model._target_).rsplit(".", 1)[-1],
        "loss": str(cfg.loss._target_).rsplit(".", 1)[-1],
        "ndcg10": m["test/ndcg@10"], "recall20": m["test/recall@20"],
        "valid_ndcg10": m.get("valid/ndcg@10"),
        "train_seconds": res["seconds_per_epoch"] * res["epochs_run"],
        "seconds_per_epoch": res["seconds_per_epoch"], "eval_seconds": res["eval_seconds"],
        "batch_size": int(cfg.trainer.batch_size),
        "negatives": int(cfg.loss.get("num_negatives", 0) or 0),
        "dim": int(cfg.model.get("dim", 0) or 0),
        "cg_steps": int(cfg.model.get("cg_steps", 0) or 0),
        "compile_seconds": res["compile_seconds"], "wall_seconds": wall,
        "epochs_run": res["epochs_run"], "best_epoch": res["best_epoch"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "split_digest": split_digest(build_dataset(cfg.data)),
    }), flush=True)


def run_worker(preset: str, extra: tuple[str, ...] = ()) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", preset, *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    # the whole process: interpreter, imports, data, compile, training, test (and the
    # worker's split digest, a second data load from its parse cache)
    return {**_parse_result(proc, preset), "process_seconds": time.perf_counter() - t}


def _parse_result(proc: subprocess.CompletedProcess, what: str) -> dict:
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX + "{"):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise RuntimeError(f"{what}: exit {proc.returncode}, no result\n{tail}")


def export_split(path: Path) -> str:
    """The presets' split (jaxrec indices) as ``.npz`` for the peer; returns its digest."""
    import numpy as np

    from jaxrec.data.pipeline import build_dataset

    with tempfile.TemporaryDirectory(prefix="bench-zoo-split-") as out:
        cfg = compose_cfg(["experiment=ials_ml-latest-small", *WORKER_OVERRIDES], out)
    dataset = build_dataset(cfg.data)
    parts = {f"{name}_{col}": getattr(getattr(dataset, name), col)
             for name in ("train", "valid", "test") for col in ("users", "items")}
    np.savez(path, num_users=dataset.info.num_users, num_items=dataset.info.num_items, **parts)
    return split_digest(dataset)


# ---------------------------------------------------------------- peer (implicit's ALS)

def ensure_peer_venv(venv: Path, log=print) -> tuple[Path | None, str]:
    """The venv's python with ``implicit`` importable, creating it once; (None, why) if not."""
    return benchmarks.peer_venv(venv, "implicit, scipy", [["implicit", "scipy", "numpy"]], log)

def speed_fits(rows: list[dict], factors: int) -> str:
    """``ALGO:FACTORS:CG_STEPS,...``: the extra peer fits that time implicit at the jaxrec
    presets' own dimension (and iALS's CG steps) when the quality fit's factors differ."""
    by_preset = {r["preset"]: r for r in rows}
    fits = []
    for preset, (algo, _) in TARGETS.items():
        s = by_preset.get(preset)
        if s is not None and s["dim"] and (s["dim"] != factors or s.get("cg_steps")):
            fits.append(f"{algo}:{s['dim']}:{s.get('cg_steps', 0)}")
    return ",".join(fits)


def run_peer(python: Path, split: Path, *, factors: int, iterations: int,
             bpr_iterations: int, speed: str = "") -> list[dict]:
    cmd = [str(python), str(Path(__file__).resolve()), "--peer-split", str(split),
           "--peer-factors", str(factors), "--peer-iterations", str(iterations),
           "--peer-bpr-iterations", str(bpr_iterations), "--peer-speed", speed]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",  # implicit asks
           # the peer venv has no jaxrec: this script's jaxrec.benchmarks import (stdlib
           # only) comes from the repository
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    return _parse_result(proc, "implicit ALS")["peers"]


def peer_main(split: Path, factors: int, iterations: int, bpr_iterations: int,
              speed: str = "") -> None:
    """Inside the peer venv (numpy, scipy, implicit only): fit ALS and BPR, rank, score like
    jaxrec; ``speed`` (``ALGO:FACTORS:CG_STEPS,...``) adds fits on train at jaxrec's
    dimension and CG steps, for the per-epoch speed ratios."""
    import resource

    import implicit
    import numpy as np
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    z = np.load(split)
    shape = (int(z["num_users"]), int(z["num_items"]))

    def csr(name):
        users, items = z[f"{name}_users"], z[f"{name}_items"]
        m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
        m.data[:] = 1.0  # duplicates count once
        return m

    train, seen = csr("train"), (csr("train") + csr("valid")).tocsr()
    seen.data[:] = 1.0
    # jaxrec's conventions: relevant = distinct test items not seen (train + valid);
    # users without one are skipped; recall@k = hits / R; ndcg@k = DCG / IDCG@min(R, k).
    test = csr("test")
    test = test - test.multiply(seen)
    test.eliminate_zeros()
    discounts = 1.0 / np.log2(np.arange(2, 22))
    results = []
    fits = [("ALS", "train", train, factors, 0), ("ALS", "train+valid", seen, factors, 0),
            ("BPR", "train", train, factors, 0)]
    for spec in filter(None, speed.split(",")):
        algo, dim, cg = spec.split(":")
        fits.append((algo, "train (speed)", train, int(dim), int(cg)))
    for algo, fit_on, fit_matrix, factors, cg_steps in fits:
        if algo == "ALS":
            model = AlternatingLeastSquares(factors=factors, iterations=iterations,
                                            random_state=0)
            if cg_steps:
                model.cg_steps = cg_steps  # implicit's default is 3
        else:  # one sampled negative per training pair and iteration, SGD lr 0.01
            model = BayesianPersonalizedRanking(factors=factors, iterations=bpr_iterations,
                                                random_state=0)
        t = time.perf_counter()
        model.fit(fit_matrix, show_progress=False)
        fit_seconds = time.perf_counter() - t
        if hasattr(model, "to_cpu") and not isinstance(model.user_factors, np.ndarray):
            model = model.to_cpu()
        user_f, item_f = np.asarray(model.user_factors), np.asarray(model.item_factors)
        ndcg, recall = [], []
        for u in np.flatnonzero(np.diff(test.indptr)):
            scores = (user_f[u] @ item_f.T).astype(np.float64)
            scores[seen.indices[seen.indptr[u]:seen.indptr[u + 1]]] = -np.inf
            top = np.argsort(-scores, kind="stable")[:20]
            relevant = set(test.indices[test.indptr[u]:test.indptr[u + 1]].tolist())
            hits = np.array([i in relevant for i in top.tolist()], np.float64)
            r = len(relevant)
            ndcg.append((hits[:10] * discounts[:10]).sum() / discounts[:min(r, 10)].sum())
            recall.append(hits.sum() / r)
        results.append({
            "algo": algo, "fit_on": fit_on, "implicit_version": implicit.__version__,
            "factors": factors, "cg_steps": getattr(model, "cg_steps", None),
            "iterations": model.iterations,
            "seconds_per_iteration": fit_seconds / model.iterations,
            "regularization": model.regularization,
            "alpha": getattr(model, "alpha", None), "ndcg10": float(np.mean(ndcg)),
            "recall20": float(np.mean(recall)), "users": len(ndcg), "train_seconds": fit_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    print(RESULT_PREFIX + json.dumps({"peers": results}), flush=True)


# ---------------------------------------------------------------- table and doc

def format_table(rows: list[dict], peers: list[dict]) -> str:
    head = ("| model | preset / setting | test NDCG@10 | test Recall@20 | train s | compile s "
            "| epochs (best) | peak RSS MiB |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for s in sorted(rows, key=lambda s: -s["ndcg10"]):
        lines.append(
            f"| {s['model']} | `experiment={s['preset']}_ml-latest-small` | {s['ndcg10']:.4f} "
            f"| {s['recall20']:.4f} | {s['train_seconds']:.2f} | {s['compile_seconds']:.2f} "
            f"| {s['epochs_run']} ({s['best_epoch']}) | {s['peak_rss_mb']:.0f} |")
    for peer in peers:
        lines.append(
            f"| implicit {peer['implicit_version']} {peer.get('algo', 'ALS')} (peer) "
            f"| fitted on {peer['fit_on']}; "
            f"factors {peer['factors']}, {peer['iterations']} iterations, reg "
            f"{peer['regularization']:g}, alpha {peer['alpha']} | {peer['ndcg10']:.4f} "
            f"| {peer['recall20']:.4f} "
            f"| {peer['train_seconds']:.2f} | - | {peer['iterations']} | "
            f"{peer['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def findings(rows: list[dict], peers: list[dict]) -> list[str]:
    """One line per closed-form model: its metrics against the best peer fit and popularity."""
    by_preset = {r["preset"]: r for r in rows}
    out = []
    for preset in ("ease", "ials"):
        if preset not in by_preset:
            continue
        s = by_preset[preset]
        parts = []
        for name, ref in ([(f"implicit ALS fitted on {p['fit_on']}", p) for p in peers
                           if p.get("algo", "ALS") == "ALS" and "speed" not in p["fit_on"]]
                          + [("popularity", by_preset.get("popularity"))]):
            if ref is not None:
                parts.append(f"{name} {ref['ndcg10']:.4f} / {ref['recall20']:.4f} "
                             f"({s['ndcg10'] - ref['ndcg10']:+.4f} / "
                             f"{s['recall20'] - ref['recall20']:+.4f})")
        out.append(f"- {s['model']}: NDCG@10 / Recall@20 {s['ndcg10']:.4f} / "
                   f"{s['recall20']:.4f}; vs " + "; ".join(parts) + ".")
    return out


TARGETS = {"mf_bpr": ("BPR", 1.0), "ials": ("ALS", 1.5)}  # jaxrec / implicit, per epoch
TARGET_EASE_EVAL_SECONDS = 0.3


def speed_findings(rows: list[dict], peers: list[dict], speed_rows: list[dict] = ()
                   ) -> list[str]:
    """Per-epoch speed against implicit's (same rows and factors; for BPR the speed row
    with implicit's one negative per positive when there is one), EASE's validation pass,
    and every row's whole-process time."""
    by_preset = {r["preset"]: r for r in rows}
    by_preset.update({r["preset"]: r for r in speed_rows})
    out = []
    for preset, (algo, target) in TARGETS.items():
        s = by_preset.get(preset)
        if s is None or "seconds_per_epoch" not in s:
            continue
        # the fit at jaxrec's dimension (and CG steps) when there is one
        fits = [p for p in peers if p.get("algo", "ALS") == algo
                and p["fit_on"] in ("train", "train (speed)")]
        same = [p for p in fits if p["factors"] == s["dim"]
                and (algo != "ALS" or p.get("cg_steps") == s.get("cg_steps"))]
        peer = (same or fits or [None])[-1]
        if peer is None:
            continue
        ratio = s["seconds_per_epoch"] / peer["seconds_per_iteration"]
        extra = (f" (jaxrec: {s['negatives']} negatives per positive, batch {s['batch_size']}"
                 + (f", the preset with {' '.join(s['overrides'])}" if s.get("overrides") else "")
                 + "; implicit: one negative per positive, one pair at a time)"
                 if algo == "BPR" else
                 f" ({s.get('cg_steps')} / {peer.get('cg_steps')} conjugate-gradient steps)")
        out.append(f"- Speed, {s['model']} ({preset}) vs implicit {algo}, dim {s['dim']} / "
                   f"{peer['factors']} factors, same training rows: "
                   f"{1e3 * s['seconds_per_epoch']:.1f} ms vs "
                   f"{1e3 * peer['seconds_per_iteration']:.1f} ms per epoch, {ratio:.2f}x "
                   f"(target <= {target:g}x: {'met' if ratio <= target else 'not met'})"
                   f"{extra}; test NDCG@10 {s['ndcg10']:.4f} vs {peer['ndcg10']:.4f}.")
    if "ease" in by_preset and "eval_seconds" in by_preset["ease"]:
        e = by_preset["ease"]["eval_seconds"]
        out.append(f"- Speed, EASE validation pass (full ranking of the validation users): "
                   f"{e:.3f} s (target <= {TARGET_EASE_EVAL_SECONDS} s: "
                   f"{'met' if e <= TARGET_EASE_EVAL_SECONDS else 'not met'}); EASE trains one "
                   "epoch, so this one pass includes compiling the evaluator: "
                   "`scripts/bench_ease_eval.py` times warm passes.")
    timed = [r for r in rows if "process_seconds" in r]
    if timed:
        out.append("- Whole process (interpreter start to exit, one run each): " + ", ".join(
            f"{r['preset']} {r['process_seconds']:.1f} s" for r in timed) + ".")
    return out


def machine_info() -> dict:
    cpu = benchmarks.cpu_model()
    import jax

    return {"cpu": cpu, "nproc": os.cpu_count(), "jax": jax.__version__,
            "device": str(jax.devices()[0].platform), "python": platform.python_version(),
            "load": os.getloadavg()}


def render_section(*, command: str, machine: dict, table: str, notes: str, load_end) -> str:
    load = "/".join(f"{x:.1f}" for x in machine["load"])
    load_end = "/".join(f"{x:.1f}" for x in load_end)
    return f"""{MARK_START}
## Model zoo on ml-latest-small, implicit feedback (scripts/bench_zoo.py)

Machine: {machine['nproc']}-core CPU, {machine['cpu']}; jax {machine['jax']} \
({machine['device']}), Python {machine['python']}. Load average (1/5/15 min) {load} at \
the start, {load_end} at the end (the machine is shared: seconds are indicative).

```
{command}
```

Protocol: all 100,836 ratings as positives, per-user 80/20 split with 10% of train \
held out for validation (seed 0), full ranking over all 9,724 items with train and \
validation items masked; test metrics from the best validated epoch. *train s* \
counts the training epochs only (no compile, no validation); each row is one run \
in its own process.

{table}

{notes}
{MARK_END}"""


def replace_section(doc: str, section: str) -> str:
    """``doc`` with this script's marked section replaced (or appended when absent)."""
    return benchmarks.replace_section(doc, section, "bench_zoo")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.peer_split is not None:
        peer_main(args.peer_split, args.peer_factors, args.peer_iterations,
                  args.peer_bpr_iterations, args.peer_speed)
        return
    if args.worker is not None:
        worker_main(args.worker[0], args.worker[1:])
        return
    data_dir = os.environ.get("JAXREC_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-latest-small").is_dir():
        sys.exit("error: set JAXREC_DATA_DIR to a folder holding ml-latest-small/")

    def log(msg: str) -> None:
        print(f"[bench_zoo] {msg}", file=sys.stderr, flush=True)

    machine = machine_info()
    rows = []
    for preset in [p for p in PRESETS if not args.only or p in args.only]:
        log(f"training experiment={preset}_ml-latest-small")
        rows.append(run_worker(preset))
    speed_rows = []
    if not args.only or "mf_bpr" in args.only:  # implicit's BPR draws one negative
        log("timing experiment=mf_bpr_ml-latest-small with one negative per positive")
        speed_rows.append(run_worker("mf_bpr", BPR_SPEED_OVERRIDES))

    peers, notes = [], []
    if args.no_peer:
        notes.append("- Peer: skipped (`--no-peer`).")
    else:
        python, why = ensure_peer_venv(args.peer_venv, log)
        if python is None:
            log(f"continuing without the peer: {why}")
            notes.append(f"- Peer: {why}.")
        else:
            with tempfile.TemporaryDirectory(prefix="bench-zoo-peer-") as tmp:
                split = Path(tmp) / "split.npz"
                digest = export_split(split)
                log(f"fitting implicit's ALS ({why} venv {args.peer_venv})")
                peers = run_peer(python, split, factors=args.peer_factors,
                                 iterations=args.peer_iterations,
                                 bpr_iterations=args.peer_bpr_iterations,
                                 speed=speed_fits(rows, args.peer_factors))
            same = {r["split_digest"] for r in rows} <= {digest}
            notes.append(
                f"- Peer: implicit {peers[0]['implicit_version']} `AlternatingLeastSquares("
                f"factors={args.peer_factors}, iterations={args.peer_iterations}, "
                f"random_state=0)` (library defaults otherwise), scored on the same "
                f"{peers[0]['users']} test users by this script's numpy copy of jaxrec's metric "
                f"definitions (train and validation items masked). *fitted on train* uses "
                f"exactly jaxrec's training rows (the fair comparison); *train+valid* adds the "
                f"validation rows, which jaxrec's models never train on. Split digest {digest} "
                f"{'matches every jaxrec row' if same else 'DIFFERS from a jaxrec row'}.")
    notes.extend(findings(rows, peers))
    notes.extend(speed_findings(rows, peers, speed_rows))
    notes.append("- jaxrec rows run with checkpoints off (`trainer.save_checkpoint=false`); "
                 "EASE's checkpoint holds its 9,724 x 9,724 float32 weights (~380 MB).")
    table = format_table(rows, peers)
    shown = sys.argv[1:] if argv is None else argv
    command = "JAXREC_DATA_DIR=<folder with ml-latest-small> python scripts/bench_zoo.py"
    command += "".join(" " + shlex.quote(a) for a in shown)
    print(f"\n{table}\n\n" + "\n".join(notes))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows, "peers": peers,
                                         "speed_rows": speed_rows},
                                        indent=1))
    if args.write:
        section = render_section(command=command, machine=machine, table=table,
                                 notes="\n".join(notes), load_end=os.getloadavg())
        benchmarks.write_section(args.doc, section, "bench_zoo")
        log(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
