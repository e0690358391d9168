"""``jaxrec compare``: are the differences between runs real? Tables with significance tests.

The ``jaxrec compare`` command line; what it computes is in `jaxrec.compare`.
"""

from __future__ import annotations

import argparse

from jaxrec.compare.report import format_report
from jaxrec.compare.runs import default_metric, find_runs, group_systems, load_run
from jaxrec.compare.statistics import compare


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="jaxrec compare", description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", help="run dirs or study dirs")
    parser.add_argument("-m", "--metric", action="append", default=[],
                        help="metric key, e.g. ndcg@10 or test/ndcg@10 (repeatable)")
    parser.add_argument("--split", default="test", choices=["test", "valid"])
    parser.add_argument("--ci", default="auto", choices=["auto", "seeds", "users"])
    parser.add_argument("--by-arg", action="store_true", help="one system per directory given")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    parser.add_argument("--json", help="also write the comparison as JSON here")
    parser.add_argument("--plot", help="also plot each system's interval per metric (PNG)")
    args = parser.parse_args(argv)

    runs = [load_run(d, arg) for arg in args.dirs for d in find_runs(arg)]
    systems = group_systems(runs, by_arg=args.by_arg)
    metrics = [m if "/" in m else f"{args.split}/{m}" for m in args.metric] or [
        default_metric(runs[0], args.split)]
    report = compare(systems, metrics, split=args.split, ci=args.ci,
                     n_resamples=args.resamples)
    print(format_report(report))
    if args.json:
        from jaxrec.io import atomic_write_json

        atomic_write_json(args.json, report)
    if args.plot:
        from jaxrec.compare.report import save_plot

        print(f"plot: {save_plot(report, args.plot)}")
