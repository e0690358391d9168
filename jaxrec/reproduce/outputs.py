"""Writing the table: ``reproduce.md`` / ``.csv`` / ``.json`` and the section of
``docs/benchmarks.md``."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from pathlib import Path

from jaxrec.extras import MissingExtra
from jaxrec.io import atomic_write_json, atomic_write_with
from jaxrec.reproduce.runs import PresetRun
from jaxrec.reproduce.table import Row, markdown_table, notes, record

SECTION = "reproduce"
"""This script's marker name in ``docs/benchmarks.md``."""


def write_outputs(out_dir: str | os.PathLike, rows: Sequence[Row], runs: Sequence[PresetRun],
                  *, command: str) -> dict[str, Path]:
    """``reproduce.md``, ``reproduce.csv``, ``reproduce.json`` in ``out_dir`` (atomic)."""
    from jaxrec.io import atomic_write_text

    out = Path(out_dir)
    paths = {"md": out / "reproduce.md", "csv": out / "reproduce.csv",
             "json": out / "reproduce.json"}
    atomic_write_text(paths["md"], f"```\n{command}\n```\n\n{markdown_table(rows)}\n\n"
                                   f"{notes(runs)}\n")
    buf = io.StringIO()
    records = [record(r) for r in rows]
    writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["preset"])
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_json(paths["json"], {
        "command": command, "rows": records,
        "runs": [{"preset": r.preset, "reproduce": dataclasses.asdict(r.reproduce),
                  "dataset_run": r.dataset_run, "local": r.local, "overrides": r.overrides,
                  "run_dirs": r.run_dirs, "error": r.error,
                  "protocol": [res.get("protocol") for res in r.results],
                  "protocol_details": [res.get("protocol_details") for res in r.results],
                  "metrics": [res.get("metrics") for res in r.results]} for r in runs]})
    try:
        paths["png"] = save_plot(rows, out / "reproduce.png")
    except MissingExtra:  # the tables are the result; the plot needs matplotlib
        pass
    return paths


def save_plot(rows: Sequence[Row], path: Path) -> Path:
    """Published (cross) and jaxrec (dot, +- std over folds) per (preset, metric), one row
    each, the published value's tolerance shaded; rows on another dataset (``--local``)
    are hollow, since they are not comparable with the paper."""
    from jaxrec.extras import require

    matplotlib = require("matplotlib", extra="sweep", purpose="the reproduction plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.4))
    y = list(range(len(rows)))[::-1]
    for yi, row in zip(y, rows, strict=True):
        if row.tolerance is not None and not row.local:
            ax.fill_betweenx([yi - 0.3, yi + 0.3], row.published - row.tolerance,
                             row.published + row.tolerance, color="0.85", lw=0)
        ax.plot(row.published, yi, "x", color="C3", ms=8)
        if row.mean is not None:
            ax.errorbar(row.mean, yi, xerr=row.std or 0.0, fmt="o", color="C0", capsize=3,
                        mfc="white" if row.local else "C0")
    ax.set_yticks(y, [f"{r.preset.removeprefix('paper_')} {r.metric}" for r in rows],
                  fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("metric value (x: published; o: jaxrec, +- std over folds; "
                  "hollow: other dataset)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def render_section(rows: Sequence[Row], runs: Sequence[PresetRun], *, command: str,
                   machine: str) -> str:
    from jaxrec import benchmarks

    start, end = benchmarks.markers(SECTION)
    return f"""{start}
## Paper reproductions (scripts/reproduce.py)

{machine}

```
{command}
```

*published* is the paper's number on its dataset; *jaxrec* is this run's (mean ± population \
std over folds for cross-validated presets); *delta* = jaxrec - published. Rows run on \
*dataset run* = ml-latest-small (`--local`) use the paper's protocol on a smaller dataset, so \
they are not judged against the paper's tolerance.

{markdown_table(rows)}

{notes(runs)}
{end}"""


def machine_line() -> str:
    import platform

    import jax

    from jaxrec import benchmarks

    return (f"Machine: {os.cpu_count()}-core CPU, {benchmarks.cpu_model()}; jax {jax.__version__} "
            f"({jax.devices()[0].platform}), Python {platform.python_version()}.")
