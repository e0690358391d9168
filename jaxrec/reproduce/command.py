"""``jaxrec reproduce`` (alias ``scripts/reproduce.py``): run the presets, print and write
the table."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from jaxrec.logging.progress import Progress
from jaxrec.reproduce.outputs import SECTION, machine_line, render_section, write_outputs
from jaxrec.reproduce.presets import ReproduceError, paper_presets
from jaxrec.reproduce.runs import run_preset
from jaxrec.reproduce.table import rows_of, text_table


def parse_args(argv: Sequence[str] | None = None, *, prog: str = "jaxrec reproduce"
               ) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Run paper presets; print a paper-vs-jaxrec table.")
    ap.add_argument("presets", nargs="*", metavar="PRESET",
                    help="configs/experiment/paper_*.yaml names (default with --all: every one)")
    ap.add_argument("--all", action="store_true", help="run every paper preset")
    ap.add_argument("--local", action="store_true",
                    help="run on each preset's reproduce.local_data (ml-latest-small)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="Hydra override for every run (repeatable), e.g. trainer.epochs=5")
    ap.add_argument("--out", type=Path, help="output folder (default outputs/reproduce/<time>)")
    ap.add_argument("--write", action="store_true",
                    help="replace this script's section of docs/benchmarks.md")
    ap.add_argument("--doc", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--in-process", action="store_true",
                    help="train in this process instead of one subprocess per run")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the results.json of runs already finished under --out (a run "
                         "that died is trained again)")
    ap.add_argument("--list", action="store_true", help="list the paper presets and exit")
    args = ap.parse_args(argv)
    if not (args.presets or args.all or args.list):
        ap.error("name at least one preset (or --all / --list)")
    return args


def main(argv: Sequence[str] | None = None, *, doc: str | os.PathLike | None = None,
         prog: str = "jaxrec reproduce") -> int:
    """Run the presets, print the table, write the outputs.

    ``doc`` is the ``docs/benchmarks.md`` that ``--write`` updates (``--doc`` wins).
    Returns the exit status: 0, 1 when a run failed, 2 for a bad preset or override.
    """
    args = parse_args(argv, prog=prog)
    if args.list:
        print("\n".join(paper_presets()))
        return 0

    def log(msg: str) -> None:
        print(f"[reproduce] {msg}", file=sys.stderr, flush=True)

    presets = paper_presets() if args.all else list(args.presets)
    out = args.out or Path("outputs") / "reproduce" / time.strftime("%Y-%m-%d_%H-%M-%S")
    shown = list(sys.argv[1:] if argv is None else argv)
    command = prog + "".join(" " + shlex.quote(a) for a in shown)
    runs, rows = [], []
    progress, trained = Progress(len(presets)), {}
    try:
        for preset in presets:
            run = run_preset(preset, out_dir=out, local=args.local, extra=args.overrides,
                             in_process=args.in_process, resume=args.resume, log=log,
                             trained=trained)
            runs.append(run)
            rows += rows_of(run)
            log(f"{preset}: done {progress.step()}")
    except ReproduceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text_table(rows))
    paths = write_outputs(out, rows, runs, command=command)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    if args.write:
        from jaxrec import benchmarks

        doc = args.doc or doc or Path("docs") / "benchmarks.md"
        benchmarks.write_section(doc, render_section(rows, runs, command=command,
                                                     machine=machine_line()), SECTION)
        log(f"wrote {doc}")
    return 1 if any(r.error for r in runs) else 0
