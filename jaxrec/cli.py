"""The ``jaxrec`` command.

    jaxrec train [hydra overrides]                  train and evaluate (Hydra CLI)
    jaxrec evaluate RUN_DIR [split=all|test|valid]  re-evaluate a saved best checkpoint
    jaxrec recommend RUN_DIR --user ID [-k 10]      top-k unseen items for a user
    jaxrec data download|info DATASET               fetch or summarise a dataset config
    jaxrec compare RUN_OR_STUDY_DIR... [-m ndcg@10] paired significance tests between runs
    jaxrec sweep SPEC.yaml [overrides]              run a sweep study (grid, random, bayes)
    jaxrec sweep report STUDY_DIR                   rank a study's trials, save plots
    jaxrec --version                                jaxrec, JAX and device versions
"""

from __future__ import annotations

import argparse
import json
import sys

USAGE = __doc__


def _compose_data(name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from jaxrec.config import register_configs
    from jaxrec.paths import CONFIG_DIR

    register_configs()
    available = sorted(p.stem for p in (CONFIG_DIR / "data").glob("*.yaml"))
    if name not in available:
        raise SystemExit(f"error: unknown dataset {name!r}; choose from {', '.join(available)}")
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose("train", overrides=[f"data={name}", "paths.output_dir=.", *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
        raise SystemExit(f"error: {' '.join(str(err).split())}{cause}") from None


def cmd_data(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="jaxrec data")
    parser.add_argument("action", choices=["download", "info"])
    parser.add_argument("dataset", help="a config in configs/data, e.g. ml-latest-small")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. paths.cache_dir=/tmp")
    args = parser.parse_args(argv)
    from jaxrec.data import load_dataset
    from jaxrec.data.summary import summarize

    cfg = _compose_data(args.dataset, args.overrides)
    interactions = load_dataset(cfg.data)
    if args.action == "download":
        print(f"{args.dataset}: {len(interactions)} interactions ready "
              f"(cache: {cfg.paths.cache_dir})")
    else:
        print(summarize(interactions))


def cmd_evaluate(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="jaxrec evaluate")
    parser.add_argument("run_dir")
    parser.add_argument("split", nargs="?", default="split=all",
                        help="split=all (default: every key of the run's results.json), "
                             "split=test or split=valid")
    args = parser.parse_args(argv)
    split = args.split.removeprefix("split=")
    if split not in ("all", "test", "valid"):
        raise SystemExit(f"error: split must be all, test or valid, got {split!r}")
    from jaxrec.assembly import load_run
    from jaxrec.metrics.scoring import evaluate

    loaded = load_run(args.run_dir)
    run = loaded.run
    parts = {"valid": run.valid_evals, "test": run.test_evals}
    if split != "all" and not parts[split]:
        raise SystemExit(f"error: run {args.run_dir} has no {split} split")
    metrics: dict[str, float] = {}
    for name, evaluators in parts.items():
        if split in ("all", name):
            metrics.update(evaluate(evaluators, loaded.graphdef, loaded.state))
    print(json.dumps(metrics, indent=2, sort_keys=True))


def cmd_compare(argv: list[str]) -> None:
    from jaxrec.compare import main as compare_main

    try:
        compare_main(argv)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def cmd_recommend(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="jaxrec recommend")
    parser.add_argument("run_dir")
    parser.add_argument("--user", required=True, help="raw user id as in the dataset")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"-k must be >= 1, got {args.k}")
    from jaxrec.assembly import load_run
    from jaxrec.recommend import recommend

    run = load_run(args.run_dir, evaluate=False)
    for rank, (item_id, title, score) in enumerate(recommend(run, args.user, args.k), 1):
        print(f"{rank:3d}  {item_id!s:>10}  {score:8.4f}  {title}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] in ("-V", "--version"):
        from jaxrec.environment import PACKAGES, git_commit, package_version, version

        commit = git_commit()
        deps = ", ".join(f"{name} {package_version(name) or '-'}" for name in PACKAGES)
        print(f"jaxrec {version()}{f' (git {commit})' if commit else ''}; {deps}")
        return
    command, rest = argv[0], argv[1:]
    if command == "train":  # the Hydra entry point runs as a script: nothing imports it
        import runpy

        sys.argv = [f"{sys.argv[0]} train", *rest]
        runpy.run_module("jaxrec.train", run_name="__main__", alter_sys=True)
        return
    if command == "sweep":
        from jaxrec.sweep.cli import main as sweep_main

        sweep_main(rest)
        return
    commands = {"evaluate": cmd_evaluate, "recommend": cmd_recommend, "data": cmd_data,
                "compare": cmd_compare}
    if command not in commands:
        raise SystemExit(f"error: unknown command {command!r}\n{USAGE}")
    from jaxrec.data.interactions import DataError

    try:
        commands[command](rest)
    except (FileNotFoundError, DataError, ValueError) as err:  # bad input: one line
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
