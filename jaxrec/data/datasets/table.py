"""Bring your own data: interactions from any table file, configured in yaml alone.

``data=table`` reads one or more files (a list or a glob) of CSV / TSV / any
separator, parquet or JSON lines, plain or gz / bz2 / zip compressed, maps their
columns to ``user``, ``item`` and optionally ``rating`` (missing: 1.0, implicit) and
``timestamp`` (missing: 0), and keeps the raw ids as they come: ids that are all
integers become int64 raw ids, anything else strings. Timestamps are Unix seconds
(``s``), milliseconds (``ms``), ISO 8601 (``iso``, UTC unless an offset is given) or a
strftime pattern (``%d/%m/%Y %H:%M``). Parsing is pyarrow's (`tabular`); the parsed
table is cached as npz, keyed by the files' contents and the parse options.

Shipped splits: ``valid`` and ``test`` file lists set ``Interactions.parts`` (train 0,
valid 1, test 2) for ``split.method=predefined``; users and items are the union of all
files, so an item seen only in a test file is still ranked (``universe: union``, stated
in ``results.json``); ``universe: train`` makes such an item an error instead.

    jaxrec train data=table data.dataset.path=ratings.csv \\
      data.dataset.columns.user=user_id data.dataset.columns.item=item_id \\
      data.dataset.columns.timestamp=time data.dataset.timestamp_format=iso
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jaxrec.data import cache
from jaxrec.data.datasets import convert
from jaxrec.data.datasets.tabular import EXTRA, ROLES, ReadSpec, read_file
from jaxrec.data.interactions import DataError, Interactions

PART_CODES = {"train": 0, "valid": 1, "test": 2}
UNIVERSES = {"union": "union of train/valid/test files",
             "train": "items of the train files (an item only in valid/test is an error)"}
"""``universe`` option -> what ``Interactions.universe`` (and ``results.json``) says."""


def expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike] | None, what: str
                 ) -> list[Path]:
    """A path, a glob or a list of them -> existing files, in order (globs sorted)."""
    if paths is None:
        return []
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out = []
    for pattern in paths:
        text = os.path.expanduser(str(pattern))
        if glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise DataError(f"data.dataset.{what}: no file matches {pattern!r}")
            out.extend(Path(f) for f in found)
        elif Path(text).is_dir():
            raise DataError(f"data.dataset.{what}: {text} is a folder, expected a file")
        elif not Path(text).is_file():
            raise DataError(f"data.dataset.{what}: missing file {text}")
        else:
            out.append(Path(text))
    return out


def column_map(columns: Mapping[str, Any]) -> dict[str, Any]:
    """role -> column of the mapped roles (``rating`` / ``timestamp`` may be null)."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(ROLES))
    if unknown:
        raise DataError(f"data.dataset.columns: unknown key {unknown[0]!r} "
                        f"(valid: {', '.join(ROLES)})")
    for role in ("user", "item"):
        if columns.get(role) in (None, ""):
            raise DataError(f"data.dataset.columns.{role} is not set (the {role} id column)")
    return {r: columns[r] for r in ROLES if columns.get(r) not in (None, "")}


def read_parts(files: Sequence[tuple[Path, int]], fields: dict[str, Any], spec: ReadSpec,
               timestamp_format: str, name: str, universe: str = "union") -> Interactions:
    """Parse ``(file, part)`` pairs (train files first) into one Interactions.

    ``parts`` is set when any file is not train (part 0). Users and items are the union
    of all files; with ``universe="train"`` an item of a valid / test file that no
    train file has is a DataError naming its file, line and value.
    """
    if not files:
        raise DataError(f"{name}: no input files")
    if universe not in UNIVERSES:
        raise DataError(f"data.dataset.universe={universe!r} is not one of "
                        f"{', '.join(UNIVERSES)}")
    convert.check_timestamp_format(timestamp_format)
    users, items, ratings, stamps, parts = [], [], [], [], []
    extra = {role[len(EXTRA):]: [] for role in fields if role.startswith(EXTRA)}
    for path, part in files:
        cols, locate = read_file(path, fields, spec)
        # pop each column once converted: the parsed arrow buffers are freed as we go
        users.append(convert.encode_ids(cols.pop("user"), path, fields["user"], locate))
        items.append(convert.encode_ids(cols.pop("item"), path, fields["item"], locate))
        if universe == "train" and part != 0:
            _check_in_train(items[:-1], items[-1], files, path, fields["item"], locate)
        rows = len(users[-1][0])
        ratings.append(convert.to_ratings(cols.pop("rating"), path, fields["rating"], locate)
                       if "rating" in fields else np.ones(rows, np.float32))
        stamps.append(convert.to_seconds(cols.pop("timestamp"), timestamp_format, path,
                                         fields["timestamp"], locate)
                      if "timestamp" in fields else np.zeros(rows, np.int64))
        parts.append(np.full(rows, part, np.int8))
        for key, values in extra.items():  # str per row; a null is "" (the unknown value)
            column = pc.fill_null(pc.cast(cols.pop(EXTRA + key), pa.string()), "")
            values.append(np.asarray(column.to_numpy(zero_copy_only=False), dtype=object))
    user_codes, user_ids = convert.merge_vocab(users)
    item_codes, item_ids = convert.merge_vocab(items)
    if sum(len(c) for c in user_codes) == 0:
        raise DataError(f"{files[0][0]}: no interactions")
    shipped = any(part != 0 for _, part in files)
    return Interactions(
        users=np.concatenate(user_codes), items=np.concatenate(item_codes),
        ratings=np.concatenate(ratings), timestamps=np.concatenate(stamps),
        user_ids=user_ids, item_ids=item_ids, name=name,
        parts=np.concatenate(parts) if shipped else None,
        universe=UNIVERSES[universe] if shipped else None,
        extra_columns={key: np.concatenate(values) for key, values in extra.items()})


def _check_in_train(before: list, encoded: tuple, files: Sequence[tuple[Path, int]], path: Path,
                    column: Any, locate) -> None:
    """DataError at the first item of ``encoded`` that no train file (part 0) has."""
    train = [d for (_, d), (_, part) in zip(before, files, strict=False) if part == 0]
    known = pc.unique(pa.chunked_array(train, pa.string())) if train else pa.array([], pa.string())
    codes, dictionary = encoded
    unknown = ~pc.is_in(dictionary, value_set=known).to_numpy(zero_copy_only=False)
    row = convert.first_bad(unknown[codes]) if len(codes) else None
    if row is not None:
        raise DataError(f"{path}: {locate(row)}, column {column!r}: item "
                        f"{dictionary[int(codes[row])].as_py()!r} is not in the train files "
                        "(data.dataset.universe=train; universe=union ranks it)")


def load_table(path: Any, columns: Mapping[str, Any], *, valid: Any = None, test: Any = None,
               sep: str = ",", header: bool = True, names: Sequence[str] | None = None,
               encoding: str = "utf-8", timestamp_format: str = "s", format: str = "auto",
               quote_char: str | None = '"', universe: str = "union",
               extra_columns: Sequence[str] = (), name: str = "table",
               cache_dir: str | None = "~/.cache/jaxrec", use_cache: bool = True
               ) -> Interactions:
    """Load interactions from table files (module docstring).

    Args:
      path: the (training) file, a glob, or a list of them; all rows are one table.
      columns: ``{user, item, rating, timestamp}`` -> column name (or 0-based position
        when ``header`` is false without ``names``); rating / timestamp may be null.
      valid: files whose rows are validation (``parts`` 1), or None.
      test: files whose rows are test (``parts`` 2), or None.
      sep: CSV separator (``tab`` / ``\\t``, ``;``, ``::`` ...).
      header: whether the first line names the columns.
      names: column names (with ``header`` false; with ``header`` true they replace it).
      encoding: text encoding of CSV / JSON files (``latin-1``); a UTF-8 BOM is skipped.
      timestamp_format: ``s`` | ``ms`` | ``iso`` | a strftime pattern.
      format: ``auto`` (from the extension: ``.parquet``, ``.json`` / ``.jsonl``, else
        CSV) | ``csv`` | ``json`` | ``parquet``.
      quote_char: CSV quote character, or null for none.
      universe: with ``valid`` / ``test`` files, the item universe: ``union`` (of all
        files: an item only in a test file is still ranked) or ``train`` (an item of a
        valid / test file that no train file has is an error naming file, line, value).
      extra_columns: other columns to keep per interaction as str
        (``Interactions.extra_columns``; e.g. ``[device]``: context fields of the
        feature models, ``model.context=[hour,device]``); a null is ``""``.
      name: dataset name (cache file, logs).
      cache_dir: parsed-cache root (``<cache_dir>/parsed/``), or None for no cache.
      use_cache: read and write the parsed cache.

    Returns:
      Interactions with users and items indexed in sorted raw-id order.

    Raises:
      DataError: a missing file or column, a ragged line, undecodable bytes, an empty
        id, a non-numeric / NaN / infinite rating or an unparseable timestamp -- one
        line naming the file, line (or row), column and value.
    """
    fields = column_map(columns)
    fields.update({EXTRA + str(c): c for c in extra_columns or ()})
    spec = ReadSpec(format=format, sep=sep, header=bool(header),
                    names=tuple(str(n) for n in names) if names else None, encoding=encoding,
                    quote_char=quote_char, numeric_time=timestamp_format in ("s", "ms"))
    files = [(f, PART_CODES["train"]) for f in expand_paths(path, "path")]
    files += [(f, PART_CODES["valid"]) for f in expand_paths(valid, "valid")]
    files += [(f, PART_CODES["test"]) for f in expand_paths(test, "test")]
    return cached_read(files, fields, spec, timestamp_format, name, cache_dir, use_cache,
                       universe=universe)


def cached_read(files: Sequence[tuple[Path, int]], fields: dict[str, Any], spec: ReadSpec,
                timestamp_format: str, name: str, cache_dir: str | None, use_cache: bool = True,
                universe: str = "union") -> Interactions:
    """:func:`read_parts` through the parse cache, keyed by the files' contents and options."""
    build = lambda: read_parts(files, fields, spec, timestamp_format, name, universe)
    if not use_cache or cache_dir is None:
        return build()
    key = cache.content_key([f for f, _ in files], parts=[p for _, p in files], fields=fields,
                            spec=repr(spec), timestamp_format=timestamp_format, name=name,
                            universe=universe)
    root = Path(cache_dir).expanduser() / "parsed"
    return cache.cached(root / f"table-{_slug(name)}-{key}.npz", build)


def find_file(data_dir: str | None, folder: str, names: Sequence[str], dataset: str) -> Path:
    """The first of ``<data_dir>/<folder>/<name>`` that exists (publishers' file names)."""
    if data_dir is None:
        raise DataError(f"{dataset}: data_dir is not set (paths.data_dir / JAXREC_DATA_DIR); "
                        f"put the publisher's files in <data_dir>/{folder}/")
    root = Path(data_dir).expanduser() / folder
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DataError(f"{dataset}: missing file {root / names[0]} (also looked for "
                    f"{', '.join(names[1:]) or 'nothing else'}; nothing is downloaded)")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "table"
