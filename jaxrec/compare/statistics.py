"""The comparison as plain data: per-system means, stds and bootstrap intervals, paired
tests over users for every pair of systems, Holm-adjusted."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from jaxrec.compare.runs import Run, System
from jaxrec.metrics.catalog import higher_is_better
from jaxrec.stats import bootstrap_ci, holm, paired_tests


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
