"""The data files of He et al.'s NCF repository, with their train / test split kept.

He, Liao, Zhang, Nie, Hu and Chua, "Neural Collaborative Filtering", WWW 2017;
files from github.com/hexiangnan/neural_collaborative_filtering (``Data/``):

``<name>.train.rating`` / ``<name>.test.rating``
    one interaction per line, ``user\\titem\\trating\\ttimestamp``, ids 0-based
    integers. The test file holds each user's latest interaction (leave-one-out).
``<name>.test.negative``
    ``(user,item)\\tneg1\\t...\\tneg99`` per test user: the 99 fixed negatives of the
    sampled protocol. Not read here: ``eval.negatives_file`` points at it and
    `jaxrec.metrics.sampled.load_negatives` reads it (``eval=sampled``).

The loader returns one :class:`~jaxrec.data.interactions.Interactions` over both
files whose ``parts`` say which file each row came from (0 train, 2 test);
``data.split.method=predefined`` keeps that split (`jaxrec.data.splits`). The raw
ids are the files' integers, so the negatives file's ids match. Items that occur
only in the negatives file have no row and are not in the vocabulary (in NCF's
ml-1m and pinterest-20 files every item occurs in train or test).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from jaxrec.data.datasets.convert import MAX_RATING
from jaxrec.data.interactions import DataError, Interactions

SOURCE = "github.com/hexiangnan/neural_collaborative_filtering (Data/)"
UNIVERSE = "union of the train and test files (items only in .test.negative are not ranked)"
_COLUMNS = ("user", "item", "rating", "timestamp")
_EXPECTED = {"user": "a non-negative integer id", "item": "a non-negative integer id",
             "rating": f"a number in [0, {MAX_RATING:g}]", "timestamp": "an integer"}


def ncf_files(dataset: str, data_dir: str | None, folder: str = "ncf") -> dict[str, Path]:
    """Paths of the ``train``, ``test`` and ``negative`` files of ``dataset`` (not checked)."""
    if data_dir is None:
        raise DataError(f"NCF {dataset}: data_dir is not set (paths.data_dir / JAXREC_DATA_DIR); "
                        f"put {dataset}.train.rating, .test.rating and .test.negative from "
                        f"{SOURCE} in <data_dir>/{folder}/")
    root = Path(data_dir).expanduser() / folder
    return {"train": root / f"{dataset}.train.rating", "test": root / f"{dataset}.test.rating",
            "negative": root / f"{dataset}.test.negative"}


def load_ncf(dataset: str = "ml-1m", data_dir: str | None = None, folder: str = "ncf"
             ) -> Interactions:
    """Read ``<data_dir>/<folder>/<dataset>.{train,test}.rating`` with their split.

    Args:
      dataset: the files' prefix: ``ml-1m`` or ``pinterest-20`` in NCF's repository.
      data_dir: folder holding ``<folder>/`` (nothing is downloaded).
      folder: sub-folder of ``data_dir`` with the files.

    Returns:
      Interactions (explicit ratings as in the files; ``preprocess.implicit``
      makes them positives) with users and items indexed in ascending raw-id
      order and ``parts`` 0 for the train file's rows, 2 for the test file's.

    Raises:
      DataError: a missing file, a line without four tab-separated fields, a
        non-integer id or timestamp, a negative id, a non-numeric rating, or a
        test pair that is also in the train file (one line: file, line, value).
    """
    files = ncf_files(dataset, data_dir, folder)
    train = _read_rating_file(files["train"])
    test = _read_rating_file(files["test"])
    if len(train) == 0:
        raise DataError(f"{files['train']}: no interactions")
    _check_disjoint(train, test, files)
    frame = pd.concat([train, test], ignore_index=True)
    user_ids, users = np.unique(frame["user"].to_numpy(), return_inverse=True)
    item_ids, items = np.unique(frame["item"].to_numpy(), return_inverse=True)
    parts = np.concatenate([np.zeros(len(train), np.int8), np.full(len(test), 2, np.int8)])
    return Interactions(
        users=users.astype(np.int32), items=items.astype(np.int32),
        ratings=frame["rating"].to_numpy(np.float32),
        timestamps=frame["timestamp"].to_numpy(np.int64),
        user_ids=user_ids, item_ids=item_ids, name=f"ncf-{dataset}", parts=parts,
        universe=UNIVERSE)


def _read_rating_file(path: Path) -> pd.DataFrame:
    """``user, item, rating, timestamp`` of one ``.rating`` file, every value checked."""
    if not path.is_file():
        raise DataError(f"missing file {path} (NCF's data files come from {SOURCE}; nothing is "
                        "downloaded)")
    try:
        raw = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False,
                          quoting=csv.QUOTE_NONE, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({c: np.zeros(0, np.int64) for c in _COLUMNS})
    except pd.errors.ParserError as e:  # "Expected 4 fields in line 3, saw 5"
        raise DataError(f"{path}: {str(e).strip().splitlines()[-1]} (expected 4 tab-separated "
                        "fields: user, item, rating, timestamp)") from None
    if raw.shape[1] != len(_COLUMNS):
        raise DataError(f"{path}: line 1 has {raw.shape[1]} tab-separated fields, expected 4 "
                        "(user, item, rating, timestamp)")
    raw.columns = list(_COLUMNS)
    out = {}
    for col in _COLUMNS:
        values = pd.to_numeric(raw[col].str.strip(), errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if col != "rating":
            bad |= np.mod(np.nan_to_num(values), 1) != 0
        if col in ("user", "item"):
            bad |= np.nan_to_num(values) < 0
        if col == "rating":
            bad |= ~((values >= 0) & (values <= MAX_RATING))
        if bad.any():
            row = int(np.argmax(bad))
            value = raw[col].iat[row]
            got = "nothing" if not isinstance(value, str) or not value.strip() else repr(value)
            line = _line_numbers(path, len(raw))[row]
            raise DataError(f"{path}: line {line}, column {col!r}: expected {_EXPECTED[col]}, "
                            f"got {got}")
        out[col] = values.astype(np.float64 if col == "rating" else np.int64)
    return pd.DataFrame(out)


def _line_numbers(path: Path, rows: int) -> np.ndarray:
    """1-based file line of each parsed row (blank lines are skipped by the parser)."""
    with open(path, "rb") as f:
        nonblank = [n for n, line in enumerate(f, 1) if line.strip()]
    if len(nonblank) != rows:  # cannot happen with pandas' blank-line rule; stay safe
        return np.arange(1, rows + 1)
    return np.asarray(nonblank)


def _check_disjoint(train: pd.DataFrame, test: pd.DataFrame, files: dict[str, Path]) -> None:
    items = np.concatenate([train["item"].to_numpy(), test["item"].to_numpy()])
    width = int(items.max()) + 1
    train_keys = train["user"].to_numpy() * width + train["item"].to_numpy()
    test_keys = test["user"].to_numpy() * width + test["item"].to_numpy()
    clash = np.isin(test_keys, train_keys)
    if clash.any():
        row = int(np.argmax(clash))
        lines = _line_numbers(files["test"], len(test))
        raise DataError(f"{files['test']}: line {lines[row]}: pair (user {test['user'].iat[row]}, "
                        f"item {test['item'].iat[row]}) is also in {files['train'].name}")
