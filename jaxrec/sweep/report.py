"""``jaxrec sweep report``: the trials ranked by the study's metric, mean/std over seeds, plots.

Plots (PNG, in ``<study>/report/``): the metric against each swept parameter,
and the learning curves (monitored metric and training loss per epoch, from
each trial's ``metrics.jsonl``) of the best trials. Plotting needs matplotlib
(``pip install 'jaxrec[sweep]'``); the tables do not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from jaxrec.extras import MissingExtra, require
from jaxrec.sweep.expand import format_value


class ReportError(ValueError):
    pass


def load_study(study_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """``(study.json, results.csv as a frame)`` of a study directory."""
    study_dir = Path(study_dir)
    meta_path, csv_path = study_dir / "study.json", study_dir / "results.csv"
    if not meta_path.exists() or not csv_path.exists():
        raise ReportError(f"study dir: {study_dir} has no study.json / results.csv; "
                          "is it a jaxrec sweep?")
    return json.loads(meta_path.read_text()), pd.read_csv(csv_path)


def ranked(meta: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """Completed trials, best first by the study's metric (failed trials last)."""
    metric = meta["metric"]
    if metric not in frame:
        frame = frame.assign(**{metric: math.nan})
    ok = frame[frame["status"] == "ok"].sort_values(metric,
                                                    ascending=meta["goal"] != "maximize")
    return pd.concat([ok, frame[frame["status"] != "ok"]])


def seed_summary(meta: dict, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Mean, std and count of the metric per configuration over seeds (None without seeds)."""
    swept = [p for p in meta.get("swept", []) if p in frame]
    if "seed" not in swept:
        return None
    others = [p for p in swept if p != "seed"]
    ok = frame[frame["status"] == "ok"]
    metric = meta["metric"]
    if ok.empty or metric not in ok:
        return None
    if not others:
        stats = ok[metric].agg(["mean", "std", "count"]).to_frame().T
    else:
        stats = ok.groupby(others, dropna=False)[metric].agg(["mean", "std", "count"])
        stats = stats.reset_index()
    if not (stats["count"] > 1).any():  # every configuration has one seed: nothing to add
        return None
    return stats.sort_values("mean", ascending=meta["goal"] != "maximize")


def table(meta: dict, frame: pd.DataFrame, top: int | None = None) -> str:
    """The ranked trials as a fixed-width text table."""
    metric = meta["metric"]
    swept = [p for p in meta.get("swept", []) if p in frame]
    extra = [c for c in ("test/rmse", "test/ndcg@10", "test/recall@20") if c in frame
             and c != metric]
    cols = ["trial", "status", metric, *extra, *swept, "best_epoch", "wall_seconds"]
    view = ranked(meta, frame)[[c for c in cols if c in frame]]
    if top:
        view = view.head(top)
    return view.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")


def report(study_dir: str | Path, *, top: int = 10, curves: int = 5,
           plots: bool = True) -> str:
    """Print-ready text of the study, and (``plots``) its PNGs under ``<study>/report``."""
    study_dir = Path(study_dir)
    meta, frame = load_study(study_dir)
    n_ok = int((frame["status"] == "ok").sum())
    goal = "lower" if meta["goal"] != "maximize" else "higher"
    lines = [f"study {meta['name']}-{meta['id']} ({meta['method']}): {len(frame)} trials, "
             f"{n_ok} ok; {meta['metric']}, {goal} is better"]
    if "fixed" in meta:  # what every trial shares: the study's identity
        lines.append(f"fixed (not swept): {' '.join(meta['fixed']) or 'none'}")
    lines += ["", table(meta, frame, top)]
    seeds = seed_summary(meta, frame)
    if seeds is not None:
        lines += ["", f"{meta['metric']} over seeds (mean, std, count):",
                  seeds.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
    bad = frame[frame["status"] != "ok"]
    for _, row in bad.iterrows():
        lines.append(f"{row['trial']}: {row['status']}: {row.get('error', '')}")
    if plots:
        try:
            paths = save_plots(study_dir, meta, frame, curves=curves)
        except MissingExtra as err:
            lines += ["", f"plots skipped: {err} (or pass --no-plots)"]
        else:
            lines += ["", "plots: " + ", ".join(str(p) for p in paths)]
    return "\n".join(lines)


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def save_plots(study_dir: Path, meta: dict, frame: pd.DataFrame, *, curves: int = 5
               ) -> list[Path]:
    matplotlib = require("matplotlib", extra="sweep", purpose="jaxrec sweep report plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = study_dir / "report"
    out_dir.mkdir(exist_ok=True)
    metric = meta["metric"]
    ok = frame[frame["status"] == "ok"]
    paths = []
    swept = [p for p in meta.get("swept", []) if p in frame]
    if swept and metric in ok:
        fig, axes = plt.subplots(1, len(swept), figsize=(4.2 * len(swept), 3.6), squeeze=False)
        for ax, param in zip(axes[0], swept, strict=True):
            x = ok[param]
            if _numeric(x):
                ax.scatter(x, ok[metric], s=22, alpha=0.8)
                positive = x[x > 0]
                if len(positive) == len(x) and len(x) and x.max() / x.min() >= 8:
                    ax.set_xscale("log")
                # mean per value: the trend through the other parameters' spread
                means = ok.groupby(param)[metric].mean()
                ax.plot(means.index, means.values, color="C1", lw=1.2, label="mean")
            else:
                labels = x.astype(str)
                order = sorted(labels.unique())
                ax.scatter([order.index(v) for v in labels], ok[metric], s=22, alpha=0.8)
                ax.set_xticks(range(len(order)), order, rotation=20)
            ax.set_xlabel(param)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{meta['name']}: {metric} per parameter")
        fig.tight_layout()
        path = out_dir / "metric_vs_params.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    best = ranked(meta, frame)
    best = best[best["status"] == "ok"].head(curves)
    histories = {row["trial"]: _history(Path(row["run_dir"]) / "metrics.jsonl")
                 for _, row in best.iterrows() if isinstance(row.get("run_dir"), str)}
    if histories:
        fig, (ax_m, ax_l) = plt.subplots(1, 2, figsize=(10, 3.8))
        for (_, row), (trial, hist) in zip(best.iterrows(), histories.items(), strict=True):
            label = f"{trial} " + " ".join(f"{p.split('.')[-1]}={format_value(row[p])}"
                                           for p in swept)
            steps = [h["step"] for h in hist if metric in h]
            ax_m.plot(steps, [h[metric] for h in hist if metric in h], marker=".", label=label)
            steps = [h["step"] for h in hist if "train/loss" in h]
            ax_l.plot(steps, [h["train/loss"] for h in hist if "train/loss" in h], label=label)
        ax_m.set(xlabel="epoch", ylabel=metric, title=f"best {len(histories)} trials")
        ax_l.set(xlabel="epoch", ylabel="train/loss", yscale="log")
        for ax in (ax_m, ax_l):
            ax.grid(alpha=0.3)
        ax_m.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "learning_curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows.append({k: (float(v) if isinstance(v, str) and k != "step" else v)
                     for k, v in row.items()})
    return rows
