"""``jaxrec sweep report``: the trials ranked by the study's metric, mean/std over seeds, plots.

A study is a ``jaxrec sweep`` folder or a Hydra multirun folder (``jaxrec train -m ...``).

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
from jaxrec.sweep.spec import ReportError

__all__ = ["ReportError", "load_study", "ranked", "report", "save_plots", "seed_summary", "table"]


def load_study(study_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """``(study.json, results.csv as a frame)`` of a study directory, or the same read from
    a Hydra multirun folder (`jaxrec.sweep.multirun`)."""
    from jaxrec.sweep.multirun import is_multirun, load_multirun

    study_dir = Path(study_dir)
    meta_path, csv_path = study_dir / "study.json", study_dir / "results.csv"
    if not meta_path.exists() and study_dir.is_dir() and is_multirun(study_dir):
        return load_multirun(study_dir)
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
                    _log_axis(ax, sorted(x.unique()))
                # mean per value: the trend through the other parameters' (and seeds') spread
                stats = ok.groupby(param)[metric].agg(["mean", "std"])
                ax.plot(stats.index, stats["mean"], color="C1", lw=1.2, label="mean")
                if "seed" in swept and param != "seed":  # +- std over seeds and the rest
                    ax.fill_between(stats.index, stats["mean"] - stats["std"].fillna(0),
                                    stats["mean"] + stats["std"].fillna(0), color="C1",
                                    alpha=0.2, lw=0, label="mean +- std")
                    ax.legend(fontsize=7)
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

    grid = [p for p in swept if p != "seed" and _numeric(ok[p])]
    if len(grid) == 2 and metric in ok and len(ok):
        paths.append(_heatmap(plt, out_dir, meta, ok, *grid))

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


def _log_axis(ax, values: list) -> None:
    """A log x axis labelled at the swept values (up to 8; else decades), no minor labels."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(values) <= 8:
        ax.set_xticks(values, [_label(v) for v in values], rotation=30 if len(values) > 4 else 0)


def _heatmap(plt, out_dir: Path, meta: dict, ok: pd.DataFrame, rows: str, cols: str) -> Path:
    """Mean metric over a 2-D grid of parameters (the other parameters and seeds averaged);
    the best cell outlined."""
    metric = meta["metric"]
    grid = ok.pivot_table(index=rows, columns=cols, values=metric, aggfunc="mean")
    fig, ax = plt.subplots(figsize=(1.2 * len(grid.columns) + 3, 0.6 * len(grid.index) + 2.4))
    cmap = "viridis" if meta["goal"] == "maximize" else "viridis_r"  # bright = good
    image = ax.imshow(grid.values, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [_label(v) for v in grid.columns])
    ax.set_yticks(range(len(grid.index)), [_label(v) for v in grid.index])
    ax.set(xlabel=cols, ylabel=rows, title=f"{meta['name']}: mean {metric}")
    values = grid.values
    best = (values == (pd.DataFrame(values).max().max() if meta["goal"] == "maximize"
                       else pd.DataFrame(values).min().min()))
    for (i, j), v in pd.DataFrame(values).stack().items():
        bright = (image.norm(v) > 0.5) == (meta["goal"] == "maximize")
        ax.text(j, i, f"{v:.4g}", ha="center", va="center", fontsize=8,
                fontweight="bold" if best[i, j] else "normal",
                color="black" if bright else "white")
    fig.colorbar(image, ax=ax, label=metric)
    fig.tight_layout()
    path = out_dir / "metric_heatmap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label(value) -> str:
    return format_value(value.item() if hasattr(value, "item") else value)


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
