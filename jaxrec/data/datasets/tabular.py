"""Reading one interactions file (CSV / TSV / any separator, JSON lines, parquet) with pyarrow.

The shared reader behind `jaxrec.data.datasets.table` and the registry loaders. A file
is parsed by pyarrow (``pyarrow.csv``, ``pyarrow.json``, ``pyarrow.parquet``), gz / bz2 /
zip compressed or not, into the *mapped* columns only; the columns are then converted
with vectorised compute functions. Row-by-row Python runs only to locate a bad value
once a vectorised check has failed, so every error is one line naming the file, the
line (``row`` for parquet), the column and the value.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from jaxrec.data.interactions import DataError

ROLES = ("user", "item", "rating", "timestamp")
EXTRA = "extra:"  # role prefix of a kept interaction column (read as str)
SEP_ALIASES = {"tab": "\t", "\\t": "\t", "space": " ", "semicolon": ";", "comma": ",",
               "pipe": "|"}
_BLOCK = 16 << 20  # CSV block size: few chunks (and per-chunk id dictionaries) per file


@dataclasses.dataclass(frozen=True)
class ReadSpec:
    """How to read a file: format, separator, header, encoding, quoting."""

    format: str = "auto"  # auto (from the extension) | csv | json | parquet
    sep: str = ","
    header: bool = True
    names: tuple[str, ...] | None = None  # column names when header is false
    encoding: str = "utf-8"
    quote_char: str | None = '"'  # None: no quoting (RecBole, MovieLens .dat files)
    numeric_time: bool = True  # JSON: try the timestamp field as a number first


def file_format(path: Path, spec: ReadSpec) -> str:
    """csv | json | parquet, from ``spec.format`` or the (uncompressed) extension."""
    if spec.format != "auto":
        if spec.format not in ("csv", "json", "parquet"):
            raise DataError(f"{path}: format={spec.format!r} is not auto, csv, json or parquet")
        return spec.format
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".zip")]
    last = suffixes[-1] if suffixes else ""
    if last in (".json", ".jsonl", ".ndjson"):
        return "json"
    return "parquet" if last in (".parquet", ".pq") else "csv"


def raw_bytes(path: Path) -> bytes:
    """The decompressed bytes of ``path`` (gz, bz2, or a zip with one file)."""
    _check_file(path)
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            return gzip.decompress(path.read_bytes())
        if name.endswith(".bz2"):
            return bz2.decompress(path.read_bytes())
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if not m.endswith("/")
                           and not m.startswith("__MACOSX")]
                if len(members) != 1:
                    raise DataError(f"{path}: a zip must hold exactly one file, holds "
                                    f"{len(members)} ({', '.join(members[:5])})")
                return z.read(members[0])
        return path.read_bytes()
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot decompress ({e})") from None


def _utf8(path: Path, data: bytes, encoding: str) -> bytes:
    """``data`` as UTF-8 without BOM; undecodable bytes name their line and value."""
    try:
        text = data.decode(encoding)
    except LookupError:
        raise DataError(f"{path}: unknown encoding={encoding!r}") from None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}: line {line}: bytes {data[e.start:e.end]!r} are not valid "
                        f"{encoding} (set data.dataset.encoding, e.g. latin-1)") from None
    return text.removeprefix("\ufeff").encode("utf-8")


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig", "ascii")


def read_file(path: Path, fields: dict[str, Any], spec: ReadSpec) -> tuple[dict, Any]:
    """The mapped columns of one file, as pyarrow arrays (types as parsed).

    Plain, gz and bz2 files stream from disk (pyarrow decompresses); a zip, a JSON file
    in another encoding than UTF-8 or a separator longer than one character is read into
    memory first.

    Args:
      path: the file.
      fields: role (``user``, ``item``, ``rating``, ``timestamp``) -> column name, or a
        0-based column position for a file without header and names.
      spec: the :class:`ReadSpec`.

    Returns:
      ``(columns, locate)``: role -> ``pa.ChunkedArray``, and ``locate(row)`` giving
      ``"line N"`` (``"row N"`` for parquet) of a 0-based data row, for error messages.
    """
    _check_file(path)
    fmt = file_format(path, spec)
    if fmt == "parquet":
        return _read_parquet(path, fields), lambda row: f"row {row + 1}"
    first = 1 if fmt == "csv" and spec.header else 0

    def locate(row: int) -> str:
        data = _utf8(path, raw_bytes(path), spec.encoding)
        return f"line {_data_lines(data)[row + first]}"

    sep = SEP_ALIASES.get(spec.sep, spec.sep)
    in_memory = path.name.lower().endswith(".zip") or (fmt == "csv" and len(sep) != 1) or (
        fmt == "json" and not _is_utf8(spec.encoding))
    if in_memory:
        data = raw_bytes(path)
        if fmt == "json" or len(sep) != 1:
            data = _utf8(path, data, spec.encoding)
        if len(sep) != 1:  # pyarrow takes one character: map a longer separator to \x1f
            data, sep = data.replace(sep.encode(), b"\x1f"), "\x1f"
            spec = dataclasses.replace(spec, encoding="utf-8")
        source = lambda: io.BytesIO(data)
    else:
        source = lambda: pa.input_stream(str(path), compression="detect")
    try:
        if fmt == "json":
            return _read_json(path, source, fields, spec.numeric_time), locate
        return _read_csv(path, source, fields, dataclasses.replace(spec, sep=sep)), locate
    except pa.ArrowInvalid as e:
        if "invalid UTF8" in str(e):  # pyarrow does not say where: decode to find it
            _utf8(path, raw_bytes(path), spec.encoding)
        raise DataError(f"{path}: cannot parse ({str(e).strip().splitlines()[0]})") from None
    except OSError as e:  # permission denied, I/O error: name the file
        raise DataError(f"{path}: cannot read ({e.strerror or str(e).splitlines()[0]})") from None


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    if not path.is_file():
        raise DataError(f"missing file {path}")


def _data_lines(data: bytes) -> np.ndarray:
    """1-based numbers of the non-blank lines (the parsers skip blank lines)."""
    return np.array([n for n, line in enumerate(data.split(b"\n"), 1) if line.strip()] + [0])


def _missing(path: Path, role: str, column: Any, available: list[str]) -> DataError:
    shown = ", ".join(available[:20])
    key = "extra_columns" if role.startswith(EXTRA) else f"columns.{role}"
    return DataError(f"{path}: missing column {column!r} ({key}; the file has: {shown})")


def _read_csv(path: Path, source, fields: dict[str, Any], spec: ReadSpec) -> dict:
    names = list(spec.names) if spec.names else None
    encoding = "utf8" if _is_utf8(spec.encoding) else spec.encoding
    read = dict(column_names=names, skip_rows=1 if (spec.header and names) else 0,
                autogenerate_column_names=not spec.header and not names, encoding=encoding)
    quoting = spec.quote_char not in (None, "", False)
    parse = pcsv.ParseOptions(delimiter=spec.sep,
                              quote_char=spec.quote_char if quoting else False)
    try:
        with source() as f:
            header = pcsv.open_csv(f, read_options=pcsv.ReadOptions(**read),
                                   parse_options=parse).schema.names
    except pa.ArrowInvalid as e:  # the first block already has a ragged line
        if "invalid UTF8" in str(e):
            raise
        raise _csv_error(path, source, read, parse, e) from None
    wanted = {}
    for role, column in fields.items():
        name = f"f{column}" if read["autogenerate_column_names"] and isinstance(column, int) else (
            str(column))
        if name not in header:
            raise _missing(path, role, column, header)
        wanted[role] = name
    string = pa.string()
    typed = {"rating": pa.float32(), "timestamp": pa.int64() if spec.numeric_time else string}
    for fast in (True, False):  # typed columns first (less memory); strings locate bad values
        types = {c: (pa.dictionary(pa.int32(), string) if r in ("user", "item") else (
            typed.get(r, string) if fast else string)) for r, c in wanted.items()}
        convert = pcsv.ConvertOptions(column_types=types, include_columns=list(dict.fromkeys(
            wanted.values())), strings_can_be_null=False, quoted_strings_can_be_null=False,
            null_values=[] if fast else None)  # fast: an empty number is a conversion error
        try:
            with source() as f:
                table = pcsv.read_csv(f, read_options=pcsv.ReadOptions(block_size=_BLOCK, **read),
                                      parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as e:
            if "invalid UTF8" in str(e):
                raise
            if fast and "conversion error" in str(e):
                continue
            raise _csv_error(path, source, read, parse, e) from None
        return {role: table[name] for role, name in wanted.items()}
    raise AssertionError("unreachable")


def _csv_error(path: Path, source, read: dict, parse, error: Exception) -> DataError:
    """Re-parse single-threaded to find the ragged line (the fast parse does not number it)."""
    found = []

    def handler(row):
        found.append(row)
        return "error"

    try:
        with source() as f:
            pcsv.read_csv(f, read_options=pcsv.ReadOptions(use_threads=False, **read),
                          parse_options=pcsv.ParseOptions(
                              delimiter=parse.delimiter, quote_char=parse.quote_char,
                              invalid_row_handler=handler))
    except pa.ArrowInvalid:
        pass
    if not found:
        return DataError(f"{path}: cannot parse ({str(error).strip().splitlines()[0]})")
    row = found[0]
    with source() as f:
        lines = f.read().split(b"\n")
    line = next((n for n, text in enumerate(lines, 1)
                 if text.rstrip(b"\r").decode(read["encoding"], "replace") == row.text),
                row.number)
    cut = (line == len(lines) and lines[-1] != b"") and row.actual_columns < row.expected_columns
    hint = "; it ends the file without a newline: the file looks truncated" if cut else ""
    return DataError(f"{path}: line {line} has {row.actual_columns} fields, expected "
                     f"{row.expected_columns} ({row.text[:80]!r}){hint}")


def _read_json(path: Path, source, fields: dict[str, Any], numeric_time: bool) -> dict:
    """JSON lines: pyarrow with the mapped fields' schema; per-line json only on a mismatch."""
    time_types = (pa.float64(), pa.string()) if numeric_time else (pa.string(), pa.float64())
    for id_type in (pa.string(), pa.int64()):
        for time_type in time_types if "timestamp" in fields else time_types[:1]:
            schema = pa.schema([(str(c), id_type if r in ("user", "item") else (
                time_type if r == "timestamp" else pa.string() if r.startswith(EXTRA)
                else pa.float64())) for r, c in fields.items()])
            try:
                with source() as f:
                    table = pjson.read_json(f, read_options=pjson.ReadOptions(
                        block_size=_BLOCK), parse_options=pjson.ParseOptions(
                        explicit_schema=schema, unexpected_field_behavior="ignore"))
            except pa.ArrowInvalid:
                continue
            for role, column in fields.items():
                if table[str(column)].null_count == len(table) and len(table):
                    raise _missing(path, role, column, [])
            return {role: table[str(column)] for role, column in fields.items()}
    with source() as f:
        data = f.read()
    return _json_by_line(path, data, fields)


def _json_by_line(path: Path, data: bytes, fields: dict[str, Any]) -> dict:
    values = {role: [] for role in fields}
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {n}: not JSON ({e.msg}: {line[:60]!r})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {n}: expected a JSON object, got {line[:60]!r}")
        for role, column in fields.items():
            if column not in record:
                raise DataError(f"{path}: line {n}: missing column {column!r} (columns.{role})")
            values[role].append(record[column])
    return {role: pa.chunked_array([pa.array(_uniform(v))]) for role, v in values.items()}


def _uniform(values: list) -> list:
    """Mixed ints and strings (ids) become strings; numbers stay numbers."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        return [None if v is None else str(v) for v in values]
    return values


def _read_parquet(path: Path, fields: dict[str, Any]) -> dict:
    if not path.is_file():
        raise DataError(f"missing file {path}")
    try:
        names = pq.read_schema(path).names
        for role, column in fields.items():
            if str(column) not in names:
                raise _missing(path, role, column, names)
        table = pq.read_table(path, columns=list(dict.fromkeys(map(str, fields.values()))))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: cannot read parquet ({e})") from None
    return {role: table[str(column)] for role, column in fields.items()}
