"""`jaxrec data export`: the exact split in csv / recbole / adjacency, and the round trip
(export a run's split, load it back with split.method=predefined, train: same metrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxrec.cli import main as cli
from jaxrec.config import SplitConfig
from jaxrec.data.datasets import load_adjacency, load_recbole, load_table
from jaxrec.data.export import export_split
from jaxrec.data.interactions import DataError, Interactions
from jaxrec.data.pipeline import load_and_split
from tests.helpers import run_train

FAST = ["trainer.batch_size=512", "trainer.epochs=2", "trainer.progress=false"]


def string_dataset(valid=0.2):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 12, 150), rng.integers(0, 20, 150)
    inter = Interactions(
        users=users.astype(np.int32), items=items.astype(np.int32),
        ratings=rng.choice([0.5, 1.0, 3.5, 4.0], 150).astype(np.float32),
        timestamps=rng.integers(10**9, 2 * 10**9, 150),
        user_ids=np.array([f"u,{k}" for k in range(12)], object),  # a comma: csv quotes it
        item_ids=np.array([f"i{k:02d}" for k in range(20)], object), name="mine")
    return load_and_split(inter, None, SplitConfig(method="random", test=0.2, valid=valid))


def rows(part):
    return sorted(zip(part.user_ids[part.users].tolist(), part.item_ids[part.items].tolist(),
                      part.ratings.tolist(), part.timestamps.tolist(), strict=True))


def by_part(inter, code):
    return rows(inter.select(inter.parts == code))


def test_csv_and_recbole_keep_raw_ids_ratings_times_and_parts(tmp_path):
    ds = string_dataset()
    export_split(ds, "csv", tmp_path / "csv")
    export_split(ds, "recbole", tmp_path / "rb", name="mine")
    cols = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
    back = load_table(str(tmp_path / "csv" / "train.csv"), cols, use_cache=False,
                      valid=[str(tmp_path / "csv" / "valid.csv")],
                      test=[str(tmp_path / "csv" / "test.csv")])
    rb = load_recbole(str(tmp_path / "rb"), "mine")
    for inter in (back, rb):
        for code, part in enumerate((ds.train, ds.valid, ds.test)):
            assert by_part(inter, code) == rows(part)
        assert inter.universe == "union of train/valid/test files"
    manifest = json.loads((tmp_path / "csv" / "export.json").read_text())
    assert manifest["rows"] == {"train": len(ds.train), "valid": len(ds.valid),
                                "test": len(ds.test)}
    assert "data.split.method=predefined" in manifest["reload"]


def test_adjacency_writes_indices_and_lightgcn_id_lists(tmp_path):
    ds = string_dataset(valid=0.0)
    files = export_split(ds, "adjacency", tmp_path)
    assert [f.name for f in files] == ["train.txt", "test.txt", "user_list.txt",
                                       "item_list.txt", "export.json"]
    lines = (tmp_path / "user_list.txt").read_text().splitlines()
    assert lines[0] == "org_id remap_id" and lines[1] == "u,0 0"
    back = load_adjacency(str(tmp_path))
    assert back.user_ids.tolist() == list(range(ds.info.num_users))  # every user listed
    pairs = lambda part: sorted(zip(part.users.tolist(), part.items.tolist(), strict=True))
    assert pairs(back.select(back.parts == 0)) == pairs(ds.train)
    assert pairs(back.select(back.parts == 2)) == pairs(ds.test)


def test_export_refuses_strong_splits_and_unknown_formats(tmp_path):
    ds = string_dataset()
    with pytest.raises(DataError, match="not one of csv, recbole, adjacency"):
        export_split(ds, "libsvm", tmp_path)
    strong = load_and_split(ds.full, None, SplitConfig(method="strong", test=0.3))
    with pytest.raises(DataError, match="strong split"):
        export_split(strong, "csv", tmp_path)


def _metrics(results):
    return {k: v for k, v in results["metrics"].items() if not k.startswith("train/")}


@pytest.mark.parametrize(("fmt", "model"), [
    pytest.param("csv", ["model=mf", "model.dim=8", "loss=mse"], marks=pytest.mark.slow),
    pytest.param("recbole", ["model=mf", "model.dim=8", "loss=bpr"], marks=pytest.mark.slow),
    pytest.param("adjacency", ["model=ease", "loss=none", "data.preprocess.implicit=true"],
                 marks=pytest.mark.slow)])
def test_round_trip_trains_to_the_same_metrics(tmp_path, fmt, model):
    """Same users / items / rows and bit-identical metrics: raw ids sort back into the same
    indices and each part keeps its row order (adjacency reorders rows: a closed-form model)."""
    first = run_train(["data=synthetic", *FAST, *model], tmp_path / "run")
    cli(["data", "export", str(tmp_path / "run"), "--format", fmt, "--out",
         str(tmp_path / "export")])
    reload = json.loads((tmp_path / "export" / "export.json").read_text())["reload"]
    again = run_train([*reload, *FAST, *[m for m in model if not m.startswith("data.")]],
                      tmp_path / "again")
    assert again["data"]["universe"] == "union of train/valid/test files"
    assert {k: again["data"][k] for k in ("users", "items", "train", "valid", "test")} == {
        k: first["data"][k] for k in ("users", "items", "train", "valid", "test")}
    assert _metrics(again) == _metrics(first)


def test_cli_data_list_info_and_export_of_a_data_config(tmp_path, capsys):
    cli(["data", "list"])
    assert "licence" in capsys.readouterr().out
    out = tmp_path / "rb"
    cli(["data", "export", "synthetic", "--format", "recbole", "--out", str(out),
         "--name", "syn", "seed=3", "data.split.valid=0.0"])
    assert "syn.train.inter, syn.test.inter" in capsys.readouterr().out
    cli(["data", "info", str(out)])  # a folder of .inter files: data=recbole
    shown = capsys.readouterr().out
    assert "shipped split train 4,800, valid 0, test 1,200" in shown
    assert "item universe union of train/valid/test files" in shown
    export_split(string_dataset(), "csv", tmp_path / "csv")
    cli(["data", "info", str(tmp_path / "csv" / "test.csv"), "--columns",
         "user=user,item=item,rating=rating", f"paths.cache_dir={tmp_path / 'cache'}"])
    assert "ratings       mean" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="missing column 'user_id'.*the file has: user, item"):
        cli(["data", "info", str(tmp_path / "csv" / "test.csv")])
    with pytest.raises(SystemExit, match="unknown dataset 'no-such-thing'; choose from"):
        cli(["data", "info", "no-such-thing"])
    with pytest.raises(SystemExit, match="no such file or folder 'nope/r.csv'"):
        cli(["data", "info", "nope/r.csv"])
