"""RecBole atomic files, with a shipped split when the dataset has one.

Zhao et al., "RecBole: Towards a Unified, Comprehensive and Efficient Framework for
Recommendation Algorithms", CIKM 2021 (recbole.io/docs/user_guide/data/atomic_files.html).
``DIR/NAME.inter`` is tab-separated, unquoted, with a ``field:type`` header such as
``user_id:token\\titem_id:token\\trating:float\\ttimestamp:float``; or, RecBole's
``benchmark_filename``, ``NAME.train.inter`` / ``NAME.valid.inter`` / ``NAME.test.inter``
whose split is kept (``parts`` 0 / 1 / 2, ``split.method=predefined``). Ids are tokens,
kept as raw ids (integers when all are). ``NAME.item`` token fields (``class:token_seq``
genres, ``brand:token``, ...) become item features when listed in ``item_fields``:
float32 ``[N, V]`` multi-hot over the field's tokens. ``.user`` files are not read.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from jaxrec.data import cache
from jaxrec.data.datasets.table import read_parts
from jaxrec.data.datasets.tabular import ReadSpec, read_file
from jaxrec.data.interactions import DataError, Interactions

SPEC = ReadSpec(sep="\t", quote_char=None)
_SPLIT = (("train", 0), ("valid", 1), ("test", 2))


def _header(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"missing file {path}")
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
    return first.split("\t")


def _field(header: list[str], name: str, path: Path, *, required: bool) -> str | None:
    for column in header:
        if column.partition(":")[0] == name:
            return column
    if required:
        raise DataError(f"{path}: missing field {name!r} (header: {', '.join(header)})")
    return None


def recbole_files(dir: str, name: str) -> list[tuple[Path, int]]:
    """``(file, part)``: the benchmark triple if ``NAME.train.inter`` exists, else ``.inter``."""
    folder = Path(dir).expanduser()
    if (folder / f"{name}.train.inter").is_file():
        return [(folder / f"{name}.{p}.inter", c) for p, c in _SPLIT
                if p == "train" or (folder / f"{name}.{p}.inter").is_file()]
    return [(folder / f"{name}.inter", 0)]


def load_recbole(dir: str, name: str, *, user_field: str = "user_id",
                 item_field: str = "item_id", rating_field: str | None = "rating",
                 time_field: str | None = "timestamp", item_fields: list[str] | None = None,
                 cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """Read RecBole atomic files ``DIR/NAME.*`` (module docstring).

    Args:
      dir: folder with the atomic files.
      name: the dataset name (file prefix).
      user_field, item_field: RecBole's ``USER_ID_FIELD`` / ``ITEM_ID_FIELD``.
      rating_field: ``RATING_FIELD``; used when the header has it (else implicit 1.0).
      time_field: ``TIME_FIELD`` (Unix seconds); used when the header has it (else 0).
      item_fields: token / token_seq fields of ``NAME.item`` to keep as item features.
      cache_dir: parsed-cache root, or None for no cache.
      use_cache: read and write the parsed cache.
    """
    files = recbole_files(dir, name)
    header = _header(files[0][0])
    fields = {"user": _field(header, user_field, files[0][0], required=True),
              "item": _field(header, item_field, files[0][0], required=True)}
    for role, field in (("rating", rating_field), ("timestamp", time_field)):
        column = field and _field(header, field, files[0][0], required=False)
        if column:
            fields[role] = column
    item_file = Path(dir).expanduser() / f"{name}.item"
    keep = list(item_fields or [])

    def build() -> Interactions:
        inter = read_parts(files, fields, SPEC, "s", name)
        if keep:
            inter = _item_features(inter, item_file, item_field, keep)
        return inter

    if not use_cache or cache_dir is None:
        return build()
    sources = [f for f, _ in files] + ([item_file] if keep else [])
    key = cache.content_key(sources, fields=fields, keep=keep, name=name, universe="union")
    return cache.cached(Path(cache_dir).expanduser() / "parsed" / f"recbole-{key}.npz", build)


def _item_features(inter: Interactions, path: Path, item_field: str, keep: list[str]
                   ) -> Interactions:
    header = _header(path)
    columns = {"item": _field(header, item_field, path, required=True)}
    for field in keep:
        column = _field(header, field, path, required=True)
        if column.partition(":")[2] not in ("token", "token_seq"):
            raise DataError(f"{path}: item field {column!r} is not token or token_seq")
        columns[field] = column
    cols, _ = read_file(path, columns, SPEC)
    ids = cols.pop("item").cast(pa.string()).to_numpy(zero_copy_only=False)
    raw = inter.item_ids.astype(str) if inter.item_ids.dtype != object else inter.item_ids
    position = {str(r): k for k, r in enumerate(raw.tolist())}
    rows = np.array([position.get(str(x), -1) for x in ids])
    features, vocab = dict(inter.item_features), dict(inter.feature_vocab)
    for field, values in cols.items():
        text = values.cast(pa.string()).to_numpy(zero_copy_only=False)
        lists = [str(t).split(" ") if columns[field].endswith("token_seq") else [str(t)]
                 for t in text]
        tokens = sorted({t for ts in lists for t in ts if t})
        col = {t: j for j, t in enumerate(tokens)}
        matrix = np.zeros((inter.num_items, len(tokens)), np.float32)
        for r, ts in zip(rows, lists, strict=True):
            if r >= 0:
                matrix[r, [col[t] for t in ts if t]] = 1.0
        features[field], vocab[field] = matrix, tokens
    return dataclasses.replace(inter, item_features=features, feature_vocab=vocab)
