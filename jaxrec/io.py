"""Atomic file writes: a run that dies never leaves a half-written result behind.

Files get the mode ``open`` would give them (``0o666`` less the umask), so a colleague on
a shared machine can read results written under the usual umask 022.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str, path: Path) -> None:
    """Give the temporary file the mode a plain ``open`` would (``0o666 & ~umask``; mkstemp
    makes it 0600, which would keep colleagues out of shared result folders), then rename."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def atomic_write_with(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it to ``path``.

    For writers that take a file name (``DataFrame.to_parquet``, ``pyarrow.parquet.write_table``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_dir(path: str | os.PathLike) -> Path:
    """The run folder ``path``, checked before anything is written: a one-line ValueError
    naming ``paths.output_dir`` when it (or a parent) is a file, or cannot be created or
    written to. Creates the folder; returns it.
    """
    path = Path(path).expanduser()
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            what = "" if parent == path else f" ({parent} is a file)"
            raise ValueError(f"paths.output_dir={path}: not a folder{what}")
        if parent.exists():
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"paths.output_dir={path}: cannot create it ({e.strerror or e})"
                         ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"paths.output_dir={path}: not writable (permission denied)")
    return path


def file_digest(path: str | os.PathLike, algorithm: str = "blake2b") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (blake2b: about 1 GB/s per core)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
