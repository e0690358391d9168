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
    with pytest.raises(ValueError, match="MF scores known users only"):
        rec.recommend(user=rec.dataset.train.user_ids[0], history=[1])
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


@pytest.fixture(scope="module")
def sasrec_run(tmp_path_factory):
    """A tiny SASRec on a global temporal split, tested as a stream (eval=streaming)."""
    out = tmp_path_factory.mktemp("api") / "sasrec"
    results = jaxrec.run([*TINY, "model=sasrec", "loss=sequence_bce", "model.dim=8",
                          "model.num_blocks=1", "model.max_len=6", "data.split.method=temporal",
                          "data.split.test=0.2", "data.split.valid=0.1", "eval=streaming",
                          "eval.windows=2"], output_dir=out)
    return results, jaxrec.Recommender.load(results["run_dir"])


def test_a_streamed_run_reports_windows_and_evaluates_again(sasrec_run):
    results, rec = sasrec_run
    metrics = results["metrics"]
    assert {"test/streaming/ndcg@10", "test/streaming/w1/hit@20", "valid/ndcg@10"} <= set(metrics)
    table = results["streaming_windows"]
    assert [row["window"] for row in table] == [0, 1]
    assert table[0]["to"] <= table[1]["from"] and table[1]["ndcg@10"] == \
        metrics["test/streaming/w1/ndcg@10"]
    assert results["protocol_details"]["stream"]["fold_in"] == "sequence"
    again = rec.evaluate("test")
    for key, value in metrics.items():
        if key.startswith("test/"):
            assert math.isclose(again[key], value, rel_tol=1e-5, abs_tol=1e-6), key


def _session_scores(rec, items):
    """SASRec's next-item scores after ``items`` (indices), left-padded to max_len."""
    import jax.numpy as jnp

    n, length = rec.dataset.info.num_items, rec.model.max_len
    seq = ([n] * length + list(items))[-length:]
    return np.array(rec.model.score_sequence(jnp.asarray([seq], jnp.int32))[0])


def test_a_live_session_is_scored_by_the_sequential_model(sasrec_run):
    _, rec = sasrec_run
    full, ids = rec.dataset.full, rec.dataset.train.item_ids
    session = [4, 9, 2]
    scores = _session_scores(rec, session)
    scores[session] = -np.inf
    order = np.argsort(-scores, kind="stable")[:5]
    got = rec.recommend(history=[ids[i] for i in session], k=5)
    assert got["item"].tolist() == [ids[i] for i in order]
    np.testing.assert_allclose(got["score"], scores[order], rtol=1e-5)
    # a known user: the session follows their sequence (all splits, time order)
    user = 3
    rows = np.flatnonzero(full.users == user)
    known = full.items[rows[np.lexsort((rows, full.items[rows], full.timestamps[rows]))]]
    scores = _session_scores(rec, [*known.tolist(), *session])
    scores[np.concatenate([known, session])] = -np.inf
    order = np.argsort(-scores, kind="stable")[:5]
    raw_user = rec.dataset.train.user_ids[user]
    appended = rec.recommend(user=raw_user, history=[ids[i] for i in session], k=5)
    assert appended["item"].tolist() == [ids[i] for i in order]
    replaced = rec.recommend(user=raw_user, history=[ids[i] for i in session], k=5,
                             replace=True)
    assert replaced.equals(got)
    with pytest.raises(ValueError, match="item 'no-such-item' is not an item"):
        rec.recommend(history=[ids[0], "no-such-item"])


def test_recommend_history_on_the_command_line(sasrec_run, capsys):
    from jaxrec import cli

    _, rec = sasrec_run
    ids = rec.dataset.train.item_ids
    want = rec.recommend(user=rec.dataset.train.user_ids[3],
                         history=[ids[4], ids[9]], k=4)
    cli.main(["recommend", str(rec.loaded.run_dir), "--user", str(rec.dataset.train.user_ids[3]),
              "--history", str(ids[4]), str(ids[9]), "-k", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines] == [str(i) for i in want["item"]]
    with pytest.raises(SystemExit, match="--history item 'zzz' is not an item"):
        cli.main(["recommend", str(rec.loaded.run_dir), "--history", "zzz"])
