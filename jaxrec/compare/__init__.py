"""``jaxrec compare``: are the differences between runs real? Tables with significance tests.

    jaxrec compare RUN_OR_STUDY_DIR... [-m ndcg@10 ...] [--split test] [--ci auto|seeds|users]
                   [--by-arg] [--json OUT.json] [--plot OUT.png]

Every directory given is searched for run dirs (those holding ``results.json``;
a sweep study holds one per trial). Runs are grouped into *systems*: runs whose
configs differ only in the seed (and output paths, names, logging) are seeds
of one system. Systems are named by the config keys that tell them apart
(``model=MF loss=BPR``), or after their directories with ``--by-arg`` (and when the
directories given hold one configuration between them).

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

from jaxrec.compare.command import main
from jaxrec.compare.report import format_report
from jaxrec.compare.runs import Run, System, default_metric, find_runs, group_systems, load_run
from jaxrec.compare.statistics import compare

__all__ = [
    "Run",
    "System",
    "compare",
    "default_metric",
    "find_runs",
    "format_report",
    "group_systems",
    "load_run",
    "main",
]
