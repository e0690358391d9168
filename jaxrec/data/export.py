"""Writing the exact split a run trained on, for a peer library (``jaxrec data export``).

The parts of a :class:`~jaxrec.data.pipeline.Dataset` (after preprocessing and the split:
the rows the model saw and was evaluated on) are written with their raw ids, each part
in its row order, in one of three formats:

``csv``
    ``train.csv`` / ``valid.csv`` / ``test.csv`` with the header
    ``user,item,rating,timestamp`` (string ids quoted). Reload with ``data=table``.
``recbole``
    ``NAME.train.inter`` / ``NAME.valid.inter`` / ``NAME.test.inter``, tab-separated
    with RecBole's ``user_id:token	item_id:token	rating:float	timestamp:float``
    header (RecBole's ``benchmark_filename``). Reload with ``data=recbole``.
``adjacency``
    LightGCN's ``train.txt`` / ``valid.txt`` / ``test.txt``: one line per user,
    ``user item item ...`` in jaxrec's 0-based indices (``train.txt`` lists every user,
    so users without training rows keep their index), plus LightGCN's
    ``user_list.txt`` / ``item_list.txt`` (``org_id remap_id``) mapping them back to the
    raw ids. Implicit only: ratings and timestamps are not written. Reload with
    ``data=adjacency``.

Each file is written atomically; ``export.json`` says what was written and the
overrides that load it back with its split kept (`reload_overrides`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from jaxrec.data.interactions import DataError, Interactions
from jaxrec.io import atomic_write_json, atomic_write_text, atomic_write_with

FORMATS = ("csv", "recbole", "adjacency")
RECBOLE_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def split_parts(dataset) -> dict[str, Interactions]:
    """``{"train": ..., "valid": ..., "test": ...}`` (valid only when non-empty)."""
    if dataset.fold_in:
        raise DataError("data export: a strong split (held-out users with fold-in histories) "
                        "has no train/valid/test files; export a row split instead")
    parts = {"train": dataset.train}
    if dataset.has_valid:
        parts["valid"] = dataset.valid
    parts["test"] = dataset.test
    return parts


def _table(part: Interactions) -> pa.Table:
    def ids(vocab: np.ndarray, index: np.ndarray):
        raw = vocab[index]
        return pa.array(raw.tolist() if raw.dtype == object else raw)

    return pa.table({"user": ids(part.user_ids, part.users),
                     "item": ids(part.item_ids, part.items),
                     "rating": pa.array(part.ratings.astype(np.float64)),
                     "timestamp": pa.array(part.timestamps.astype(np.int64))})


def _write_rows(path: Path, table: pa.Table, *, header: str | None, sep: str) -> None:
    """``table`` as delimited text (floats in shortest round-trip form), atomically."""
    for column in ("user", "item") if sep == "\t" else ():
        values = table[column]
        if pa.types.is_string(values.type) and any("\t" in v or "\n" in v
                                                   for v in values.to_pylist()):
            raise DataError(f"data export: a raw {column} id holds a tab or a newline; "
                            "RecBole's .inter files cannot hold it (use --format csv)")
    options = pcsv.WriteOptions(include_header=header is None, delimiter=sep,
                                quoting_style="needed" if sep == "," else "none")

    def write(tmp: str) -> None:
        buffer = io.BytesIO()
        pcsv.write_csv(table, buffer, write_options=options)
        with open(tmp, "wb") as f:
            f.write((header or "").encode() + buffer.getvalue())

    atomic_write_with(path, write)


def _adjacency_lines(part: Interactions, *, every_user: bool) -> str:
    order = np.argsort(part.users, kind="stable")
    users, items = part.users[order], part.items[order]
    starts = np.searchsorted(users, np.arange(part.num_users + 1))
    lines = []
    for u in range(part.num_users):
        row = items[starts[u]:starts[u + 1]]
        if len(row) or every_user:
            lines.append(" ".join(map(str, [u, *row.tolist()])))
    return "\n".join(lines) + "\n"


def _id_list(vocab: np.ndarray) -> str:
    raw = [str(x) for x in vocab.tolist()]
    if any(" " in r or "\n" in r for r in raw):
        raise DataError("data export: a raw id holds a space or a newline; LightGCN's "
                        "*_list.txt cannot hold it (use --format csv)")
    return "org_id remap_id\n" + "".join(f"{r} {i}\n" for i, r in enumerate(raw))


def export_split(dataset, fmt: str, out_dir: str | Path, *, name: str | None = None,
                 source: Any = None) -> list[Path]:
    """Write ``dataset``'s train / valid / test parts to ``out_dir`` in format ``fmt``.

    Args:
      dataset: a `jaxrec.data.pipeline.Dataset` (not a strong split).
      fmt: ``csv`` | ``recbole`` | ``adjacency`` (module docstring).
      out_dir: the folder to write (created).
      name: the RecBole dataset name (file prefix); default: the dataset's name.
      source: what was exported (a run dir or a data config name), for ``export.json``.

    Returns:
      The written files, ``export.json`` last.
    """
    if fmt not in FORMATS:
        raise DataError(f"data export: --format {fmt!r} is not one of {', '.join(FORMATS)}")
    parts = split_parts(dataset)
    out = Path(out_dir).expanduser()
    name = _slug(name or dataset.info.name or "data")
    written = []
    for part_name, part in parts.items():
        if fmt == "csv":
            path = out / f"{part_name}.csv"
            _write_rows(path, _table(part), header=None, sep=",")
        elif fmt == "recbole":
            path = out / f"{name}.{part_name}.inter"
            _write_rows(path, _table(part), header=RECBOLE_HEADER, sep="\t")
        else:
            path = out / f"{part_name}.txt"
            atomic_write_text(path, _adjacency_lines(part, every_user=part_name == "train"))
        written.append(path)
    if fmt == "adjacency":
        for kind, vocab in (("user", dataset.full.user_ids), ("item", dataset.full.item_ids)):
            written.append(out / f"{kind}_list.txt")
            atomic_write_text(written[-1], _id_list(vocab))
    manifest = {"source": None if source is None else str(source), "format": fmt,
                "dataset": dataset.info.name, "implicit": dataset.info.implicit,
                "rows": {k: len(v) for k, v in parts.items()},
                "users": dataset.info.num_users, "items": dataset.info.num_items,
                "files": [p.name for p in written],
                "reload": reload_overrides(fmt, out, name=name, implicit=dataset.info.implicit,
                                           has_valid="valid" in parts)}
    written.append(out / "export.json")
    atomic_write_json(written[-1], manifest)
    return written


def reload_overrides(fmt: str, out_dir: str | Path, *, name: str = "data",
                     implicit: bool = False, has_valid: bool = True) -> list[str]:
    """The ``jaxrec train`` overrides that load an export back with its split kept."""
    out = Path(out_dir).expanduser().resolve()
    split = ["data.split.method=predefined", f"data.split.valid={0.1 if has_valid else 0.0}"]
    pre = ["data.preprocess.implicit=true"] if implicit and fmt != "adjacency" else []
    if fmt == "csv":
        files = [f"data.dataset.path={out / 'train.csv'}",
                 *([f"data.dataset.valid=[{out / 'valid.csv'}]"] if has_valid else []),
                 f"data.dataset.test=[{out / 'test.csv'}]"]
        return ["data=table", *files, "data.dataset.columns.user=user",
                "data.dataset.columns.item=item", "data.dataset.columns.rating=rating",
                "data.dataset.columns.timestamp=timestamp", *pre, *split]
    if fmt == "recbole":
        return ["data=recbole", f"data.dataset.dir={out}", f"data.dataset.name={name}",
                *pre, *split]
    return ["data=adjacency", f"data.dataset.dir={out}", *split]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name)) or "data"
