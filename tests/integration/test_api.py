"""The Python API (`jaxrec.api`, re-exported as ``jaxrec.run`` / ``jaxrec.Recommender``):
a config run from Python equals its results.json, and recommendations, scores and
re-evaluation agree with the model computed another way."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import jaxrec

pytestmark = pytest.mark.slow  # trains two runs end to end

TINY = ["data=synthetic", "data.dataset.num_users=40", "data.dataset.num_items=50",
        "data.dataset.interactions_per_user=12", "trainer.epochs=2", "trainer.progress=false",
        "logger.console=false", "eval.save_per_user=false"]


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "mf"
    results = jaxrec.run([*TINY, "model.dim=4"], output_dir=out)
    return results, jaxrec.Recommender.load(results["run_dir"])


def test_run_returns_its_results_json(mf_run):
    results, rec = mf_run
    saved = json.loads((rec.loaded.run_dir / "results.json").read_text())
    assert results["metrics"] == saved["metrics"] and "test/rmse" in results["metrics"]


def test_evaluate_recomputes_the_saved_metrics(mf_run):
    results, rec = mf_run
    got = rec.evaluate("test")
    want = {k: v for k, v in results["metrics"].items() if k.startswith("test/")}
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-5, abs_tol=1e-6), key


def test_recommend_is_the_brute_force_top_k_of_the_pair_scores(mf_run):
    _, rec = mf_run
    train = rec.dataset.train
    user = train.user_ids[3]
    items = list(train.item_ids)
    pairs = rec.score([user] * len(items), items)  # __call__, not score_all
    seen = set(rec.dataset.full.items[rec.dataset.full.users == 3].tolist())
    order = [i for i in np.argsort(-pairs, kind="stable") if i not in seen][:7]
    got = rec.recommend(user=user, k=7)
    assert list(got.columns) == ["item", "title", "score"]
    assert got["item"].tolist() == [items[i] for i in order]
    np.testing.assert_allclose(got["score"], pairs[order], rtol=1e-5)
    assert rec.recommend(user=str(user), k=7).equals(got)  # "1" and 1 both match


def test_mistakes_are_one_line(mf_run):
    _, rec = mf_run
    with pytest.raises(ValueError, match="user 'nobody' is not a user"):
        rec.recommend(user="nobody")
    with pytest.raises(ValueError, match="scores known users only"):
        rec.recommend(history=[rec.dataset.train.item_ids[0]])
    with pytest.raises(ValueError, match="not both"):
        rec.recommend(user=1, history=[1])
    with pytest.raises(ValueError, match="is not an item"):
        rec.score([rec.dataset.train.user_ids[0]], ["no-such-item"])


def test_a_history_is_folded_in_by_ease(tmp_path):
    results = jaxrec.run([*TINY, "model=ease", "loss=none", "data.preprocess.implicit=true",
                          "trainer.epochs=1"], output_dir=tmp_path / "ease")
    rec = jaxrec.Recommender.load(results["run_dir"])
    ids = rec.dataset.train.item_ids
    history = [ids[2], ids[5], ids[11]]
    weights = np.asarray(rec.model.weights_NxN[...])
    scores = weights[[2, 5, 11]].sum(axis=0)  # X_u B for a 0/1 row, in numpy
    scores[[2, 5, 11]] = -np.inf
    order = np.argsort(-scores, kind="stable")[:5]
    got = rec.recommend(history=history, k=5)
    assert got["item"].tolist() == [ids[i] for i in order]
    np.testing.assert_allclose(got["score"], scores[order], rtol=1e-5)
