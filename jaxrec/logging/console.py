"""Console messages through `logging`, so Hydra's ``train.log`` holds what the console shows.

``say(message)`` logs to the ``jaxrec`` logger when something listens at INFO (``jaxrec
train``: ``configs/hydra/job_logging/jaxrec.yaml`` sends it to the console, through
:class:`TqdmHandler`, and to ``train.log``); elsewhere (notebooks, tests, in-process sweep
trials) it writes the line to stderr as before. :func:`metrics_table` is the final table.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("jaxrec")


class TqdmHandler(logging.StreamHandler):
    """A stderr handler that writes through ``tqdm.write``, so a progress bar stays intact."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging's contract: never raise from emit
            self.handleError(record)


def say(message: str, level: int = logging.INFO) -> None:
    """One console line: through `logging` when configured for it, else straight to stderr."""
    if logger.isEnabledFor(level) and logger.hasHandlers():
        logger.log(level, message)
    else:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


_KEY = re.compile(r"^(?P<split>.+)/(?P<name>[^/@]+)(?:@(?P<k>\d+))?$")


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """Metrics keyed ``split[/slice]/name[@k]`` as a plain-text table: one row per
    ``name@k``, one column per split (and slice); other entries follow as ``key: value``.

    >>> print(metrics_table({"valid/ndcg@10": 0.25, "test/ndcg@10": 0.5, "best_epoch": 3}))
    metric      valid    test
    ndcg@10    0.2500  0.5000
    best_epoch: 3
    """
    cells: dict[tuple[str, int], dict[str, str]] = {}
    splits: list[str] = []
    rest = []
    for key, value in metrics.items():
        match = _KEY.match(key)
        if match is None:
            rest.append(f"{key}: {fmt(value)}")
            continue
        split, name, k = match["split"], match["name"], match["k"]
        if split not in splits:
            splits.append(split)
        row = (f"{name}@{k}" if k else name, name, int(k) if k else 0)
        cells.setdefault(row, {})[split] = fmt(value)
    if not cells:
        return "\n".join(rest)
    rows = sorted(cells, key=lambda r: (r[1], r[2]))
    order = {"train": 0, "valid": 1, "test": 2}
    splits.sort(key=lambda s: (order.get(s.split("/")[0], 3), s))
    first = max(len("metric"), *(len(r[0]) for r in rows))
    widths = [max(len(s), *(len(cells[r].get(s, "-")) for r in rows)) for s in splits]
    lines = ["  ".join([f"{'metric':<{first}}", *(f"{s:>{w}}" for s, w in zip(splits, widths,
                                                                                   strict=True))])]
    for r in rows:
        lines.append("  ".join([f"{r[0]:<{first}}", *(f"{cells[r].get(s, '-'):>{w}}"
                                                     for s, w in zip(splits, widths,
                                                                     strict=True))]))
    return "\n".join([*lines, *rest])
