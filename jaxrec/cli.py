"""The ``jaxrec`` command.

    jaxrec train [hydra overrides]                  train and evaluate (Hydra CLI)
    jaxrec train --dry-run [hydra overrides]        per-device memory plan; trains nothing
    jaxrec evaluate RUN_DIR [split=all|test|valid] [eval overrides]
                                                    re-evaluate a saved best checkpoint
    jaxrec recommend RUN_DIR --user ID [-k 10]      top-k unseen items for a user
        [--history ITEM ...] [--replace]            ... after a live session of items
    jaxrec data list                                the dataset registry's cards
    jaxrec data download|info DATASET|PATH          fetch or summarise a data config or a file
    jaxrec data export RUN_DIR|DATASET --format csv|recbole|adjacency --out DIR
                                                    write the exact split a run trained on
    jaxrec compare RUN_OR_STUDY_DIR... [-m ndcg@10] paired significance tests between runs
    jaxrec sweep SPEC.yaml|NAME [overrides]         run a sweep study (grid, random, bayes)
    jaxrec sweep list                               the sweep specs shipped with jaxrec
    jaxrec sweep report STUDY_DIR                   rank a study's trials, save plots
    jaxrec reproduce PRESET...|--all [--local]      paper presets: published vs jaxrec
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


DATA_USAGE = """
  jaxrec data list                                  the registry's dataset cards
  jaxrec data download DATASET [overrides]          fetch (MovieLens) or parse a dataset config
  jaxrec data info DATASET|PATH [--columns user=COL,item=COL,...] [overrides]
  jaxrec data export RUN_DIR|DATASET --format csv|recbole|adjacency --out DIR [overrides]

DATASET is a config in configs/data (ml-latest-small, table, ...). PATH is a file or a
folder: *.inter (or a folder of them) reads as data=recbole, a folder with train.txt as
data=adjacency, any other file as data=table (format from the extension; .tsv is
tab-separated) with --columns naming its id columns (default user_id, item_id)."""


def _data_source(target: str, columns: str | None) -> tuple[str, list[str]]:
    """``(data config name, overrides)`` for a config name, a file or a folder."""
    from pathlib import Path

    from jaxrec.paths import CONFIG_DIR

    path = Path(target).expanduser()
    if (CONFIG_DIR / "data" / f"{target}.yaml").is_file() and "/" not in target:
        if columns:
            raise SystemExit("error: --columns is for a file; use data.dataset.columns.user=... "
                             "overrides with a data config")
        return target, []
    if not path.exists():
        if "/" not in target and not path.suffix:  # a config name: compose lists the choices
            return target, []
        raise SystemExit(f"error: no such file or folder {target!r} (nor a data config)")
    if path.is_dir() and (path / "train.txt").is_file():
        return "adjacency", [f"data.dataset.dir={path.resolve()}"]
    inters = sorted(path.glob("*.inter")) if path.is_dir() else (
        [path] if path.name.endswith(".inter") else [])
    if inters:
        name = inters[0].name.removesuffix(".inter")
        for part in (".train", ".valid", ".test"):
            name = name.removesuffix(part)
        return "recbole", [f"data.dataset.dir={inters[0].parent.resolve()}",
                           f"data.dataset.name={name}"]
    if path.is_dir():
        raise SystemExit(f"error: folder {target} has neither train.txt (adjacency) nor "
                         "*.inter files (RecBole); give a file for data=table")
    overrides = [f"data.dataset.path={path.resolve()}"]
    if any(s.lower() in (".tsv", ".tab") for s in path.suffixes):
        overrides.append("data.dataset.sep=tab")
    for pair in (columns or "").split(","):
        role, eq, column = pair.partition("=")
        if pair and not (eq and column):
            raise SystemExit(f"error: --columns expects role=column pairs, got {pair!r}")
        if pair:
            overrides.append(f"data.dataset.columns.{role.strip()}={column.strip()}")
    return "table", overrides


def cmd_data(argv: list[str]) -> None:
    try:
        _data_command(argv)
    except OSError as err:  # permission denied, a folder where a file should be: name it
        if isinstance(err, FileNotFoundError) and not err.filename:
            raise
        where = f"{err.filename}: " if err.filename else ""
        raise SystemExit(f"error: {where}{err.strerror or err}") from None


def _data_command(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage:{DATA_USAGE}")
        return
    action, rest = argv[0], argv[1:]
    if action == "list":
        from jaxrec.data.registry import format_cards

        print(format_cards())
        return
    if action not in ("download", "info", "export"):
        raise SystemExit(f"error: unknown data command {action!r}\n{DATA_USAGE}")
    parser = argparse.ArgumentParser(prog=f"jaxrec data {action}", usage=DATA_USAGE)
    parser.add_argument("dataset")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. seed=1")
    if action == "info":
        parser.add_argument("--columns", help="for a file: user=COL,item=COL[,rating=COL,...]")
    if action == "export":
        from jaxrec.data.export import FORMATS

        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, help="folder to write")
        parser.add_argument("--name", help="RecBole file prefix (default: the dataset name)")
    args = parser.parse_intermixed_args(rest)
    if action == "export":
        _export(args)
        return
    from jaxrec.data import load_dataset
    from jaxrec.data.pipeline import load_preprocessed
    from jaxrec.data.summary import summarize

    name, extra = _data_source(args.dataset, getattr(args, "columns", None))
    cfg = _compose_data(name, [*extra, *args.overrides])
    if action == "download":
        _download_into_cache(cfg)
        interactions = load_dataset(cfg.data)
        print(f"{args.dataset}: {len(interactions)} interactions ready "
              f"(cache: {cfg.paths.cache_dir})")
        return
    raw, interactions = load_preprocessed(cfg.data)  # data.preprocess.* overrides apply
    print(summarize(interactions))
    if len(raw) != len(interactions) or raw.num_users != interactions.num_users:
        print(f"{'raw':<14}{len(raw):,} interactions, {raw.num_users:,} users, "
              f"{raw.num_items:,} items before data.preprocess")


def _download_into_cache(cfg) -> None:
    """A MovieLens variant missing from ``paths.data_dir`` is downloaded into the cache,
    where runs then find it (saying so first)."""
    from pathlib import Path

    dataset = cfg.data.dataset
    if not str(dataset.get("_target_", "")).endswith("movielens.load_movielens"):
        return
    variant, data_dir = dataset.variant, dataset.get("data_dir")
    if data_dir is None or (Path(data_dir).expanduser() / variant).exists():
        return
    from jaxrec.data.download import download_movielens

    cache = Path(dataset.cache_dir).expanduser()
    print(f"{variant} is not in data_dir {data_dir}: downloading it into the cache "
          f"{cache / 'movielens' / variant}, where runs will read it", file=sys.stderr)
    download_movielens(variant, cache, **{k: dataset[k] for k in ("base_url", "sha256")
                                          if dataset.get(k)})


def _export(args) -> None:
    """``jaxrec data export``: rebuild the split from a run's config.yaml or a data config."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from jaxrec.data.export import export_split
    from jaxrec.data.pipeline import build_dataset

    run_config = Path(args.dataset).expanduser() / "config.yaml"
    if run_config.is_file():
        if args.overrides:
            raise SystemExit("error: a run dir exports the split it trained on; overrides "
                             "are for a data config")
        data_cfg = OmegaConf.load(run_config).data
    else:
        name, extra = _data_source(args.dataset, None)
        data_cfg = _compose_data(name, [*extra, *args.overrides]).data
    written = export_split(build_dataset(data_cfg), args.format, args.out, name=args.name,
                           source=args.dataset)
    manifest = json.loads(written[-1].read_text())
    print(f"wrote {', '.join(p.name for p in written)} to {Path(args.out).expanduser()} "
          f"({', '.join(f'{k} {v:,}' for k, v in manifest['rows'].items())} rows)")
    print("train on it: jaxrec train " + " ".join(manifest["reload"]) + " model=... loss=...")


def cmd_evaluate(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="jaxrec evaluate", description="Re-score a run's best checkpoint, optionally "
        "under other metrics, cut-offs or protocols (eval=beyond, eval.ks=[5,50]).")
    parser.add_argument("run_dir")
    parser.add_argument("overrides", nargs="*", metavar="split=... | eval...=...",
                        help="split=all (default: every key of the run's results.json), "
                             "split=test or split=valid; eval=<name> or eval.<key>=<value>")
    args = parser.parse_args(argv)
    splits = [o.removeprefix("split=") for o in args.overrides if o.startswith("split=")]
    split = splits[-1] if splits else "all"
    if split not in ("all", "test", "valid"):
        raise SystemExit(f"error: split must be all, test or valid, got {split!r}")
    from jaxrec.api import Recommender

    rec = Recommender.load(args.run_dir,
                           *(o for o in args.overrides if not o.startswith("split=")))
    print(json.dumps(rec.evaluate(split), indent=2, sort_keys=True))


def cmd_compare(argv: list[str]) -> None:
    from jaxrec.compare import main as compare_main

    try:
        compare_main(argv)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def cmd_recommend(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="jaxrec recommend")
    parser.add_argument("run_dir")
    parser.add_argument("--user", help="raw user id as in the dataset")
    parser.add_argument("--history", nargs="+", metavar="ITEM",
                        help="a live session: raw item ids in time order (sequential models "
                        "append it to the user's sequence, fold-in models fold it in)")
    parser.add_argument("--replace", action="store_true",
                        help="the session replaces the user's known history")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"-k must be >= 1, got {args.k}")
    if args.user is None and args.history is None:
        parser.error("give --user, --history or both")
    from jaxrec.assembly import load_run
    from jaxrec.recommend import item_indices, recommend, recommend_session, user_index

    run = load_run(args.run_dir, evaluate=False)
    if args.history is None:
        rows = recommend(run, args.user, args.k, name="--user")
    else:  # a bad id: main prints the ValueError in one line
        user = None if args.user is None else user_index(run, args.user, "--user")
        rows = recommend_session(run, item_indices(run, args.history, "--history item"),
                                 args.k, user=user, replace=args.replace)
    for rank, (item_id, title, score) in enumerate(rows, 1):
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

        rest = ["trainer.dry_run=true" if a == "--dry-run" else a for a in rest]
        sys.argv = [f"{sys.argv[0]} train", *rest]
        runpy.run_module("jaxrec.train", run_name="__main__", alter_sys=True)
        return
    if command == "sweep":
        from jaxrec.sweep.cli import main as sweep_main

        sweep_main(rest)
        return
    if command == "reproduce":
        from jaxrec.paths import CONFIG_DIR
        from jaxrec.reproduce import main as reproduce_main

        doc = CONFIG_DIR.parent / "docs" / "benchmarks.md"  # a checkout's; else --out only
        raise SystemExit(reproduce_main(rest, doc=doc if doc.is_file() else None))
    commands = {"evaluate": cmd_evaluate, "recommend": cmd_recommend, "data": cmd_data,
                "compare": cmd_compare}
    if command not in commands:
        raise SystemExit(f"error: unknown command {command!r}\n{USAGE}")
    from jaxrec.data.interactions import DataError

    try:
        commands[command](rest)
    except (OSError, DataError, ValueError) as err:  # bad input: one line
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
