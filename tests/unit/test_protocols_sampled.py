"""The sampled (NCF) protocol: fixed negatives, file formats, and metrics against numpy."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxrec.config import EvalConfig, SplitConfig  # noqa: E402
from jaxrec.data.datasets.synthetic import make_synthetic  # noqa: E402
from jaxrec.data.interactions import DataError  # noqa: E402
from jaxrec.data.pipeline import load_and_split  # noqa: E402
from jaxrec.metrics import RankingEvaluator  # noqa: E402
from jaxrec.metrics.protocols import build_evaluators  # noqa: E402
from jaxrec.metrics.sampled import (  # noqa: E402
    SampledRankingEvaluator,
    draw_negatives,
    evaluated_users,
    load_negatives,
    save_negatives,
)

PER_USER = 8  # every user has 8 distinct items, so all have the same number of unseen ones
NAMES = ["hit", "ndcg", "recall", "mrr"]


def predict_fn(params, users_B, items_B):
    return params[users_B, items_B]


def score_fn(params, users_U):
    return params[users_U]


@pytest.fixture(scope="module")
def dataset():
    inter = make_synthetic(num_users=24, num_items=30, interactions_per_user=PER_USER, seed=2)
    return load_and_split(inter, {"implicit": True},
                          SplitConfig("user_ratio", test=0.25, valid=0.2, seed=0))


@pytest.fixture(scope="module")
def scores(dataset):
    rng = np.random.default_rng(5)
    return rng.integers(0, 4, (dataset.info.num_users, dataset.info.num_items)).astype(np.float32)


def test_negatives_are_unseen_distinct_and_match_a_numpy_draw(dataset):
    full = dataset.full
    users, _ = evaluated_users(dataset.test, [dataset.train, dataset.valid])
    negs = draw_negatives(full, users, 10, seed=3, split="test")
    assert negs.shape == (len(users), 10) and negs.dtype == np.int32
    rng = np.random.default_rng([3, 2])  # the documented stream of the test split
    for u, row in zip(users, negs, strict=True):
        seen = np.unique(full.items[full.users == u])
        unseen = np.setdiff1d(np.arange(full.num_items), seen)
        np.testing.assert_array_equal(row, unseen[rng.choice(len(unseen), 10, replace=False)])
        assert len(set(row.tolist())) == 10 and not set(row.tolist()) & set(seen.tolist())
    np.testing.assert_array_equal(negs, draw_negatives(full, users, 10, seed=3, split="test"))
    assert (negs != draw_negatives(full, users, 10, seed=4, split="test")).any()
    assert (negs != draw_negatives(full, users, 10, seed=3, split="valid")).any()
    with pytest.raises(DataError, match="num_negatives=23: user .* has only 22 items"):
        draw_negatives(full, users, full.num_items - PER_USER + 1, seed=0, split="test")


def brute_force(target, exclude, negatives, scores, ks):
    users, relevant = evaluated_users(target, exclude)
    out = {f"{m}@{k}": [] for m in NAMES for k in ks}
    for u, rel, negs in zip(users, relevant, negatives, strict=True):
        cands = sorted(set(rel.tolist()) | set(negs.tolist()))
        ranked = sorted(cands, key=lambda i: (-scores[u, i], i))  # ties: lower item first
        ranks = sorted(ranked.index(i) + 1 for i in rel)
        for k in ks:
            found = [r for r in ranks if r <= k]
            idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
            out[f"hit@{k}"].append(float(bool(found)))
            out[f"ndcg@{k}"].append(sum(1 / math.log2(r + 1) for r in found) / idcg)
            out[f"recall@{k}"].append(len(found) / len(rel))
            out[f"mrr@{k}"].append(1 / found[0] if found else 0.0)
    return users, {k: np.array(v) for k, v in out.items()}


def test_sampled_metrics_match_brute_force(dataset, scores, user_block=5):
    exclude = [dataset.train, dataset.valid]
    users, _ = evaluated_users(dataset.test, exclude)
    negs = draw_negatives(dataset.full, users, 9, seed=0, split="test")
    ev = SampledRankingEvaluator("test", dataset.test, exclude, negs, ks=[1, 5, 10],
                                 metrics=NAMES, user_block=user_block)
    want_users, want = brute_force(dataset.test, exclude, negs, scores, [1, 5, 10])
    got_users, per_user = ev.per_user(predict_fn, jnp.asarray(scores))
    np.testing.assert_array_equal(got_users, want_users)
    means = ev.run(predict_fn, jnp.asarray(scores))
    for key, values in want.items():
        np.testing.assert_allclose(per_user[f"test/{key}"], values, rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(means[f"test/{key}"], values.mean(), rtol=1e-6, err_msg=key)
    assert means == ev.run(predict_fn, jnp.asarray(scores))  # fixed negatives: same numbers


def test_all_unseen_items_as_negatives_equals_full_ranking(dataset, scores):
    """With every unseen item a candidate, the sampled protocol is full ranking."""
    exclude = [dataset.train, dataset.valid]
    users, _ = evaluated_users(dataset.test, exclude)
    m = dataset.info.num_items - PER_USER
    negs = draw_negatives(dataset.full, users, m, seed=0, split="test")
    metrics = [*NAMES, "coverage", "gini", "novelty"]
    sampled = SampledRankingEvaluator("test", dataset.test, exclude, negs, ks=[3, 10],
                                      metrics=metrics, user_block=7, train=dataset.train)
    full = RankingEvaluator("test", dataset.test, exclude, ks=[3, 10], metrics=metrics,
                            user_block=7, train=dataset.train)
    got, want = sampled.run(predict_fn, jnp.asarray(scores)), full.run(score_fn,
                                                                       jnp.asarray(scores))
    assert got == pytest.approx(want, rel=1e-6)


def test_negatives_round_trip_through_parquet_and_ncf_files(dataset, tmp_path):
    full = dataset.full
    exclude = [dataset.train, dataset.valid]
    users, relevant = evaluated_users(dataset.test, exclude)
    negs = draw_negatives(full, users, 6, seed=1, split="test")
    save_negatives(tmp_path / "negatives_test.parquet", full, users, negs)
    back = load_negatives(tmp_path / "negatives_test.parquet", full, users, relevant, 6)
    np.testing.assert_array_equal(back, negs)

    def ncf_line(u, rel, row):
        ids = "\t".join(str(full.item_ids[i]) for i in row)
        return f"({full.user_ids[u]},{full.item_ids[rel[0]]})\t{ids}\n"

    lines = [ncf_line(u, rel, row) for u, rel, row in zip(users, relevant, negs, strict=True)]
    path = tmp_path / "ml.test.negative"
    path.write_text("".join(reversed(lines)))  # any line order
    np.testing.assert_array_equal(load_negatives(path, full, users, relevant, 6), negs)

    def fails(text, match, num=6):
        bad = tmp_path / "bad.negative"
        bad.write_text(text)
        with pytest.raises(DataError, match=match):
            load_negatives(bad, full, users, relevant, num)

    fails("".join(lines[1:]), "no negatives for user")
    fails("".join(lines), "6 negatives, eval.num_negatives is 7", num=7)
    fails(lines[0] + "".join(lines), "appears twice")
    fails("(99999,1)\t1\n", "unknown user id '99999'")
    unknown_item = lines[0].split("\t")[0] + "\tx" * 6 + "\n"
    fails("".join([unknown_item, *lines[1:]]), "unknown item id 'x'")
    seen_item = full.item_ids[full.items[full.users == users[0]][0]]
    first = lines[0].split("\t")
    fails("".join([("\t".join([first[0], str(seen_item), *first[2:]])), *lines[1:]]),
          "is an item the user interacted with")
    not_held_out = lines[0].replace(f",{full.item_ids[relevant[0][0]]})",
                                    f",{seen_item})")
    fails("".join([not_held_out, *lines[1:]]), "is not a held-out item")
    fails("garbage\n", "expected '\\(user,item\\)'")


def test_build_evaluators_saves_and_reuses_negatives(dataset, tmp_path):
    cfg = EvalConfig(ks=[5], metrics=["hit"], protocol="sampled", num_negatives=9)
    valid_evals, test_evals = build_evaluators(dataset, cfg, seed=0, run_dir=tmp_path)
    assert [type(e) for e in valid_evals + test_evals] == [SampledRankingEvaluator] * 2
    assert (tmp_path / "negatives_valid.parquet").is_file()
    cfg.negatives_file = str(tmp_path / "negatives_test.parquet")
    again = build_evaluators(dataset, cfg, seed=7, run_dir=None)[1][0]
    np.testing.assert_array_equal(np.asarray(again._blocks["candidates"]),
                                  np.asarray(test_evals[0]._blocks["candidates"]))
    with pytest.raises(ValueError, match="cut-off 11 exceeds the 10 candidates"):
        build_evaluators(dataset, EvalConfig(ks=[11], metrics=["hit"], protocol="sampled",
                                             num_negatives=9), seed=0)
    with pytest.raises(ValueError, match="eval.protocol='pairwise'"):
        build_evaluators(dataset, EvalConfig(protocol="pairwise"), seed=0)
