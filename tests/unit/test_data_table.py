"""The generic table loader (data=table): formats, compression, encodings, ids,
timestamps, shipped splits, the parse cache, and one-line errors for bad input."""

from __future__ import annotations

import bz2
import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaxrec.config import SplitConfig
from jaxrec.data.datasets.table import load_table
from jaxrec.data.interactions import DataError
from jaxrec.data.splits import split

COLS = {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "ts"}
ROWS = [("u10", "b", 4.0, 1000), ("u2", "a", 3.5, 2000), ("u10", "c", 5.0, 3000)]
CSV = "user_id,item_id,rating,ts\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS)


def load(path, **kw):
    kw.setdefault("columns", COLS)
    return load_table(str(path), use_cache=False, **kw)


def triples(inter):
    return sorted(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist(),
                      inter.ratings.tolist(), inter.timestamps.tolist(), strict=True))


def error(path, **kw) -> str:
    with pytest.raises(DataError) as e:
        load(path, **kw)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_csv_string_ids_sorted_vocab_and_dtypes(tmp_path):
    (tmp_path / "r.csv").write_text(CSV)
    inter = load(tmp_path / "r.csv")
    assert triples(inter) == sorted(ROWS)
    assert inter.user_ids.tolist() == ["u10", "u2"] and inter.item_ids.tolist() == ["a", "b", "c"]
    assert inter.users.dtype == np.int32 and inter.items.dtype == np.int32
    assert inter.ratings.dtype == np.float32 and inter.timestamps.dtype == np.int64
    assert inter.parts is None


def test_integer_ids_stay_integers_and_padded_ids_stay_strings(tmp_path):
    (tmp_path / "r.tsv").write_text("10\t7\n2\t7\n10\t3\n")
    inter = load(tmp_path / "r.tsv", columns={"user": 0, "item": 1}, sep="\t", header=False)
    assert inter.user_ids.dtype == np.int64 and inter.user_ids.tolist() == [2, 10]
    assert inter.item_ids.tolist() == [3, 7] and inter.ratings.tolist() == [1.0] * 3
    assert inter.timestamps.tolist() == [0, 0, 0]
    (tmp_path / "p.csv").write_text("u,i\n007,1\n7,2\n")
    inter = load(tmp_path / "p.csv", columns={"user": "u", "item": "i"})
    assert inter.user_ids.tolist() == ["007", "7"]


@pytest.mark.parametrize("compression", ["gz", "bz2", "zip"])
def test_compressed_csv(tmp_path, compression):
    path = tmp_path / f"r.csv.{compression}"
    data = CSV.encode()
    if compression == "gz":
        path.write_bytes(gzip.compress(data))
    elif compression == "bz2":
        path.write_bytes(bz2.compress(data))
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("r.csv", data)
    assert triples(load(path)) == sorted(ROWS)


def test_latin1_bom_names_and_multichar_sep(tmp_path):
    (tmp_path / "l.csv").write_bytes("user_id;item_id\nJosé;Ève\n".encode("latin-1"))
    inter = load(tmp_path / "l.csv", columns={"user": "user_id", "item": "item_id"}, sep=";",
                 encoding="latin-1")
    assert inter.user_ids.tolist() == ["José"] and inter.item_ids.tolist() == ["Ève"]
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    assert triples(load(tmp_path / "b.csv")) == sorted(ROWS)
    (tmp_path / "r.dat").write_text("1::5::4::978300760\n2::6::3::978300761\n")
    inter = load(tmp_path / "r.dat", sep="::", header=False, names=["u", "i", "r", "t"],
                 columns={"user": "u", "item": "i", "rating": "r", "timestamp": "t"})
    assert inter.ratings.tolist() == [4.0, 3.0] and inter.timestamps.tolist()[0] == 978300760


def test_json_lines_and_parquet(tmp_path):
    lines = [{"reviewerID": u, "asin": i, "overall": r, "unixReviewTime": t,
              "style": {"Format:": "CD"} if t == 1000 else {"Size:": 3}} for u, i, r, t in ROWS]
    (tmp_path / "r.json.gz").write_bytes(gzip.compress(
        "".join(json.dumps(x) + "\n" for x in lines).encode()))
    cols = {"user": "reviewerID", "item": "asin", "rating": "overall",
            "timestamp": "unixReviewTime"}
    assert triples(load(tmp_path / "r.json.gz", columns=cols)) == sorted(ROWS)
    table = pa.table({"user_id": [u for u, *_ in ROWS], "item_id": [i for _, i, *_ in ROWS],
                      "rating": [r for *_, r, _ in ROWS], "ts": [t * 1000 for *_, t in ROWS]})
    pq.write_table(table, tmp_path / "r.parquet")
    assert triples(load(tmp_path / "r.parquet", timestamp_format="ms")) == sorted(ROWS)


@pytest.mark.parametrize(("fmt", "values", "want"), [
    ("iso", ["2020-01-01T00:00:00Z", "2020-01-01T02:00:00+02:00", "2020-01-01 00:00:01.5"],
     [1577836800, 1577836800, 1577836801]),
    ("iso", ["2020-01-01", "2020-01-02", "2020-01-03"], [1577836800, 1577923200, 1578009600]),
    ("%d/%m/%Y %H:%M", ["01/01/2020 00:01", "02/01/2020 00:00", "03/01/2020 00:00"],
     [1577836860, 1577923200, 1578009600]),
    ("ms", ["1577836800000", "1577836800999", "1577836801000"],
     [1577836800, 1577836800, 1577836801]),
])
def test_timestamp_formats(tmp_path, fmt, values, want):
    (tmp_path / "t.csv").write_text("user_id,item_id,ts\n" + "".join(
        f"u,{n},{v}\n" for n, v in enumerate(values)))
    inter = load(tmp_path / "t.csv", columns={"user": "user_id", "item": "item_id",
                                              "timestamp": "ts"}, timestamp_format=fmt)
    assert inter.timestamps.tolist() == want


def test_several_files_glob_and_shipped_split(tmp_path):
    (tmp_path / "a.csv").write_text("user_id,item_id\nx,1\ny,2\n")
    (tmp_path / "b.csv").write_text("user_id,item_id\nx,3\n")
    (tmp_path / "test.csv").write_text("user_id,item_id\ny,9\n")
    cols = {"user": "user_id", "item": "item_id"}
    inter = load_table(str(tmp_path / "[ab].csv"), cols, test=[str(tmp_path / "test.csv")],
                       use_cache=False)
    assert inter.item_ids.tolist() == [1, 2, 3, 9]  # the test-only item is in the universe
    assert inter.parts.tolist() == [0, 0, 0, 2]
    train, valid, test = split(inter, SplitConfig(method="predefined", valid=0.0))
    assert len(train) == 3 and valid is None and test.item_ids[test.items].tolist() == [9]


def test_universe_train_rejects_items_only_in_valid_or_test(tmp_path):
    (tmp_path / "train.csv").write_text("user_id,item_id\nx,1\ny,2\n")
    (tmp_path / "valid.csv").write_text("user_id,item_id\nx,2\n")
    (tmp_path / "test.csv").write_text("user_id,item_id\ny,1\n\nx,9\n")
    cols = {"user": "user_id", "item": "item_id"}
    kw = dict(valid=[str(tmp_path / "valid.csv")], test=[str(tmp_path / "test.csv")])
    union = load(tmp_path / "train.csv", columns=cols, **kw)
    assert union.item_ids.tolist() == [1, 2, 9]
    assert union.universe == "union of train/valid/test files"
    message = error(tmp_path / "train.csv", columns=cols, universe="train", **kw)
    assert message == (f"{tmp_path / 'test.csv'}: line 4, column 'item_id': item '9' is not in "
                       "the train files (data.dataset.universe=train; universe=union ranks it)")
    (tmp_path / "test.csv").write_text("user_id,item_id\ny,1\n")
    ok = load(tmp_path / "train.csv", columns=cols, universe="train", **kw)
    assert ok.item_ids.tolist() == [1, 2] and ok.universe.startswith("items of the train files")
    assert load(tmp_path / "train.csv", columns=cols).universe is None  # no shipped split
    assert "universe='all'" in error(tmp_path / "train.csv", columns=cols, universe="all", **kw)


def test_side_feature_tables_for_table_data(tmp_path):
    """data.features.tables gives a data=table dataset item and user features (string ids),
    from CSV or JSON lines files."""
    from jaxrec.data.pipeline import load_and_split

    (tmp_path / "r.csv").write_text(CSV)
    (tmp_path / "items.jsonl").write_text(
        '{"item_id": "a", "genres": ["x", "y"], "price": 3.5}\n'
        '{"item_id": "c", "genres": ["y"], "price": 10}\n')
    (tmp_path / "users.csv.gz").write_bytes(gzip.compress(b"who,country\nu2,fr\nu10,de\n"))
    spec = {"tables": [
        {"path": str(tmp_path / "items.jsonl"), "side": "item", "key": "item_id",
         "columns": {"genres": "multi_categorical", "price": "numeric"}},
        {"path": str(tmp_path / "users.csv.gz"), "side": "user", "key": "who",
         "columns": {"country": "categorical"}}]}
    ds = load_and_split(load(tmp_path / "r.csv"), None, SplitConfig(method="random", test=0.3),
                        spec)
    item, user = ds.features.item, ds.features.user
    vocab = np.asarray(item.vocab)
    tokens = lambda row: sorted(vocab[item.ids[row][item.weights[row] != 0]].tolist())
    a, b, c = (ds.full.item_index[k] for k in ("a", "b", "c"))
    assert tokens(a) == ["genres=x", "genres=y", "price=value"] and tokens(b) == []
    assert tokens(c) == ["genres=y", "price=value"]
    u2 = ds.full.user_index["u2"]
    assert np.asarray(user.vocab)[user.ids[u2][0]] == "country=fr"


def test_cache_keyed_by_content(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(CSV)
    kw = dict(columns=COLS, cache_dir=str(tmp_path / "cache"), test=[str(path)])
    first = load_table(str(path), **kw)
    assert len(list((tmp_path / "cache" / "parsed").glob("table-*.npz"))) == 1
    again = load_table(str(path), **kw)
    assert triples(again) == triples(first) and again.parts.tolist() == first.parts.tolist()
    assert again.user_ids.tolist() == ["u10", "u2"]
    path.write_text(CSV.replace("3.5", "2.5"))
    assert 2.5 in load_table(str(path), **kw).ratings.tolist()


def test_ragged_line(tmp_path):
    (tmp_path / "r.csv").write_text(CSV + "\nu3,d,4,5,6\n")
    message = error(tmp_path / "r.csv")
    assert "r.csv" in message and "line 6" in message and "u3,d,4,5,6" in message


def test_missing_column(tmp_path):
    (tmp_path / "r.csv").write_text(CSV)
    message = error(tmp_path / "r.csv", columns={**COLS, "rating": "stars"})
    assert "r.csv" in message and "'stars'" in message and "rating" in message


def test_missing_json_field(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"u": "a", "i": "b"}\n{"u": "a", "i": "c"}\n')
    message = error(tmp_path / "r.jsonl", columns={"user": "u", "item": "i", "rating": "r"})
    assert "r.jsonl" in message and "'r'" in message


@pytest.mark.parametrize(("bad", "column"), [("five", "rating"), ("nan", "rating"),
                                             ("inf", "rating"), ("", "rating")])
def test_bad_rating(tmp_path, bad, column):
    (tmp_path / "r.csv").write_text(CSV + f"u3,d,{bad},4000\n")
    message = error(tmp_path / "r.csv")
    assert "r.csv" in message and "line 5" in message and f"'{column}'" in message
    assert (repr(bad) if bad else "empty") in message


def test_bad_timestamp(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id,ts\nu,a,2020-01-01\n\nu,b,yesterday\n")
    message = error(tmp_path / "r.csv", columns={"user": "user_id", "item": "item_id",
                                                 "timestamp": "ts"}, timestamp_format="iso")
    assert "line 4" in message and "'yesterday'" in message and "'ts'" in message
    message = error(tmp_path / "r.csv", columns={"user": "user_id", "item": "item_id",
                                                 "timestamp": "ts"})
    assert "line 2" in message and "'2020-01-01'" in message


def test_undecodable_bytes(tmp_path):
    (tmp_path / "r.csv").write_bytes(b"user_id,item_id\nu,a\nJos\xe9,b\n")
    message = error(tmp_path / "r.csv", columns={"user": "user_id", "item": "item_id"})
    assert "r.csv" in message and "line 3" in message and "\\xe9" in message
    assert "latin-1" in message


def test_empty_id_and_missing_file(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id\nu,a\n,b\n")
    message = error(tmp_path / "r.csv", columns={"user": "user_id", "item": "item_id"})
    assert "line 3" in message and "'user_id'" in message and "empty" in message
    assert "missing file" in error(tmp_path / "nope.csv")
    assert "no file matches" in error(tmp_path / "*.parquet")


def test_bad_json_line(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"u": "a", "i": "b"}\n{"u": "a", "i": \n')
    message = error(tmp_path / "r.jsonl", columns={"user": "u", "item": "i"})
    assert "r.jsonl" in message and "line 2" in message


def test_unknown_column_role(tmp_path):
    (tmp_path / "r.csv").write_text(CSV)
    assert "'weight'" in error(Path(tmp_path / "r.csv"), columns={**COLS, "weight": "w"})


@pytest.mark.slow
def test_cli_trains_mf_on_a_csv_with_string_ids_and_iso_times(tmp_path):
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 40, 800), rng.integers(0, 60, 800)
    lines = "".join(f"user-{u},item-{i},{1 + (u + i) % 5},2021-03-{1 + n % 28:02d}T12:00:00Z\n"
                    for n, (u, i) in enumerate(zip(users, items, strict=True)))
    (tmp_path / "mine.csv").write_text("who,what,stars,when\n" + lines)
    import jaxrec

    root = str(Path(jaxrec.__file__).resolve().parents[1])  # this checkout, not another install
    env = {**os.environ, "JAXREC_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "jaxrec.train", "data=table",
         f"data.dataset.path={tmp_path / 'mine.csv'}", "data.dataset.columns.user=who",
         "data.dataset.columns.item=what", "data.dataset.columns.rating=stars",
         "data.dataset.columns.timestamp=when", "data.dataset.timestamp_format=iso",
         "model=mf", "model.dim=8", "trainer.epochs=2", "trainer.progress=false",
         "logger.console=false", f"paths.output_dir={run_dir}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert np.isfinite(results["test/rmse"]) and "test/ndcg@10" in results
