"""Extra feature tables (CSV, JSON lines, parquet; any dataset): typed columns -> fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxrec.data.features.bags import _Field
from jaxrec.data.features.kinds import (
    _bucket_field,
    _categorical_field,
    _numeric_field,
    _options,
    _text_field,
)
from jaxrec.data.interactions import DataError, Interactions

COLUMN_KINDS = ("categorical", "multi_categorical", "numeric", "bucket", "text")


def _read_table(path: Path, *, sep: str | None, names: Sequence[str] | None,
                encoding: str, where: str):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{where}.path: missing file {path}")
    suffixes = [x.lower() for x in path.suffixes if x.lower() not in (".gz", ".bz2", ".zip")]
    kind = suffixes[-1] if suffixes else ""
    try:  # pandas infers gz / bz2 / zip compression from the name
        if kind in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if kind in (".json", ".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True, dtype=False, encoding=encoding)
            return df.map(_json_text)  # a JSON list is a multi_categorical "a|b"
        options: dict[str, Any] = dict(sep=sep or ",", encoding=encoding, dtype=str,
                                       keep_default_na=False, engine="python")
        if names:
            options.update(header=None, names=list(names))
        return pd.read_csv(path, **options)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({str(e).strip().splitlines()[0]})") from e


def _json_text(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(map(str, value))
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def table_fields(spec: Mapping[str, Any], inter: Interactions, where: str
                 ) -> tuple[str, list[_Field]]:
    """Read one extra feature table -> ``(side, fields)``; rows follow the vocabulary.

    Spec keys: ``path`` (CSV / TSV / any ``sep``, JSON lines or parquet; CSV and JSON
    may be gz / bz2 / zip compressed), ``side`` (item | user), ``key`` (the id
    column), ``columns`` (column -> kind or ``{kind: ..., <options>}``), optional
    ``sep``, ``names`` (header for header-less files), ``encoding`` and
    ``unknown_ids`` (``error``, the default, or ``ignore``).
    """
    allowed = ("path", "side", "key", "columns", "sep", "names", "encoding", "unknown_ids")
    spec = _options("table", spec, allowed, where)
    for req in ("path", "key", "columns"):
        if req not in spec:
            raise DataError(f"{where}: missing key {req!r}")
    side = spec.get("side", "item")
    if side not in ("item", "user"):
        raise DataError(f"{where}.side={side!r} must be item or user")
    path = Path(str(spec["path"])).expanduser()
    df = _read_table(path, sep=spec.get("sep"), names=spec.get("names"),
                     encoding=spec.get("encoding", "utf-8"), where=where)
    columns = spec["columns"]
    if not isinstance(columns, Mapping) or not columns:
        raise DataError(f"{where}.columns: expected a non-empty mapping column -> kind")
    for col in [spec["key"], *columns]:
        if col not in df.columns:
            raise DataError(f"{path}: missing column {col!r} (header: "
                            f"{', '.join(map(str, df.columns))})")
    ids = inter.item_ids if side == "item" else inter.user_ids
    index = inter.item_index if side == "item" else inter.user_index
    raw = df[spec["key"]].to_numpy()
    if np.issubdtype(ids.dtype, np.integer):
        keys = np.asarray(raw).astype(str)
        bad = ~np.char.isdigit(np.char.lstrip(keys, "-"))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: column {spec['key']!r} has non-integer id "
                            f"{str(keys[row])!r} at row {row + 1}")
        raw = keys.astype(np.int64)
    pos = np.array([index.get(k, -1) for k in raw.tolist()], np.int64)
    unknown_mode = spec.get("unknown_ids", "error")
    if unknown_mode not in ("error", "ignore"):
        raise DataError(f"{where}.unknown_ids={unknown_mode!r} must be error or ignore")
    if (pos < 0).any() and unknown_mode == "error":
        row = int(np.argmax(pos < 0))
        bad_id = raw[row].item() if isinstance(raw[row], np.generic) else raw[row]
        raise DataError(f"{path}: {side} id {bad_id!r} (row {row + 1}) is not in the data "
                        f"({int((pos < 0).sum())} unknown; set unknown_ids: ignore to skip them)")
    keep = pos >= 0
    n = len(ids)
    fields = []
    for col, kind_spec in columns.items():
        cwhere = f"{where}.columns.{col}"
        opts = {"kind": kind_spec} if isinstance(kind_spec, str) else dict(kind_spec)
        kind = opts.pop("kind", None)
        if kind not in COLUMN_KINDS:
            raise DataError(f"{cwhere}: kind {kind!r} is not one of {', '.join(COLUMN_KINDS)}")
        values = np.full(n, None, dtype=object)
        values[pos[keep]] = df[col].to_numpy(object)[keep]
        if kind in ("numeric", "bucket"):
            num = np.full(n, np.nan)
            present = np.array([v is not None and str(v).strip() != "" for v in values])
            try:
                num[present] = np.asarray([float(v) for v in values[present]])
            except ValueError as e:
                raise DataError(f"{path}: column {col!r} has a non-numeric value "
                                f"({e}) for kind {kind}") from None
            if kind == "numeric":
                _options(col, opts, (), cwhere)
                fields.append(_numeric_field(col, num, where=cwhere))
            else:
                o = _options(col, opts, ("width", "bins"), cwhere)
                fields.append(_bucket_field(col, num, unknown=None, where=cwhere, **o))
        elif kind == "text":
            o = _options(col, opts, ("max_tokens", "min_count", "max_vocab", "pool"), cwhere)
            fields.append(_text_field(col, ["" if v is None else str(v) for v in values],
                                      where=cwhere, **o))
        else:
            o = _options(col, opts, ("sep",), cwhere)
            sep = o.get("sep", "|") if kind == "multi_categorical" else None
            fields.append(_categorical_field(col, values, sep=sep))
    return side, fields

