"""Verified downloads from a local HTTP server on 127.0.0.1 (no internet needed)."""

import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data.datasets.movielens import load_movielens
from jaxrec.data.download import (
    MOVIELENS_ARCHIVES,
    ChecksumError,
    download_movielens,
    extract_zip,
    fetch,
)
from jaxrec.data.interactions import DataError
from jaxrec.data.summary import download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _QuietHandler.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Serves ``tmp_path / "www"`` on an ephemeral 127.0.0.1 port; yields (base_url, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    _QuietHandler.requests = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_zip(source: Path, archive: Path, top: str) -> str:
    """Zip the files of ``source`` under ``top/`` (the GroupLens layout); returns sha256."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(source.iterdir()):
            zf.write(f, f"{top}/{f.name}")
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def tiny_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ratings.csv").write_bytes(b"userId,movieId,rating,timestamp\r\n1,1,4.0,10\r\n"
                                      b"2,1,3.0,11\r\n2,5,1.5,12\r\n")
    (src / "movies.csv").write_bytes(b'movieId,title,genres\r\n1,"Toy, Story (1995)",Comedy\r\n'
                                     b"5,Heat (1995),Action|Crime\r\n")
    return src


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_download_real_archive_layout(data_dir, tmp_path, server):
    base_url, www = server
    sha = make_zip(Path(data_dir) / "ml-latest-small", www / "ml-latest-small.zip",
                   "ml-latest-small")
    cache = tmp_path / "cache"
    inter = load_movielens("ml-latest-small", data_dir=None, cache_dir=str(cache),
                           base_url=base_url, sha256=sha)
    assert (len(inter), inter.num_users, inter.num_items) == (100836, 610, 9724)
    assert inter.item_titles[inter.item_index[1]] == "Toy Story (1995)"
    assert (cache / "movielens" / "ml-latest-small" / "ratings.csv").is_file()
    assert (cache / "movielens" / "ml-latest-small.zip").is_file()
    assert _QuietHandler.requests == ["/ml-latest-small.zip"]


def test_download_then_reuse_without_server(tmp_path, server, monkeypatch):
    base_url, www = server
    sha = make_zip(tiny_source(tmp_path), www / "ml-latest-small.zip", "ml-latest-small")
    monkeypatch.setenv("JAXREC_MOVIELENS_URL", base_url)  # the env var picks the server
    cache = tmp_path / "cache"
    first = load_movielens("ml-latest-small", cache_dir=str(cache), sha256=sha)
    assert list(first.item_titles) == ["Toy, Story (1995)", "Heat (1995)"]
    monkeypatch.setenv("JAXREC_MOVIELENS_URL", "http://127.0.0.1:9")  # nothing listens there
    again = load_movielens("ml-latest-small", cache_dir=str(cache), sha256=sha, use_cache=False)
    np.testing.assert_array_equal(first.ratings, again.ratings)
    assert _QuietHandler.requests == ["/ml-latest-small.zip"]


def test_wrong_checksum_raises_and_leaves_nothing(tmp_path, server):
    base_url, www = server
    sha = make_zip(tiny_source(tmp_path), www / "ml-latest-small.zip", "ml-latest-small")
    wrong = "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as err:
        load_movielens("ml-latest-small", cache_dir=str(cache), base_url=base_url, sha256=wrong)
    message = str(err.value)
    assert "\n" not in message and sha in message and wrong in message
    assert files_under(cache) == []
    with pytest.raises(ChecksumError):  # the official checksum does not match a test zip either
        download("ml-latest-small", cache, base_url=base_url)
    assert files_under(cache) == []


def test_unreachable_server_and_download_disabled(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="download of http://127.0.0.1:9/ml-1m.zip failed"):
        download_movielens("ml-1m", cache, base_url="http://127.0.0.1:9")
    assert files_under(cache) == []
    with pytest.raises(DataError, match="download=False"):
        load_movielens("ml-1m", cache_dir=str(cache), download=False)


def test_a_failed_download_says_how_to_get_the_data_another_way(tmp_path):
    with pytest.raises(DataError) as err:
        download_movielens("ml-1m", tmp_path / "cache", base_url="http://127.0.0.1:9")
    message = str(err.value)
    assert "\n" not in message and "JAXREC_MOVIELENS_URL" in message
    assert f"by hand into {tmp_path / 'cache' / 'movielens' / 'ml-1m'}" in message


def test_data_dir_without_the_variant_reads_a_downloaded_copy(tmp_path, server, monkeypatch):
    base_url, www = server
    sha = make_zip(tiny_source(tmp_path), www / "ml-latest-small.zip", "ml-latest-small")
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    with pytest.raises(DataError, match="`jaxrec data download ml-latest-small` fetches it"):
        load_movielens("ml-latest-small", data_dir=str(data_dir), cache_dir=str(cache),
                       base_url=base_url, sha256=sha)
    assert files_under(cache) == []  # a set data_dir never downloads by itself

    import subprocess
    import sys

    env = {**__import__("os").environ, "JAXREC_DATA_DIR": str(data_dir),
           "JAXREC_CACHE_DIR": str(cache), "JAXREC_MOVIELENS_URL": base_url}
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "data", "download",
                           "ml-latest-small", f"+data.dataset.sha256={sha}"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"not in data_dir {data_dir}: downloading it into the cache" in proc.stderr
    assert "3 interactions ready" in proc.stdout
    inter = load_movielens("ml-latest-small", data_dir=str(data_dir), cache_dir=str(cache))
    assert list(inter.item_titles) == ["Toy, Story (1995)", "Heat (1995)"]
    (data_dir / "ml-latest-small").mkdir()  # a folder in data_dir always wins, and is checked
    with pytest.raises(DataError, match="missing file .*ratings.csv"):
        load_movielens("ml-latest-small", data_dir=str(data_dir), cache_dir=str(cache))


def test_fetch_keeps_a_verified_file_and_replaces_a_bad_one(tmp_path, server):
    base_url, www = server
    (www / "a.bin").write_bytes(b"hello")
    sha = hashlib.sha256(b"hello").hexdigest()
    dest = tmp_path / "dl" / "a.bin"
    fetch(f"{base_url}/a.bin", dest, sha)
    fetch(f"{base_url}/a.bin", dest, sha.upper())
    assert _QuietHandler.requests == ["/a.bin"]  # the second call found it verified
    dest.write_bytes(b"tampered")
    fetch(f"{base_url}/a.bin", dest, sha)
    assert dest.read_bytes() == b"hello" and len(_QuietHandler.requests) == 2
    dest.write_bytes(b"tampered")
    with pytest.raises(ChecksumError):
        fetch(f"{base_url}/a.bin", dest, "f" * 64)
    assert files_under(dest.parent) == []


def test_extract_rejects_paths_outside_the_folder(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataError, match="escapes"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out").exists()
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        extract_zip(tmp_path / "junk.zip", tmp_path / "out")


def test_official_checksum_table_matches_the_readme():
    assert set(MOVIELENS_ARCHIVES) == {"ml-latest-small", "ml-100k", "ml-1m", "ml-20m", "ml-25m"}
    assert MOVIELENS_ARCHIVES["ml-latest-small"] == (
        978202, "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436")
    assert all(len(sha) == 64 for _, sha in MOVIELENS_ARCHIVES.values())
