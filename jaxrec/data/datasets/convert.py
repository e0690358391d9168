"""Vectorised column conversions for the file loaders: ids, ratings, timestamps.

Each takes a pyarrow array as parsed (`jaxrec.data.datasets.tabular.read_file`) and
returns numpy; on a bad value it raises a one-line DataError naming the file, the
line, the column and the value (``locate`` turns a 0-based row into ``line N``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from jaxrec.data.interactions import DataError

TIMESTAMP_FORMATS = ("s", "ms", "iso")
MAX_RATING = 1e6
"""Ratings (or weights, play counts) above this are a unit or parsing mistake, not data."""
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")


def first_bad(mask: np.ndarray) -> int | None:
    """Index of the first True, or None."""
    return int(np.argmax(mask)) if mask.any() else None


def bad_value(path: Path, column: Any, values, row: int, locate, what: str) -> DataError:
    raw = values[row].as_py() if hasattr(values[row], "as_py") else values[row]
    shown = "an empty value" if raw is None or str(raw).strip() == "" else repr(
        f"{raw:.7g}" if isinstance(raw, float) else raw)  # float32 1e30, not 1.0000000150e+30
    return DataError(f"{path}: {locate(row)}, column {column!r}: {shown} is not {what}")


def _plain(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return values.cast(values.type.value_type) if pa.types.is_dictionary(values.type) else values


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    """float64 ``[E]``; NaN where a value is empty or not a number."""
    values = _plain(values)
    try:
        return pc.cast(values, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(pd.Series(values.to_numpy(zero_copy_only=False)),
                             errors="coerce").to_numpy(np.float64)


def to_ratings(values: pa.ChunkedArray, path: Path, column: Any, locate) -> np.ndarray:
    """float32 ``[E]``; an empty, non-numeric, NaN, infinite, negative or absurd
    (> ``MAX_RATING``) value is an error."""
    numbers = values.to_numpy() if pa.types.is_floating(values.type) else _numbers(values)
    row = first_bad(~np.isfinite(numbers))
    if row is not None:
        raise bad_value(path, column, values, row, locate, "a finite number (rating)")
    row = out_of_range(numbers)
    if row is not None:
        raise bad_value(path, column, values, row, locate, RATING_RANGE)
    return numbers.astype(np.float32, copy=False)


RATING_RANGE = f"a rating in [0, {MAX_RATING:g}]"


def out_of_range(ratings: np.ndarray) -> int | None:
    """Index of the first rating that is negative or above ``MAX_RATING`` (or NaN), or None."""
    ratings = np.asarray(ratings, np.float64)
    return first_bad(~((ratings >= 0) & (ratings <= MAX_RATING)))


def check_last_line(path: Path, sep: str, fields: int, *, encoding: str = "utf-8") -> None:
    """DataError when ``path`` ends mid-line: no final newline and its last line has fewer
    than ``fields`` fields, an empty one or a non-number (every field numeric).

    A file whose last complete row merely lacks the newline is fine.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if not tail or tail.endswith(b"\n"):
        return
    last = tail.rsplit(b"\n", 1)[-1].rstrip(b"\r").decode(encoding, "replace")
    parts = last.split(sep)
    problem = None
    if len(parts) < fields:
        problem = f"{len(parts)} of {fields} fields"
    else:
        for part in parts[:fields]:
            try:
                float(part)
            except ValueError:
                problem = f"value {part!r}" if part.strip() else "an empty field"
                break
    if problem is not None:
        with open(path, "rb") as f:
            line = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) + 1
        raise DataError(f"{path}: line {line} ({last[:60]!r}, {problem}) ends the file "
                        "without a newline: the file looks truncated (an interrupted download "
                        "or copy)")


def check_timestamp_format(fmt: str) -> None:
    if fmt not in TIMESTAMP_FORMATS and "%" not in fmt:
        raise DataError(f"timestamp_format={fmt!r} is not s, ms, iso or a strftime pattern "
                        "such as '%Y-%m-%d %H:%M:%S'")


def to_seconds(values: pa.ChunkedArray, fmt: str, path: Path, column: Any, locate
               ) -> np.ndarray:
    """int64 Unix seconds ``[E]`` from seconds, milliseconds, ISO 8601 or a strftime pattern.

    ISO 8601 values without an offset are UTC; fractions of a second are dropped.
    """
    check_timestamp_format(fmt)
    values = _plain(values)
    if fmt in ("s", "ms"):
        if pa.types.is_integer(values.type):
            seconds = values.to_numpy().astype(np.int64)
            return seconds // 1000 if fmt == "ms" else seconds
        numbers = _numbers(values)
        row = first_bad(~np.isfinite(numbers))
        if row is not None:
            what = f"a Unix time in {'seconds' if fmt == 's' else 'milliseconds'}"
            raise bad_value(path, column, values, row, locate, what)
        return np.floor(numbers / (1000 if fmt == "ms" else 1)).astype(np.int64)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    if fmt == "iso":
        try:
            return pc.cast(values, pa.timestamp("s")).cast(pa.int64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # offsets, fractions of a second or a bad value: pandas parses and finds it
        series = pd.to_datetime(pd.Series(values.to_numpy(zero_copy_only=False)),
                                format="ISO8601", utc=True, errors="coerce")
        row = first_bad(series.isna().to_numpy())
        if row is not None:
            raise bad_value(path, column, values, row, locate, "an ISO 8601 time")
        return series.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    stamps = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
    row = first_bad(stamps.is_null().to_numpy(zero_copy_only=False))
    if row is not None:
        raise bad_value(path, column, values, row, locate, f"a time matching {fmt!r}")
    return stamps.cast(pa.int64()).to_numpy()


def encode_ids(values: pa.ChunkedArray, path: Path, column: Any, locate
               ) -> tuple[np.ndarray, pa.Array]:
    """``(codes int32 [E], dictionary)``: the distinct raw ids as strings and each row's one."""
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    values = values.unify_dictionaries() if values.num_chunks > 1 else values
    if values.null_count:
        row = first_bad(values.is_null().to_numpy(zero_copy_only=False))
        raise bad_value(path, column, values, row, locate, "an id")
    if values.num_chunks == 0:
        return np.zeros(0, np.int32), pa.array([], pa.string())
    dictionary = values.chunk(0).dictionary
    codes = np.concatenate([c.indices.to_numpy() for c in values.chunks]).astype(np.int32,
                                                                                copy=False)
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    empty = np.flatnonzero(pc.equal(pc.utf8_trim_whitespace(dictionary), "").to_numpy(
        zero_copy_only=False))
    if len(empty):
        raise bad_value(path, column, values, first_bad(codes == empty[0]), locate, "an id")
    return codes, dictionary


def merge_vocab(encoded: list[tuple[np.ndarray, pa.Array]]) -> tuple[list[np.ndarray], np.ndarray]:
    """One sorted vocabulary over several files' ``(codes, dictionary)``.

    Raw ids that are all canonical integers (``-?[1-9][0-9]*`` or ``0``) become int64
    and sort by value; otherwise they stay strings (object array) and sort by code point.

    Returns:
      ``(codes, vocab)``: each file's int32 ``[E_f]`` indices into ``vocab``.
    """
    if not encoded:
        return [], np.zeros(0, np.int64)
    union = pc.unique(pa.chunked_array([d for _, d in encoded], pa.string()))
    union = union.combine_chunks() if isinstance(union, pa.ChunkedArray) else union
    as_int = pc.all(pc.match_substring_regex(union, f"^{_CANONICAL_INT.pattern}$")).as_py()
    if as_int is not False:
        keys = union.cast(pa.int64())
        vocab = keys.to_numpy()
        order = np.argsort(vocab, kind="stable")
    else:
        order = pc.sort_indices(union).to_numpy()
        vocab = np.asarray(union.to_numpy(zero_copy_only=False), dtype=object)
    vocab = vocab[order]
    sorted_union = union.take(pa.array(order))
    out = []
    for codes, dictionary in encoded:
        position = pc.index_in(dictionary, value_set=sorted_union).to_numpy()
        out.append(position.astype(np.int32)[codes])
    return out, vocab
