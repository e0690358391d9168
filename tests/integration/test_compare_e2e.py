"""End to end: runs under each protocol write per-user vectors; `jaxrec compare` reads them."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_train

pytestmark = pytest.mark.slow

TINY = ["data=synthetic", "data.dataset.num_users=120", "data.dataset.num_items=150",
        "data.dataset.interactions_per_user=20", "data.preprocess.implicit=true",
        "data.split.method=user_ratio", "trainer.batch_size=512", "trainer.save_checkpoint=false"]
JAXREC = [sys.executable, "-m", "jaxrec.cli"]


def test_per_user_vectors_match_results(tmp_path):
    res = run_train([*TINY, "model.dim=8", "loss=bpr", "trainer.epochs=2", "eval=beyond"],
                    tmp_path)
    assert res["protocol"] == "full_ranking" and res["protocol_details"]["name"] == "full_ranking"
    assert res["per_user_files"] == ["per_user_valid.parquet", "per_user_test.parquet"]
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["protocol"] == "full_ranking"
    for split in ("valid", "test"):
        frame = pd.read_parquet(tmp_path / f"per_user_{split}.parquet")
        assert list(frame.columns[:2]) == ["user_id", "user"]
        assert f"{split}/ild@10" in frame and f"{split}/coverage@10" not in frame
        for key in frame.columns[2:]:
            assert frame[key].mean() == pytest.approx(res["metrics"][key], rel=1e-5, abs=1e-6)


def test_sampled_protocol_run_saves_and_reuses_negatives(tmp_path):
    common = [*TINY, "data.split.method=leave_last", "data.split.valid=0.1", "model.dim=8",
              "loss=bpr", "trainer.epochs=2", "eval=sampled", "eval.num_negatives=20"]
    a = run_train([*common, "trainer.save_checkpoint=true"], tmp_path / "a")
    assert a["protocol"] == "sampled" and "negatives" in a["protocol_details"]
    out = subprocess.run([*JAXREC, "evaluate", str(tmp_path / "a"), "split=test"],
                         capture_output=True, text=True, check=True).stdout  # saved negatives
    assert json.loads(out) == pytest.approx({k: v for k, v in a["metrics"].items()
                                             if k.startswith("test/")}, rel=1e-6)
    negs = pd.read_parquet(tmp_path / "a" / "negatives_test.parquet")
    assert len(negs) == a["data"]["users"] and negs["items"].map(len).eq(20).all()
    b = run_train([*common, f"eval.negatives_file={tmp_path / 'a' / 'negatives_test.parquet'}"],
                  tmp_path / "b")
    assert b["metrics"] == a["metrics"]  # same seed, same negatives, same numbers
    c = run_train([*common, "seed=1"], tmp_path / "c")
    other = pd.read_parquet(tmp_path / "c" / "negatives_test.parquet")
    assert not np.array_equal(np.stack(other["items"]), np.stack(negs["items"]))
    assert set(c["metrics"]) == {"test/hit@10", "test/ndcg@10", "valid/hit@10", "valid/ndcg@10"}


def test_strong_protocol_run_with_a_fold_in_model(tmp_path):
    res = run_train([*TINY, "model=popularity",
                     "model._target_=tests.unit.test_protocols_strong.ItemKNN", "loss=none",
                     "trainer.epochs=1", "data.split.method=strong", "data.split.test=0.2",
                     "data.split.valid=0.1", "eval=strong"], tmp_path)
    assert res["protocol"] == "strong" and res["protocol_details"]["fold_in"] == 0.8
    assert res["metrics"]["test/recall_min@20"] > 0.0
    frame = pd.read_parquet(tmp_path / "per_user_test.parquet")
    assert len(frame) == 24  # 20% of 120 users held out for test
    with pytest.raises(ValueError, match="MF cannot fold in"):
        run_train([*TINY, "trainer.epochs=1", "data.split.method=strong", "eval=strong"],
                  tmp_path / "mf")


def test_compare_two_seed_sweeps_prints_p_values(tmp_path):
    for model, extra in (("mf", ["model.dim=16", "loss=bpr", "trainer.epochs=3"]),
                         ("pop", ["model=popularity", "loss=none", "trainer.epochs=1"])):
        for seed in (0, 1):
            run_train([*TINY, *extra, f"seed={seed}"], tmp_path / f"study_{model}" / f"t{seed}")
    out = subprocess.run([*JAXREC, "compare", str(tmp_path / "study_mf"),
                          str(tmp_path / "study_pop"), "-m", "ndcg@10", "-m", "recall@20",
                          "--json", str(tmp_path / "cmp.json")],
                         capture_output=True, text=True, check=True).stdout
    assert "## test/ndcg@10" in out and "## test/recall@20" in out and "Holm" in out
    report = json.loads((tmp_path / "cmp.json").read_text())
    pair = report["metrics"]["test/ndcg@10"]["pairs"][0]
    assert pair["seeds"] == [0, 1] and 0.0 <= pair["t_p_holm"] <= 1.0
    labels = [row["system"] for row in report["metrics"]["test/ndcg@10"]["systems"]]
    assert "model=MF" in labels[0] and "model=Popularity" in labels[1]  # not folder names
    # all runs under one directory: systems are named by the config keys that differ
    out = subprocess.run([*JAXREC, "compare", str(tmp_path), "-m", "ndcg@10"],
                         capture_output=True, text=True, check=True).stdout
    assert "model=MF" in out and "model=Popularity" in out


def test_rating_models_get_paired_tests(tmp_path):
    explicit = [t for t in TINY if t != "data.preprocess.implicit=true"]
    runs = {}
    for dim in (2, 16):
        runs[dim] = run_train([*explicit, f"model.dim={dim}", "trainer.epochs=3"],
                              tmp_path / f"dim{dim}")
        frame = pd.read_parquet(tmp_path / f"dim{dim}" / "per_user_test.parquet")
        # each user's own RMSE; pooled over users' pairs it is the run's test/rmse
        assert (frame["test/rmse"] >= 0).all() and frame["test/mae"].notna().all()
        assert frame["test/rmse"].mean() == pytest.approx(runs[dim]["metrics"]["test/rmse"],
                                                          rel=0.25)
    out = subprocess.run([*JAXREC, "compare", str(tmp_path / "dim2"), str(tmp_path / "dim16"),
                          "-m", "rmse", "--json", str(tmp_path / "cmp.json")],
                         capture_output=True, text=True, check=True).stdout
    assert "## test/rmse (lower is better)" in out and "model.dim=2 vs model.dim=16" in out
    pair = json.loads((tmp_path / "cmp.json").read_text())["metrics"]["test/rmse"]["pairs"][0]
    assert pair["users"] == 120 and 0.0 <= pair["t_p_holm"] <= 1.0
