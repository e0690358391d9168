"""``jaxrec compare``: are the differences between runs real? Tables with significance tests.

    jaxrec compare RUN_OR_STUDY_DIR... [-m ndcg@10 ...] [--split test] [--ci auto|seeds|users]
                   [--by-arg] [--json OUT.json]

Every directory given is searched for run dirs (those holding ``results.json``;
a sweep study holds one per trial). Runs are grouped into *systems*: runs whose
configs differ only in the seed (and output paths, names, logging) are seeds
of one system. A system is named after its directory when each directory
holds one system (or with ``--by-arg``), else by the config keys that tell the
systems apart (``model=MF loss=BPR``).

For each metric, a system's row shows the mean and std over its seeds of the
run-level metric, and a 95% percentile bootstrap interval: over seeds when
every system has at least two (``--ci seeds``), else over users of the
seed-averaged per-user values (``--ci users``). For every pair of systems, a
paired t-test and a Wilcoxon signed-rank test over users (per-user values from
``per_user_<split>.parquet``, averaged over the seeds both systems ran, on the
users present in all those runs), with Holm-adjusted p-values over all pairs
(per metric and test) and markers ``*`` / ``**`` / ``***`` for adjusted p below
0.05 / 0.01 / 0.001. Runs evaluated under different protocols are refused.

Each metric's direction comes from the metric itself
(`jaxrec.metrics.higher_is_better`): the report names it, marks the best
system and says which system of each pair is better on average.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jaxrec.metrics.catalog import higher_is_better
from jaxrec.metrics.per_user import ID_COLUMNS
from jaxrec.stats import bootstrap_ci, holm, paired_tests, significance_marker

# Config keys that do not make a different system.
_NOT_SYSTEM = ("seed", "data.split.seed", "name", "paths.", "logger.", "trainer.progress",
               "hydra.")


@dataclasses.dataclass
class Run:
    dir: Path
    arg: str  # the command-line directory it was found under
    seed: int
    config: dict[str, Any]  # flattened, dotted keys
    results: dict[str, Any]
    per_user: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    def frame(self, split: str) -> pd.DataFrame | None:
        if split not in self.per_user:
            path = self.dir / f"per_user_{split}.parquet"
            self.per_user[split] = pd.read_parquet(path) if path.is_file() else None
        return self.per_user[split]


@dataclasses.dataclass
class System:
    label: str
    runs: list[Run]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(node) if isinstance(node, list) else node}


def find_runs(path: str | Path) -> list[Path]:
    """Run dirs (holding ``results.json``) at or below ``path``, sorted."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"compare: {path} is not a directory")
    if (path / "results.json").is_file():
        return [path]
    runs = sorted(p.parent for p in path.rglob("results.json"))
    if not runs:
        raise FileNotFoundError(f"compare: no run (results.json) under {path}")
    return runs


def load_run(run_dir: Path, arg: str) -> Run:
    from omegaconf import OmegaConf

    results = json.loads((run_dir / "results.json").read_text())
    config_path = run_dir / "config.yaml"
    config = (_flatten(OmegaConf.to_container(OmegaConf.load(config_path)))
              if config_path.is_file() else {})
    return Run(run_dir, arg, int(config.get("seed", 0)), config, results)


def _signature(run: Run) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in run.config.items()
                        if not any(k == s or (s.endswith(".") and k.startswith(s))
                                   for s in _NOT_SYSTEM)))


def _short(key: str, value: Any) -> str:
    if key.endswith("._target_"):
        return f"{key[:-len('._target_')]}={str(value).rsplit('.', 1)[-1]}"
    return f"{key}={value}"


def _config_labels(configs: list[dict[str, Any]], max_parts: int = 4) -> list[str]:
    """Short labels from the config keys that tell systems apart.

    A key is shown when the systems that set it (non-null) disagree on its
    value; ``<group>._target_`` is shown as ``<group>=<Class>``. So keys of one
    model class show only where two systems of that class differ.
    """
    keys = sorted({k for c in configs for k in c})
    shown = [k for k in keys
             if len({str(c[k]) for c in configs if c.get(k) is not None}) > 1]
    labels = []
    for c in configs:
        parts = [_short(k, c[k]) for k in shown if c.get(k) is not None]
        labels.append(" ".join(parts[:max_parts]) + (" ..." if len(parts) > max_parts else ""))
    return labels


def group_systems(runs: list[Run], *, by_arg: bool = False) -> list[System]:
    """Runs -> systems (seeds of one configuration), in first-seen order.

    Runs are grouped by config (seed aside). When every directory given holds
    exactly one such group, or with ``by_arg``, each directory is one system
    named after it; otherwise systems are named by the config keys that differ.
    """
    args = list(dict.fromkeys(r.arg for r in runs))
    groups: dict[Any, list[Run]] = {}
    for run in runs:
        groups.setdefault(_signature(run), []).append(run)
    one_per_arg = len(groups) == len(args) and all(
        len({r.arg for r in rs}) == 1 for rs in groups.values())
    if by_arg or (one_per_arg and len(args) > 1) or (len(groups) == 1 and len(args) > 1):
        names = [Path(a).name or a for a in args]
        if len(set(names)) < len(names):
            names = list(args)
        systems = [System(n, [r for r in runs if r.arg == a]) for n, a in zip(names, args,
                                                                               strict=True)]
    else:
        members = list(groups.values())
        labels = _config_labels([dict(_signature(rs[0])) for rs in members])
        if len(set(labels)) < len(labels):
            labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
        systems = [System(label or Path(rs[0].arg).name, rs)
                   for label, rs in zip(labels, members, strict=True)]
    for sys_ in systems:
        seeds = sys_.seeds
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"compare: system {sys_.label!r} has runs with the same seed "
                             f"({', '.join(str(r.dir) for r in sys_.runs)}); pass --by-arg or "
                             "fewer directories")
    return systems


def _protocol(run: Run) -> str:
    return str(run.results.get("protocol", "full_ranking"))


def _run_value(run: Run, key: str, split: str) -> float:
    frame = run.frame(split)
    if frame is not None and key in frame:
        return float(frame[key].mean())
    value = run.results.get("metrics", {}).get(key)
    return float("nan") if value is None else float(value)


def _columns(system: System, key: str, split: str, seeds: list[int] | None
             ) -> dict[int, pd.Series] | None:
    """Seed -> per-user values (indexed by raw user id); None when a run has none."""
    out = {}
    for r in system.runs:
        if seeds is not None and r.seed not in seeds:
            continue
        f = r.frame(split)
        if f is None or key not in f:
            return None
        out[r.seed] = f.set_index("user_id")[key]
    return out


def _user_sample(columns: list[dict[int, pd.Series]]) -> tuple[list[np.ndarray], str]:
    """Aligned samples, one per system, and the unit they are paired on.

    ``users``: the per-user values averaged over seeds, on the users every run
    evaluated (used when they are at least half of the smallest run's users);
    otherwise ``seed x user``: every (seed, user) pair both systems evaluated,
    which needs the same seeds on both sides (strong generalisation draws
    other held-out users per seed).
    """
    series = [s for cols in columns for s in cols.values()]
    common = series[0].index
    for s in series[1:]:
        common = common.intersection(s.index)
    if len(common) >= 0.5 * min(len(s) for s in series) and len(common) > 0:
        common = common.sort_values()
        return [np.mean([s.loc[common].to_numpy(np.float64) for s in cols.values()], axis=0)
                for cols in columns], "users"
    seeds = sorted(set.intersection(*(set(cols) for cols in columns)))
    out: list[list[np.ndarray]] = [[] for _ in columns]
    for seed in seeds:
        users = columns[0][seed].index
        for cols in columns[1:]:
            users = users.intersection(cols[seed].index)
        for i, cols in enumerate(columns):
            out[i].append(cols[seed].loc[users.sort_values()].to_numpy(np.float64))
    return [np.concatenate(o) if o else np.zeros(0) for o in out], "seed x user"


def compare(systems: list[System], metrics: list[str], *, split: str = "test", ci: str = "auto",
            n_resamples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """The comparison as plain data: per-metric system rows and pair rows (see module doc).

    Each metric's block also has ``higher_is_better``, ``best`` (the label of the
    system with the best mean) and, per pair, ``better`` (the label with the
    better mean; None on a tie or without values).

    Raises:
      ValueError: runs under different protocols, or an unknown metric key.
    """
    directions = {key: higher_is_better(key) for key in metrics}  # unknown key: fail first
    protocols = {_protocol(r) for s in systems for r in s.runs}
    if len(protocols) > 1:
        raise ValueError(f"compare: runs were evaluated under different protocols "
                         f"({', '.join(sorted(protocols))}); their metrics are not comparable")
    if ci == "auto":
        ci = "seeds" if all(len(s.runs) >= 2 for s in systems) else "users"
    out: dict[str, Any] = {"split": split, "protocol": protocols.pop(), "ci": ci,
                           "metrics": {}}
    for key in metrics:
        rows = []
        for sys_ in systems:
            values = np.array([_run_value(r, key, split) for r in sys_.runs])
            row = {"system": sys_.label, "seeds": len(values), "mean": float(np.mean(values)),
                   "std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")}
            if ci == "seeds":
                row["ci_low"], row["ci_high"] = bootstrap_ci(values, n_resamples=n_resamples,
                                                             seed=seed)
            else:
                cols = _columns(sys_, key, split, None)
                sample = _user_sample([cols])[0][0] if cols else np.zeros(0)
                row["users"] = len(sample)
                row["ci_low"], row["ci_high"] = bootstrap_ci(sample, n_resamples=n_resamples,
                                                             seed=seed)
            rows.append(row)
        pairs = []
        for a, b in itertools.combinations(systems, 2):
            common = sorted(set(a.seeds) & set(b.seeds))
            cols = [_columns(s, key, split, common or None) for s in (a, b)]
            pair = {"a": a.label, "b": b.label, "seeds": common,
                    "seeds_matched": bool(common)}
            if cols[0] is None or cols[1] is None:
                pair.update(units="-", users=0, mean_diff=float("nan"), t_p=float("nan"),
                            wilcoxon_p=float("nan"))
            else:
                (va, vb), units = _user_sample(cols)
                res = paired_tests(va, vb)
                pair.update(units=units, users=len(va), mean_diff=res.mean_diff,
                            t_stat=res.t_statistic,
                            t_p=res.t_pvalue, wilcoxon_stat=res.wilcoxon_statistic,
                            wilcoxon_p=res.wilcoxon_pvalue)
            pair["better"] = _better(pair, directions[key])
            pairs.append(pair)
        for test in ("t_p", "wilcoxon_p"):
            adjusted = holm([p[test] for p in pairs])
            for p, adj in zip(pairs, adjusted, strict=True):
                p[f"{test}_holm"] = float(adj)
        ranked = [r for r in rows if not math.isnan(r["mean"])]
        sign = 1.0 if directions[key] else -1.0
        best = max(ranked, key=lambda r: sign * r["mean"])["system"] if ranked else None
        out["metrics"][key] = {"higher_is_better": directions[key], "best": best,
                               "systems": rows, "pairs": pairs}
    return out


def _better(pair: dict[str, Any], up: bool) -> str | None:
    """The label of the pair's system with the better mean (None: a tie or no values)."""
    diff = pair["mean_diff"]
    if diff is None or math.isnan(diff) or diff == 0:
        return None
    return pair["a"] if (diff > 0) == up else pair["b"]


def _fmt(x: float, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:.2e}" if x < 1e-3 else f"{x:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths,
                                                                       strict=True)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables: one system table and one pair table per metric."""
    ci_what = ("seeds (run-level values)" if report["ci"] == "seeds"
               else "users (seed-averaged per-user values)")
    parts = [f"protocol: {report['protocol']}   split: {report['split']}   95% CI: percentile "
             f"bootstrap over {ci_what}"]
    for key, block in report["metrics"].items():
        side = "higher" if block["higher_is_better"] else "lower"
        parts.append(f"\n## {key} ({side} is better)\n")
        rows = [[r["system"] + (" (best)" if r["system"] == block["best"] else ""),
                 str(r["seeds"]), _fmt(r["mean"]), _fmt(r["std"]),
                 f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"] for r in block["systems"]]
        parts.append(_table(["system", "seeds", "mean", "std", "95% CI"], rows))
        if block["pairs"]:
            prow = []
            for p in block["pairs"]:
                prow.append([f"{p['a']} vs {p['b']}", f"{p['users']} ({p['units']})",
                             _fmt(p["mean_diff"]), p["better"] or "-",
                             _p(p["t_p_holm"]) + significance_marker(p["t_p_holm"]),
                             _p(p["wilcoxon_p_holm"]) + significance_marker(p["wilcoxon_p_holm"]),
                             ",".join(map(str, p["seeds"])) if p["seeds_matched"]
                             else "unmatched"])
            parts.append("")
            parts.append(_table(["pair", "paired units", "mean diff (a-b)", "better",
                                 "t-test p (Holm)",
                                 "Wilcoxon p (Holm)", "paired seeds"], prow))
    parts.append("\n* p < 0.05, ** p < 0.01, *** p < 0.001 (two-sided, Holm-adjusted over the "
                 "pairs of each metric and test); '-': no per-user values")
    return "\n".join(parts)


def default_metric(run: Run, split: str) -> str:
    """The split's counterpart of the monitored metric when per-user values have it, else the
    first per-user column."""
    key = f"{split}/{str(run.results.get('monitor', '')).split('/', 1)[-1]}"
    frame = run.frame(split)
    columns = [] if frame is None else [c for c in frame.columns if c not in ID_COLUMNS]
    if key in columns or not columns:
        return key
    return columns[0]


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
