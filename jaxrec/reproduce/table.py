"""The paper-vs-jaxrec table: rows per (preset, metric), fold statistics, tolerance
verdicts, and the table as markdown, aligned text and plain records."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from jaxrec.reproduce.presets import ReproduceError
from jaxrec.reproduce.runs import PresetRun

OTHER_DATASET = "n/a (other dataset)"


@dataclasses.dataclass
class Row:
    """One (preset, metric) line of the table."""

    preset: str
    paper_dataset: str
    dataset_run: str
    protocol: str
    metric: str
    published: float
    mean: float | None
    std: float | None
    folds: int
    tolerance: float | None
    local: bool
    error: str | None = None

    @property
    def delta(self) -> float | None:
        return None if self.mean is None else self.mean - self.published

    @property
    def within(self) -> bool | None:
        """|mean - published| <= tolerance; None where it is not judged (local, no tolerance)."""
        if self.local or self.tolerance is None or self.mean is None:
            return None
        return within_tolerance(self.mean, self.published, self.tolerance)

    def verdict(self) -> str:
        if self.error is not None:
            return "failed"
        if self.local:
            return OTHER_DATASET
        if self.tolerance is None:
            return "n/a (no tolerance)"
        return f"{'yes' if self.within else 'no'} (±{self.tolerance:g})"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0, as Surprise reports over folds)."""
    if not values:
        raise ValueError("mean_std of no values")
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def within_tolerance(value: float, published: float, tolerance: float) -> bool:
    """``|value - published| <= tolerance``, up to float rounding of the inputs."""
    return abs(value - published) <= tolerance + 1e-9


RATING_METRICS = ("rmse", "mae")


def protocol_of(results: dict[str, Any], split_method: str | None = None,
                metric: str | None = None) -> str:
    """``results.json``'s protocol name (``rating`` for RMSE / MAE, which score the held-out
    ratings whatever the ranking protocol), with the split method when known."""
    name = str(results.get("protocol", "unknown"))
    if metric is not None and metric.split("/")[-1].split("@")[0] in RATING_METRICS:
        name = "rating"
    return f"{name}, split={split_method}" if split_method else name


def rows_of(run: PresetRun) -> list[Row]:
    """The table rows of one preset: one per published metric.

    Raises ReproduceError when a run's results lack a published metric key.
    """
    published = run.reproduce.published
    tolerance = run.reproduce.tolerance
    rows = []
    for metric, value in published.items():
        protocol = protocol_of(run.results[0], run.split_method, metric) if run.results else "-"
        mean = std = None
        if run.error is None:
            values = []
            for k, results in enumerate(run.results):
                metrics = results.get("metrics", {})
                if metric not in metrics:
                    raise ReproduceError(
                        f"{run.preset}: run {run.run_dirs[k]} has no metric {metric!r} (it has "
                        f"{', '.join(sorted(metrics)) or 'none'}); fix reproduce.published")
                values.append(float(metrics[metric]))
            mean, std = mean_std(values)
        rows.append(Row(preset=run.preset, paper_dataset=run.reproduce.dataset,
                        dataset_run=run.dataset_run, protocol=protocol, metric=metric,
                        published=float(value), mean=mean, std=std, folds=len(run.results),
                        tolerance=None if metric not in tolerance else float(tolerance[metric]),
                        local=run.local, error=run.error))
    return rows


def fmt_value(row: Row) -> str:
    if row.error is not None:
        return f"failed: {row.error[:120]}"
    if row.folds > 1:
        return f"{row.mean:.4f} ± {row.std:.4f} ({row.folds} folds)"
    return f"{row.mean:.4f}"


HEADER = ("preset", "paper dataset", "dataset run", "protocol", "metric", "published",
          "jaxrec", "delta", "within tolerance")


def table_cells(row: Row) -> list[str]:
    delta = "-" if row.delta is None else f"{row.delta:+.4f}"
    return [row.preset, row.paper_dataset, row.dataset_run, row.protocol, row.metric,
            f"{row.published:.4f}", fmt_value(row), delta, row.verdict()]


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in table_cells(r)) + " |"
              for r in rows]
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    """The table aligned in columns, for the terminal."""
    cells = [list(HEADER)] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def record(row: Row) -> dict[str, Any]:
    """One row as plain values (CSV / JSON)."""
    return {"preset": row.preset, "paper_dataset": row.paper_dataset,
            "dataset_run": row.dataset_run, "protocol": row.protocol, "metric": row.metric,
            "published": row.published, "jaxrec_mean": row.mean, "jaxrec_std": row.std,
            "folds": row.folds, "delta": row.delta, "tolerance": row.tolerance,
            "within_tolerance": row.within, "verdict": row.verdict(), "local": row.local,
            "error": row.error}


def notes(runs: Sequence[PresetRun]) -> str:
    """One bullet per preset: the paper, its protocol and the deviations."""
    out = []
    for run in runs:
        r = run.reproduce
        line = f"- `{run.preset}`: {_sentence(r.paper)} Protocol: {_sentence(r.protocol)}"
        if r.note:
            line += f" Note: {_sentence(r.note)}"
        out.append(" ".join(line.split()))
    return "\n".join(out)


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else text + "."
