"""A fast binary cache of parsed datasets (npz, no pickle), written atomically.

Strings (titles, vocabularies, string user attributes) are stored as one UTF-8
byte blob plus offsets and 2-D features as coordinate lists, so a cache file is
small and loading needs neither pickle nor a text parser. A writer killed mid-save
leaves a ``.tmp`` file that the next save in that folder removes (`remove_orphans`).

``FORMAT_VERSION`` is part of every :func:`content_key` (so a new version uses new
file names) and is written into each file; :func:`load` rejects another
version, which :func:`cached` then rebuilds. Version 2 added user attributes;
string raw ids (stored like titles), ``parts`` and ``universe`` are optional keys
of version 2 (a file without them loads as before).

:func:`content_key` keys a cache by the files' bytes (a digest), not their path
and mtime, so a copied or touched file still hits its cache and an edited one misses.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: orphans are removed by age only
    fcntl = None

from jaxrec.data.interactions import Interactions
from jaxrec.io import file_digest, publish

FORMAT_VERSION = 2
_COLUMNS = ("users", "items", "ratings", "timestamps", "user_ids", "item_ids")


def content_key(paths: Iterable[str | os.PathLike], **params) -> str:
    """A short hash of the source files' contents (blake2b) and parse parameters.

    A missing file (an optional one, e.g. MovieLens ``tags.csv``) counts as absent, so
    adding it later misses the cache. Same-size edits whose mtime was restored (``cp -p``,
    rsync) change the digest; a touched or copied file with the same bytes still hits.
    """
    digests = []
    for p in paths:
        digests.append(file_digest(p) if Path(p).is_file() else None)
    blob = json.dumps({"v": FORMAT_VERSION, "files": digests, "params": params},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_strings(strings) -> tuple[np.ndarray, np.ndarray]:
    encoded = [("" if s is None else str(s)).encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _decode_strings(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    raw = blob.tobytes()
    out = np.empty(len(offsets) - 1, dtype=object)
    out[:] = [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    return out


def save(inter: Interactions, path: str | os.PathLike) -> None:
    """Write ``inter`` to ``path`` (npz) via a temporary file and ``os.replace``."""
    path = Path(path)
    arrays = {name: getattr(inter, name) for name in _COLUMNS}
    meta = {"version": FORMAT_VERSION, "name": inter.name, "feature_vocab": inter.feature_vocab,
            "has_titles": inter.item_titles is not None, "features": {},
            "user_attributes": {}, "string_ids": [], "universe": inter.universe,
            "extra_columns": list(inter.extra_columns)}
    for name in ("user_ids", "item_ids"):
        if arrays[name].dtype == object or arrays[name].dtype.kind == "U":
            arrays[f"{name}_blob"], arrays[f"{name}_offsets"] = _encode_strings(arrays.pop(name))
            meta["string_ids"].append(name)
    if inter.parts is not None:
        arrays["parts"] = np.asarray(inter.parts, np.int8)
    if inter.user_attribute_ids is not None:
        arrays["user_attribute_ids"] = np.asarray(inter.user_attribute_ids)
    for key, value in inter.user_attributes.items():
        value = np.asarray(value)
        if value.dtype == object:
            arrays[f"u_{key}_blob"], arrays[f"u_{key}_offsets"] = _encode_strings(value)
        else:
            arrays[f"u_{key}"] = value
        meta["user_attributes"][key] = {"strings": value.dtype == object}
    for key, value in inter.extra_columns.items():  # kept as str (context vocabularies)
        arrays[f"x_{key}_blob"], arrays[f"x_{key}_offsets"] = _encode_strings(
            np.asarray(value, dtype=object))
    if inter.item_titles is not None:
        arrays["titles_blob"], arrays["titles_offsets"] = _encode_strings(inter.item_titles)
    for key, value in inter.item_features.items():
        value = np.asarray(value)
        if value.ndim == 2:  # store sparse: most multi-hot / count matrices are mostly zero
            rows, cols = np.nonzero(value)
            arrays[f"f_{key}_rows"] = rows.astype(np.int32)
            arrays[f"f_{key}_cols"] = cols.astype(np.int32)
            arrays[f"f_{key}_vals"] = value[rows, cols]
            meta["features"][key] = {"sparse": True, "shape": list(value.shape),
                                     "dtype": value.dtype.str}
        else:
            arrays[f"f_{key}"] = value
            meta["features"][key] = {"sparse": False}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _lock(f)  # held while writing: a live writer's file is never taken for an orphan
            np.savez(f, **arrays)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _lock(f) -> bool:
    """Take an exclusive non-blocking lock on ``f``; False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: treat as free
        return True
    return True


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files (``.*.tmp``) that killed writers left in ``folder``.

    A writer holds a lock on its temporary file, so only files no live process is
    writing are removed (where locks are unavailable, only those older than a day).
    Returns the removed paths.
    """
    removed = []
    for tmp in Path(folder).glob(".*.npz.*.tmp"):
        try:
            if fcntl is None and time.time() - tmp.stat().st_mtime < 86400:
                continue
            with open(tmp, "rb") as f:
                if not _lock(f):
                    continue
                tmp.unlink()
            removed.append(tmp)
        except OSError:  # gone meanwhile, or not ours to delete
            continue
    return removed


def load(path: str | os.PathLike) -> Interactions:
    """Read an Interactions written by :func:`save`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        if meta.get("version", 1) != FORMAT_VERSION:  # files before version 2 have no key
            raise ValueError(f"{path}: cache format {meta.get('version', 1)}, "
                             f"expected {FORMAT_VERSION}")
        strings = meta.get("string_ids", [])
        columns = {name: (_decode_strings(z[f"{name}_blob"], z[f"{name}_offsets"])
                          if name in strings else z[name]) for name in _COLUMNS}
        parts = z["parts"] if "parts" in z else None
        titles = (_decode_strings(z["titles_blob"], z["titles_offsets"])
                  if meta["has_titles"] else None)
        features = {}
        for key, spec in meta["features"].items():
            if spec["sparse"]:
                dense = np.zeros(spec["shape"], dtype=np.dtype(spec["dtype"]))
                dense[z[f"f_{key}_rows"], z[f"f_{key}_cols"]] = z[f"f_{key}_vals"]
                features[key] = dense
            else:
                features[key] = z[f"f_{key}"]
        users = {key: (_decode_strings(z[f"u_{key}_blob"], z[f"u_{key}_offsets"])
                       if spec["strings"] else z[f"u_{key}"])
                 for key, spec in meta["user_attributes"].items()}
        user_ids = z["user_attribute_ids"] if "user_attribute_ids" in z else None
        extra = {key: _decode_strings(z[f"x_{key}_blob"], z[f"x_{key}_offsets"])
                 for key in meta.get("extra_columns", [])}
    return Interactions(**columns, item_titles=titles, item_features=features,
                        feature_vocab=meta["feature_vocab"], name=meta["name"],
                        user_attributes=users, user_attribute_ids=user_ids, parts=parts,
                        universe=meta.get("universe"), extra_columns=extra)


def cached(path: str | os.PathLike, build: Callable[[], Interactions]) -> Interactions:
    """Load ``path`` if it is a readable cache file, else ``build()`` and save it.

    A corrupt cache file is rebuilt; a cache folder that cannot be written only
    warns (the parsed data is still returned).
    """
    path = Path(path)
    if path.is_file():
        try:
            return load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            pass  # stale or truncated by an older writer: rebuild below
    inter = build()
    try:
        save(inter, path)
    except OSError as e:
        warnings.warn(f"could not write dataset cache {path}: {e}", stacklevel=2)
    return inter
