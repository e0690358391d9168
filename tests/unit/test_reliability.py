"""Defects 5-10 of the reliability issue: a content-keyed parse cache, range-checked and
complete ratings, split values, ``data info`` overrides, download deadlines and leftovers,
sweeps that fail fast and exit non-zero, one-line option and output-folder errors."""

from __future__ import annotations

import http.server
import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data import cache
from jaxrec.data.datasets.movielens import load_movielens
from jaxrec.data.download import download_movielens, fetch
from jaxrec.data.interactions import DataError
from jaxrec.io import check_output_dir
from tests.unit.test_data_movielens import write_csv_variant

# ---------------------------------------------------------------- defect 6: the parse cache


def test_same_size_edit_with_restored_mtime_is_seen(tmp_path):
    folder = write_csv_variant(tmp_path / "data")
    ratings = folder / "ratings.csv"
    load = lambda: load_movielens(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "c"))
    first = load()
    assert sorted(first.ratings.tolist()) == [0.5, 2.0, 3.5, 4.0, 5.0]
    stat = ratings.stat()
    text = ratings.read_bytes()
    edited = text.replace(b"1,10,4.0,100", b"1,10,1.0,100")  # same size, other rating
    assert len(edited) == len(text) and edited != text
    ratings.write_bytes(edited)
    os.utime(ratings, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p / rsync leave it
    assert ratings.stat().st_size == stat.st_size
    assert ratings.stat().st_mtime_ns == stat.st_mtime_ns
    again = load()
    assert sorted(again.ratings.tolist()) == [0.5, 1.0, 2.0, 3.5, 5.0]
    assert len(list((tmp_path / "c" / "parsed").glob("movielens-*.npz"))) == 2


def test_content_key_counts_a_missing_optional_file(tmp_path):
    (tmp_path / "a").write_text("x")
    without = cache.content_key([tmp_path / "a", tmp_path / "tags.csv"])
    (tmp_path / "tags.csv").write_text("")
    assert cache.content_key([tmp_path / "a", tmp_path / "tags.csv"]) != without


def test_legitimate_ml_latest_small_still_loads(data_dir, tmp_path):
    inter = load_movielens(data_dir=data_dir, cache_dir=str(tmp_path), use_cache=False)
    assert len(inter) == 100836 and inter.ratings.min() == 0.5 and inter.ratings.max() == 5.0


# ---------------------------------------------------------------- defect 7: ratings


@pytest.mark.parametrize(("row", "shown"), [("3,10,-3,104", "'-3'"), ("3,10,inf,104", "'inf'"),
                                            ("3,10,2e6,104", "'2e+06'")])
def test_movielens_ratings_are_range_checked(tmp_path, row, shown):
    write_csv_variant(tmp_path, ratings=["userId,movieId,rating,timestamp", "1,10,4.0,100", row])
    with pytest.raises(DataError) as err:
        load_movielens(data_dir=str(tmp_path), use_cache=False)
    message = str(err.value)
    assert "\n" not in message and "ratings.csv" in message and "line 3" in message
    assert shown in message


@pytest.mark.parametrize("last", ["3,10", "3,10,", "3,10,4.0,"])
def test_movielens_truncated_ratings_fail(tmp_path, last):
    folder = write_csv_variant(tmp_path)
    path = folder / "ratings.csv"
    path.write_bytes(path.read_bytes() + last.encode())  # no final newline
    with pytest.raises(DataError) as err:
        load_movielens(data_dir=str(tmp_path), use_cache=False)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "line 7" in message
    assert "truncated" in message


def test_a_complete_last_row_without_newline_is_fine(tmp_path):
    folder = write_csv_variant(tmp_path)
    path = folder / "ratings.csv"
    path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
    assert len(load_movielens(data_dir=str(tmp_path), use_cache=False)) == 5


# ---------------------------------------------------------------- defect 9: downloads, leftovers


class _Trickle(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass


def test_download_deadline_and_no_part_file(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/a.zip"
        t0 = time.monotonic()
        with pytest.raises(DataError) as err:
            fetch(url, tmp_path / "a.zip", "0" * 64, deadline=1.5)
        assert time.monotonic() - t0 < 10
    finally:
        httpd.shutdown()
        httpd.server_close()
    message = str(err.value)
    assert "\n" not in message and "within 1.5 s" in message
    assert "JAXREC_DOWNLOAD_DEADLINE" in message
    assert list(tmp_path.iterdir()) == []


def test_download_deadline_from_the_environment(monkeypatch):
    from jaxrec.data.download import DEFAULT_DEADLINE, download_deadline

    assert download_deadline() == DEFAULT_DEADLINE
    monkeypatch.setenv("JAXREC_DOWNLOAD_DEADLINE", "2.5")
    assert download_deadline() == 2.5
    monkeypatch.setenv("JAXREC_DOWNLOAD_DEADLINE", "soon")
    with pytest.raises(DataError, match="JAXREC_DOWNLOAD_DEADLINE='soon'"):
        download_deadline()


def test_an_archive_that_does_not_extract_is_not_kept(tmp_path):
    import hashlib

    www = tmp_path / "www"
    www.mkdir()
    (www / "ml-latest-small.zip").write_bytes(b"not a zip at all")
    sha = hashlib.sha256(b"not a zip at all").hexdigest()
    with pytest.raises(DataError, match="not a valid zip"):
        download_movielens("ml-latest-small", tmp_path / "cache", base_url=www.as_uri(),
                           sha256=sha)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_orphan_cache_tmp_files_are_removed_on_the_next_write(tmp_path):
    from jaxrec.data.datasets.synthetic import make_synthetic

    parsed = tmp_path / "parsed"
    parsed.mkdir()
    orphan = parsed / ".movielens-x.npz.abc123.tmp"  # a writer killed by kill -9
    orphan.write_bytes(b"half")
    cache.save(make_synthetic(num_users=5, num_items=6, interactions_per_user=2),
               parsed / "synthetic.npz")
    assert not orphan.exists()
    assert sorted(p.name for p in parsed.iterdir()) == ["synthetic.npz"]


def test_a_live_writers_tmp_file_is_kept(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    live = tmp_path / ".t.npz.live.tmp"
    with open(live, "wb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        import subprocess
        import sys

        code = ("import sys; from pathlib import Path; from jaxrec.data.cache import "
                "remove_orphans; print(len(remove_orphans(Path(sys.argv[1]))))")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
        assert out.stdout.strip() == "0", out.stderr
        assert live.exists()


# ---------------------------------------------------------------- defect 10: splits, data info


@pytest.mark.parametrize("method", ["random", "user_ratio", "temporal", "cold_item", "strong"])
def test_split_test_zero_is_refused(method):
    from jaxrec.config import SplitConfig
    from jaxrec.data.datasets.synthetic import make_synthetic
    from jaxrec.data.splits import split

    inter = make_synthetic(num_users=10, num_items=8, interactions_per_user=3)
    with pytest.raises(DataError, match=r"split.test=0 leaves nothing to test"):
        split(inter, SplitConfig(method=method, test=0))
    assert len(split(inter, SplitConfig(method="leave_last", test=0))[2]) > 0  # ignores test


def test_data_info_applies_preprocess_overrides(data_dir, capsys):
    from jaxrec.cli import main

    main(["data", "info", "ml-latest-small", f"paths.data_dir={data_dir}"])
    plain = capsys.readouterr().out
    main(["data", "info", "ml-latest-small", f"paths.data_dir={data_dir}",
          "data.preprocess.rating_threshold=4.5"])
    cut = capsys.readouterr().out
    assert "100,836" in plain and "raw" not in plain
    assert "100,836" not in cut.split("raw")[0] and "raw           100,836" in cut


# ---------------------------------------------------------------- defect 5: one line


def test_check_output_dir(tmp_path):
    assert check_output_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "run"):
        with pytest.raises(ValueError) as err:
            check_output_dir(bad)
        assert "\n" not in str(err.value) and "paths.output_dir=" in str(err.value)
        assert "not a folder" in str(err.value)


def test_sweep_options_are_typed():
    from jaxrec.sweep.spec import SpecError, parse_options

    opts, _, _ = parse_options(["sweep.run_cap=3", "sweep.group_memory_mb=64", "sweep.dir=null"])
    assert opts.run_cap == 3 and opts.group_memory_mb == 64.0 and opts.dir is None
    for word, expected in (("sweep.run_cap=abc", "an integer"), ("sweep.wandb=yes please",
                                                                 "true or false"),
                           ("sweep.max_group=0", "positive"), ("sweep.seed=null", "expected")):
        with pytest.raises(SpecError, match=expected) as err:
            parse_options([word])
        assert word in str(err.value)


def test_table_loader_names_a_folder_and_zip_errors(tmp_path):
    from jaxrec.data.datasets.table import load_table

    (tmp_path / "r.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        load_table(str(tmp_path / "r.csv"), {"user": "u", "item": "i"}, use_cache=False)
    with zipfile.ZipFile(tmp_path / "two.csv.zip", "w") as z:
        z.writestr("a.csv", "u,i\n1,2\n")
        z.writestr("b.csv", "u,i\n1,2\n")
    with pytest.raises(DataError, match="exactly one file"):
        load_table(str(tmp_path / "two.csv.zip"), {"user": "u", "item": "i"}, use_cache=False)


def test_ratings_above_the_cap_in_a_table(tmp_path):
    from jaxrec.data.datasets.table import load_table

    (tmp_path / "r.csv").write_text("u,i,r\n1,2,3\n1,3,1e30\n")
    with pytest.raises(DataError) as err:
        load_table(str(tmp_path / "r.csv"), {"user": "u", "item": "i", "rating": "r"},
                   use_cache=False)
    assert "line 3" in str(err.value) and "'1e+30'" in str(err.value)
    ok = tmp_path / "ok.csv"
    ok.write_text("u,i,r\n1,2,0\n1,3,999999\n")
    inter = load_table(str(ok), {"user": "u", "item": "i", "rating": "r"}, use_cache=False)
    np.testing.assert_array_equal(np.sort(inter.ratings), [0, 999999])


# ---------------------------------------------------------------- defect 8: sweeps fail fast

SPEC = """method: grid
metric: {{name: {metric}}}
parameters:
{params}
command:
  - ${{env}}
  - ${{interpreter}}
  - -m
  - jaxrec.cli
  - train
  - data=synthetic
  - model.dim=4
  - trainer.epochs=1
  - ${{args_no_hyphens}}
"""


def _spec(tmp_path, params: str, metric: str = "valid/rmse") -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(SPEC.format(metric=metric, params=params))
    return path


def _sweep_error(tmp_path, spec: Path, *extra: str) -> str:
    from jaxrec.sweep.cli import main

    with pytest.raises(SystemExit) as err:
        main([str(spec), f"sweep.dir={tmp_path / 'study'}", "sweep.wandb=false", *extra])
    message = str(err.value.code)
    assert "\n" not in message and message.startswith("error: ")
    assert not any((tmp_path / "study" / "trials").glob("*/trial.json")), "no trial ran"
    return message


def test_sweep_stops_on_a_parameter_that_does_not_exist(tmp_path):
    message = _sweep_error(tmp_path, _spec(tmp_path, "  optim.lrr: {values: [0.1, 0.2]}"))
    assert "parameters.optim.lrr" in message and "every trial would fail" in message


def test_sweep_stops_on_a_monitored_metric_never_computed(tmp_path):
    message = _sweep_error(tmp_path, _spec(tmp_path, "  optim.lr: {values: [0.1, 0.2]}",
                                           metric="valid/ndcg@7"))
    assert "valid/ndcg@7" in message and "every trial would fail" in message


def test_sweep_stops_on_wandb_online_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    from jaxrec.sweep.cli import main

    spec = _spec(tmp_path, "  optim.lr: {values: [0.1, 0.2]}")
    with pytest.raises(SystemExit) as err:
        main([str(spec), f"sweep.dir={tmp_path / 'study'}", "sweep.wandb=true"])
    message = str(err.value.code)
    assert "\n" not in message and "logger.wandb" in message and "credentials" in message
    assert not any((tmp_path / "study" / "trials").glob("*/trial.json"))


def test_sweep_value_errors_of_one_trial_do_not_stop_the_study(tmp_path):
    from jaxrec.sweep.preflight import preflight
    from jaxrec.sweep.spec import SweepOptions, load_spec
    from jaxrec.sweep.study import Study

    spec = load_spec(_spec(tmp_path, "  model.dim: {values: [0, 4]}"))
    study = Study(spec, SweepOptions(dir=str(tmp_path / "study"), wandb=False), [])
    todo, _ = study.plan([{"model.dim": 0}, {"model.dim": 4}])
    preflight(study, todo[0])  # model.dim=0 names the swept key: that trial records it


@pytest.mark.slow
def test_sweep_exits_1_when_a_trial_failed(tmp_path):
    import subprocess
    import sys

    spec = _spec(tmp_path, "  model.dim: {values: [4, 0]}")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "sweep", str(spec),
                           f"sweep.dir={tmp_path / 'study'}", "sweep.wandb=false"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 trial(s) failed") and "model.dim" in last
    assert "Traceback" not in proc.stderr


def test_an_interrupted_saves_temporary_folder_is_removed_before_the_store_is_used(tmp_path):
    """orbax removes a killed save's temporary folder in a background thread that its
    close() does not wait for; two stores opened one after the other on one folder (a
    vectorised group resuming) raced it. The store waits for the clean-up."""
    import shutil

    from jaxrec.training.checkpoint import StateCheckpoints

    store = StateCheckpoints(tmp_path / "state")
    store.save(1, {"w": np.arange(3.0)}, {"config": {}})
    store.close()
    for i in range(8):  # what a save killed mid-write leaves behind, with many files
        shutil.copytree(tmp_path / "state" / "1",
                        tmp_path / "state" / f"{i + 2}.orbax-checkpoint-tmp")
    for _ in range(2):
        again = StateCheckpoints(tmp_path / "state")
        assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["1"]
        assert again.steps() == [1]
        again.close()
