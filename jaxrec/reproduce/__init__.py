"""Paper presets: run them and set jaxrec's numbers beside the published ones.

    jaxrec reproduce PRESET... [--local] [--set key=value ...] [--out DIR] [--write]

A paper preset is ``configs/experiment/paper_*.yaml`` with a ``reproduce:`` block
(:class:`~jaxrec.config.ReproduceConfig`): the paper, its protocol and dataset,
the published ``{metric key: value}`` and an absolute tolerance per metric. For
each preset the config is composed as ``jaxrec train experiment=<preset>
[--set ...]`` would compose it, then trained once, or once per fold with
``data.split.fold=k`` when ``reproduce.folds > 1``, each run in its own process
(``python -m jaxrec.train``; ``--in-process`` runs them in this one) with its own run
directory under ``--out``. The metrics come from each run's ``results.json``,
which also states the evaluation protocol the table shows.

The table has one row per (preset, published metric): the published value,
jaxrec's value (mean ± population std over folds, as Surprise's
``cross_validate`` reports), the difference and whether it is within the
preset's tolerance. ``--local`` runs the same preset on
``data=<reproduce.local_data>`` (the same protocol on ml-latest-small, for
machines without the paper's dataset); those numbers are not comparable with
the paper's, so the tolerance column says ``n/a (other dataset)``, and a fixed
negatives file (``eval.negatives_file``, which names the paper dataset's items)
is replaced by negatives drawn once from the seed.

Outputs (written atomically): ``reproduce.md``, ``reproduce.csv``, ``reproduce.json``
and (with matplotlib) ``reproduce.png`` in ``--out``; ``--write`` also replaces this
script's section of ``docs/benchmarks.md`` (`jaxrec.benchmarks`).
"""

from jaxrec.reproduce.command import main, parse_args
from jaxrec.reproduce.outputs import SECTION, machine_line, render_section, write_outputs
from jaxrec.reproduce.presets import (
    RUN_OVERRIDES,
    ReproduceError,
    compose,
    config_dir,
    paper_presets,
    reproduce_block,
    run_overrides,
)
from jaxrec.reproduce.runs import PresetRun, run_preset
from jaxrec.reproduce.table import (
    HEADER,
    OTHER_DATASET,
    RATING_METRICS,
    Row,
    fmt_value,
    markdown_table,
    mean_std,
    notes,
    protocol_of,
    record,
    rows_of,
    table_cells,
    text_table,
    within_tolerance,
)

__all__ = [
    "HEADER",
    "OTHER_DATASET",
    "PresetRun",
    "RATING_METRICS",
    "RUN_OVERRIDES",
    "ReproduceError",
    "Row",
    "SECTION",
    "compose",
    "config_dir",
    "fmt_value",
    "machine_line",
    "main",
    "markdown_table",
    "mean_std",
    "notes",
    "paper_presets",
    "parse_args",
    "protocol_of",
    "record",
    "render_section",
    "reproduce_block",
    "rows_of",
    "run_overrides",
    "run_preset",
    "table_cells",
    "text_table",
    "within_tolerance",
    "write_outputs",
]
