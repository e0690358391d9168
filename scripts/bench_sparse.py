"""Row-sparse vs dense optimiser updates: one epoch's time, A/B in one process.

    JAXREC_DATA_DIR=<data> python scripts/bench_sparse.py [--repeats 5] [OVERRIDE ...]

Builds the run of the overrides (default: mf/bpr on ml-latest-small-implicit) twice
on one dataset, with ``optim.sparse=true`` (or ``--sparse auto``) and ``false``,
compiles each one's epoch
(`jaxrec.training.step.make_epoch_fn`), then times the two epochs alternately
(A B A B ...) on the same batch order, so both see the same load on a shared
machine, and prints the minimum and median seconds per epoch of each and their
ratio. Compile and validation are excluded. For the scaling data of
`scripts/bench_scale.py` pass its overrides (e.g. ``data=synthetic ...``).
"""

from __future__ import annotations

import argparse
import statistics
import time

DEFAULT = ["data=ml-latest-small-implicit", "loss=bpr"]


def build(overrides: list[str], sparse: str, dataset=None):
    import jax
    import numpy as np

    from jaxrec.api import compose
    from jaxrec.assembly import assemble
    from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step

    cfg = compose(["logger.console=false", *overrides, f"optim.sparse={sparse}"],
                  output_dir="/tmp/bench-sparse")
    run = assemble(cfg, dataset=dataset, evaluate=False)
    graphdef, state = init_state(run.model, run.tx)
    data = run.train_data()
    epoch = make_epoch_fn(make_train_step(graphdef, run.loss, run.tx))
    perm, mask = epoch_order(np.random.default_rng(0), data.num_rows, run.trainer.batch_size)
    args = (data, {}, perm, mask, jax.random.key(0))
    state, value = epoch(state, *args)  # compile
    jax.block_until_ready(value)
    return epoch, state, args, type(run.tx).__name__, len(run.dataset.train), run.dataset


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sparse", choices=["true", "auto"], default="true",
                    help="optim.sparse of the row-sparse side (auto: small tables dense)")
    ap.add_argument("overrides", nargs="*", default=DEFAULT)
    args = ap.parse_args(argv)
    import jax

    runs = {"true": build(args.overrides, args.sparse)}
    runs["false"] = build(args.overrides, "false", dataset=runs["true"][5])
    states = {s: r[1] for s, r in runs.items()}
    times: dict[str, list[float]] = {s: [] for s in runs}
    for _ in range(args.repeats):
        for s, (epoch, _, rest, *_) in runs.items():
            t = time.perf_counter()
            states[s], value = epoch(states[s], *rest)
            jax.block_until_ready(value)
            times[s].append(time.perf_counter() - t)
    rows = runs["true"][4]
    lines = [f"{label:10s} ({runs[s][3]}): min {min(times[s]):.3f} s/epoch, median "
             f"{statistics.median(times[s]):.3f} s ({args.repeats} epochs, {rows:,} rows)"
             for s, label in (("true", f"sparse={args.sparse}"), ("false", "dense"))]
    lines.append(f"dense / sparse={args.sparse}: "
                 f"{min(times['false']) / min(times['true']):.2f}x on minima, "
                 f"{statistics.median(times['false']) / statistics.median(times['true']):.2f}x"
                 " on medians")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
