"""Per-user metric vectors of a run, saved next to ``results.json`` for paired comparisons.

``per_user_<split>.parquet`` has one row per evaluated user: ``user_id`` (the
raw id), ``user`` (the index) and one float column per per-user metric key
(``test/ndcg@10``, ``test/novelty@10``, ..., and each user's own ``test/rmse`` /
``test/mae`` on explicit data). The mean of a ranking column is the value in
``results.json`` (coverage and Gini are not per user and have no column); the rating
columns' means are not the pooled RMSE / MAE, which weigh users by their pairs.
`jaxrec.compare` pairs runs user by user through these files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ID_COLUMNS = ("user_id", "user")


def per_user_frame(vectors: Iterable[tuple[np.ndarray, dict[str, np.ndarray]]],
                   user_ids: np.ndarray) -> pd.DataFrame | None:
    """One row per user from each evaluator's ``(users, {key: values})``; None if there are none.

    Args:
      vectors: what `jaxrec.metrics.scoring.evaluate` collects with ``per_user=``.
      user_ids: raw id of each user index.
    """
    frame = None
    for users, values in vectors:
        part = pd.DataFrame({"user_id": np.asarray(user_ids)[users], "user": users,
                             **{k: np.asarray(v, np.float32) for k, v in values.items()}})
        frame = part if frame is None else frame.merge(part, on=list(ID_COLUMNS), how="outer")
    return frame


def write_per_user(run_dir: str | Path, vectors: dict[str, Iterable[Any]],
                   user_ids: np.ndarray) -> list[str]:
    """Write ``per_user_<split>.parquet`` for each split with per-user values (atomically).

    Args:
      run_dir: the run directory.
      vectors: ``{"valid": [(users, {key: values}), ...], "test": [...]}``, from the final
        evaluation of the best state (`jaxrec.training.loop.FitResult.per_user`).
      user_ids: raw id of each user index.

    Returns:
      The file names written.
    """
    from jaxrec.io import atomic_write_with
    from jaxrec.multihost import is_primary

    written = []
    for split, split_vectors in vectors.items():
        frame = per_user_frame(split_vectors, user_ids)
        if frame is None:
            continue
        name = f"per_user_{split}.parquet"
        if is_primary():  # every process computes (collectives), process 0 writes
            atomic_write_with(Path(run_dir) / name,
                              lambda tmp, f=frame: f.to_parquet(tmp, index=False))
        written.append(name)
    return written


def read_per_user(run_dir: str | Path, split: str = "test") -> pd.DataFrame:
    """The ``per_user_<split>.parquet`` of a run, or a one-line ``FileNotFoundError``."""
    path = Path(run_dir) / f"per_user_{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; was the run trained with "
                                "eval.save_per_user=false, or before per-user vectors existed?")
    return pd.read_parquet(path)
