"""Verified, atomic downloads of dataset archives into the local cache.

An archive is streamed into a temporary file next to its final place, hashed on
the way, and renamed into place only when its sha256 matches; on any failure the
temporary file is removed, so the cache never holds a partial or unverified
archive. Extraction goes to a temporary folder that is renamed into place; an
archive that does not extract is removed too.

A download has an overall deadline (``DEADLINE_ENV``, default ``DEFAULT_DEADLINE``
seconds), so a server that trickles bytes cannot keep a run waiting forever; each
read also has a socket timeout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from jaxrec.data.interactions import DataError
from jaxrec.io import file_digest, publish

MOVIELENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"
URL_ENV = "JAXREC_MOVIELENS_URL"
DEADLINE_ENV = "JAXREC_DOWNLOAD_DEADLINE"
DEFAULT_DEADLINE = 1800.0
"""Seconds one download may take in all (30 min: ml-25m at 150 kB/s)."""

# Official archive sizes and sha256 (TensorFlow Datasets checksum registry).
MOVIELENS_ARCHIVES: dict[str, tuple[int, str]] = {
    "ml-latest-small": (978202, "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
    "ml-100k": (4924029, "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"),
    "ml-1m": (5917549, "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
    "ml-20m": (198702078, "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
    "ml-25m": (261978986, "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
}
MOVIELENS_VARIANTS = tuple(MOVIELENS_ARCHIVES)


class ChecksumError(DataError):
    """A downloaded file does not have the expected sha256."""


def check_variant(variant: str) -> None:
    """Raise DataError listing the valid names when ``variant`` is unknown."""
    if variant not in MOVIELENS_ARCHIVES:
        raise DataError(f"unknown MovieLens variant {variant!r}; valid names: "
                        f"{', '.join(MOVIELENS_VARIANTS)}")


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (what the publishers' checksums are)."""
    return file_digest(path, "sha256")


def download_deadline() -> float:
    """The overall download deadline in seconds: ``$JAXREC_DOWNLOAD_DEADLINE`` or 30 min."""
    raw = os.environ.get(DEADLINE_ENV)
    if raw is None or raw == "":
        return DEFAULT_DEADLINE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DataError(f"{DEADLINE_ENV}={raw!r}: expected a positive number of seconds")
    return value


def fetch(url: str, dest: str | os.PathLike, sha256: str, *, timeout: float = 60.0,
          deadline: float | None = None) -> Path:
    """Download ``url`` to ``dest`` and verify its sha256, atomically.

    An existing ``dest`` with the right checksum is kept; one with a wrong
    checksum is deleted and downloaded again.

    Args:
      url: http(s) or file URL.
      dest: final path of the file.
      sha256: expected hex digest (case-insensitive).
      timeout: socket timeout in seconds (one read).
      deadline: seconds the whole download may take; default `download_deadline`.

    Returns:
      ``dest`` as a Path.

    Raises:
      ChecksumError: the downloaded bytes have another sha256 (nothing is kept).
      DataError: the URL cannot be read, or the deadline passed (nothing is kept).
    """
    dest = Path(dest)
    expected = sha256.lower()
    deadline = download_deadline() if deadline is None else float(deadline)
    if dest.is_file():
        if sha256_of(dest) == expected:
            return dest
        dest.unlink()  # never leave an unverified file behind, even if the new download fails
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    start = time.monotonic()
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response, \
                        _progress(response, dest.name) as bar:
                    read = getattr(response, "read1", response.read)  # what has arrived
                    for block in iter(lambda: read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                        bar.update(len(block))
                        if time.monotonic() - start > deadline:
                            raise TimeoutError("deadline")
            except (urllib.error.URLError, OSError) as e:  # TimeoutError is an OSError
                if time.monotonic() - start >= deadline:
                    raise DataError(f"download of {url} did not finish within {deadline:g} s "
                                    f"({out.tell():,} bytes received; set {DEADLINE_ENV} to "
                                    "allow more); nothing was kept") from None
                raise DataError(f"download of {url} failed: {e}") from e
        got = digest.hexdigest()
        if got != expected:
            raise ChecksumError(f"checksum mismatch for {url}: sha256 {got}, expected {expected}; "
                                "the file was discarded")
        publish(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _progress(response, name: str):
    """A byte progress bar on stderr (shown on a terminal only: ``disable=None``)."""
    from tqdm import tqdm

    length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
    return tqdm(total=int(length) if length and length.isdigit() else None, unit="B",
                unit_scale=True, unit_divisor=1024, desc=name, leave=False, disable=None)


def extract_zip(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract ``archive`` so that its files end up directly in ``dest``.

    The archive's single top-level folder (``ml-100k/`` in the GroupLens zips)
    is stripped. Extraction goes to a temporary folder renamed into place, so
    ``dest`` either holds the whole archive or does not exist.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            root = tmp.resolve()
            for member in zf.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise DataError(f"{archive}: member {member!r} escapes the archive folder")
            zf.extractall(tmp)
        entries = [p for p in tmp.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        try:
            os.replace(source, dest)
        except OSError:
            if not dest.is_dir():  # not a concurrent extraction that won the race
                raise
    except zipfile.BadZipFile as e:
        raise DataError(f"{archive}: not a valid zip archive ({e})") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download_movielens(variant: str, cache_dir: str | os.PathLike = "~/.cache/jaxrec", *,
                       base_url: str | None = None, sha256: str | None = None) -> Path:
    """Download, verify and extract a MovieLens archive into the cache.

    Layout: ``<cache_dir>/movielens/<variant>.zip`` and the extracted files in
    ``<cache_dir>/movielens/<variant>/``. An already extracted folder is reused.

    Args:
      variant: one of ``MOVIELENS_VARIANTS``.
      cache_dir: cache root (``~`` is expanded).
      base_url: where ``<variant>.zip`` lives; defaults to env ``JAXREC_MOVIELENS_URL``,
        then the GroupLens server.
      sha256: expected digest; defaults to the official one for ``variant``.

    Returns:
      The folder holding the extracted files.
    """
    check_variant(variant)
    root = Path(cache_dir).expanduser() / "movielens"
    target = root / variant
    if target.is_dir():
        return target
    base = (base_url or os.environ.get(URL_ENV) or MOVIELENS_BASE_URL).rstrip("/")
    expected = sha256 or MOVIELENS_ARCHIVES[variant][1]
    try:
        archive = fetch(f"{base}/{variant}.zip", root / f"{variant}.zip", expected)
    except ChecksumError:
        raise
    except DataError as err:  # say how to get the data another way
        raise DataError(f"{err}; set {URL_ENV} to a mirror holding {variant}.zip, or extract "
                        f"the archive by hand into {target} (or <JAXREC_DATA_DIR>/{variant})"
                        ) from None
    try:
        return extract_zip(archive, target)
    except DataError:  # a rejected archive is not kept: the next attempt downloads afresh
        archive.unlink(missing_ok=True)
        raise
