"""``jaxrec sweep``: run a study from a sweep file, or report on a study directory.

    jaxrec sweep SPEC.yaml|NAME [sweep.OPTION=VALUE ...] [hydra/launcher=...] [TRAIN OVERRIDES]
    jaxrec sweep list
    jaxrec sweep report STUDY_DIR [--top N] [--curves N] [--no-plots]

NAME is a spec shipped with jaxrec (``jaxrec sweep list``), e.g. ``jaxrec sweep mf_lr_l2``.
Sweep options (``sweep.<name>=value``): dir, seed, run_cap, vectorize, max_group,
group_memory_mb, wandb, retry_failed, startup_trials. Running the same command
again resumes the study in its directory, skipping completed trials.

The first trial's config, data and logger are checked before any trial runs (an error
every trial would hit stops the study with one line); the exit status is 1 when any
trial failed (diverged trials are results, not failures).
"""

from __future__ import annotations

import argparse
import sys

USAGE = __doc__


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] == "report":
        parser = argparse.ArgumentParser(prog="jaxrec sweep report")
        parser.add_argument("study_dir")
        parser.add_argument("--top", type=int, default=20, help="rows of the ranked table")
        parser.add_argument("--curves", type=int, default=5, help="learning curves plotted")
        parser.add_argument("--no-plots", action="store_true")
        args = parser.parse_args(argv[1:])
        from jaxrec.sweep.report import ReportError, report

        try:
            print(report(args.study_dir, top=args.top, curves=args.curves,
                         plots=not args.no_plots))
        except ReportError as err:
            raise SystemExit(f"error: {err}") from None
        return
    if argv[0] == "list":
        from jaxrec.paths import SWEEPS_DIR
        from jaxrec.sweep.spec import packaged_specs

        for name in packaged_specs():
            lines = (SWEEPS_DIR / f"{name}.yaml").read_text().splitlines()
            header = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")), "")
            print(f"{name:<16}{header}")
        return
    from jaxrec.extras import MissingExtra
    from jaxrec.sweep.api import run_sweep
    from jaxrec.sweep.report import report
    from jaxrec.sweep.spec import SpecError
    from jaxrec.training.resume import Preempted
    from jaxrec.training.signals import EXIT_CODES

    try:
        study = run_sweep(argv[0], argv[1:])
    except (SpecError, MissingExtra) as err:
        raise SystemExit(f"error: {err}") from None
    except Preempted as err:  # checkpoints written: the same command resumes the study
        print(f"stopped: {err}", file=sys.stderr)
        raise SystemExit(EXIT_CODES.get(getattr(err, "signum", None), 75)) from None
    print(report(study.dir, top=10, plots=False))
    print(f"\nresults: {study.dir / 'results.csv'}   report: jaxrec sweep report {study.dir}",
          file=sys.stderr)
    failed = study.failed()
    if failed:  # a study with failed trials is not a success: scripts and CI must see it
        first = failed[0]
        raise SystemExit(f"error: {len(failed)} of {len(study.records())} trial(s) failed "
                         f"(first: {first['trial']}: {first.get('error')})")
