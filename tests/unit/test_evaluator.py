"""The on-device evaluators end to end against brute-force numpy on small random data."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxrec.config import EvalConfig  # noqa: E402
from jaxrec.data.interactions import Interactions  # noqa: E402
from jaxrec.metrics import RankingEvaluator, RatingEvaluator, make_evaluators  # noqa: E402

NUM_USERS, NUM_ITEMS = 23, 17
KS = [1, 3, 10]
NAMES = ["ndcg", "recall", "hit", "mrr", "precision", "map"]


def score_fn(params, users_U):
    return params[users_U]


def predict_fn(params, users_B, items_B):
    return params[users_B, items_B]


def interactions(users, items, ratings=None, name="") -> Interactions:
    users, items = np.asarray(users, np.int32), np.asarray(items, np.int32)
    ratings = np.ones(len(users)) if ratings is None else ratings
    ratings = np.asarray(ratings, np.float32)
    return Interactions(users, items, ratings, np.zeros(len(users), np.int64),
                        np.arange(NUM_USERS), np.arange(NUM_ITEMS), name=name)


def random_pairs(rng, n, users=None):
    users = rng.integers(0, NUM_USERS, n) if users is None else rng.choice(users, n)
    return users, rng.integers(0, NUM_ITEMS, n)


@pytest.fixture(scope="module")
def data():
    """Train / valid / test with deliberate corner cases, and a tie-heavy score matrix."""
    rng = np.random.default_rng(0)
    others = np.arange(1, NUM_USERS)
    train_u, train_i = random_pairs(rng, 120, users=others)
    # User 0 has seen all items but two: K=10 reaches into excluded (-inf) items.
    train_u = np.concatenate([train_u, np.zeros(NUM_ITEMS - 2, int)])
    train_i = np.concatenate([train_i, np.arange(NUM_ITEMS - 2)])
    valid_u, valid_i = random_pairs(rng, 30, users=others)
    test_u, test_i = random_pairs(rng, 60, users=np.arange(1, NUM_USERS - 3))  # 3 users absent
    extra_u = [0, 0,  # user 0: both unseen items are relevant ("all relevant")
               1, 1,  # duplicate target pair counts once
               2]     # user 2's only target item is in train ...
    extra_i = [NUM_ITEMS - 2, NUM_ITEMS - 1, 5, 5, int(train_i[train_u == 2][0])]
    keep = test_u != 2
    test_u = np.concatenate([test_u[keep], extra_u])
    test_i = np.concatenate([test_i[keep], extra_i])
    train = interactions(train_u, train_i, name="train")
    valid = interactions(valid_u, valid_i, name="valid")
    test = interactions(test_u, test_i, name="test")
    # Few distinct values -> many ties, broken towards the lower item index.
    scores = rng.integers(0, 4, (NUM_USERS, NUM_ITEMS)).astype(np.float32)
    return train, valid, test, scores


def brute_force(target: Interactions, exclude, scores: np.ndarray, ks, names):
    """Per-user metrics by sorting each user's full score row in numpy."""
    excluded = {(int(u), int(i)) for e in exclude for u, i in zip(e.users, e.items, strict=True)}
    relevant: dict[int, set[int]] = {}
    for u, i in zip(target.users.tolist(), target.items.tolist(), strict=True):
        if (u, i) not in excluded:
            relevant.setdefault(u, set()).add(i)
    users = sorted(relevant)
    out = {f"{m}@{k}": [] for m in names for k in ks}
    for u in users:
        row = scores[u].astype(np.float64).copy()
        for i in range(NUM_ITEMS):
            if (u, i) in excluded:
                row[i] = -np.inf
        ranking = np.argsort(-row, kind="stable")  # ties: lower item index first
        rel = relevant[u]
        ranks = sorted(int(np.flatnonzero(ranking == i)[0]) + 1 for i in rel)  # 1-based
        for k in ks:
            found = [r for r in ranks if r <= k]
            ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
            value = {
                "recall": len(found) / len(rel),
                "precision": len(found) / k,
                "hit": float(bool(found)),
                "ndcg": sum(1 / math.log2(r + 1) for r in found) / ideal,
                "mrr": 1 / found[0] if found else 0.0,
                "map": sum((j + 1) / r for j, r in enumerate(found)) / min(len(rel), k),
            }
            for m in names:
                out[f"{m}@{k}"].append(value[m])
    return np.array(users), {key: np.array(v) for key, v in out.items()}


BLOCKS = [1, 4, 7, 19, 64]  # one user per block ... all users in one block


@pytest.mark.parametrize("user_block", BLOCKS)
def test_ranking_matches_brute_force(data, user_block):
    train, valid, test, scores = data
    ev = RankingEvaluator("test", test, [train, valid], ks=KS, metrics=NAMES,
                          user_block=user_block)
    users, want = brute_force(test, [train, valid], scores, KS, NAMES)
    assert ev.num_users == len(users) and ev.block <= user_block
    params = jnp.asarray(scores)

    got_users, per_user = ev.per_user(score_fn, params)
    np.testing.assert_array_equal(got_users, users)
    means = ev.run(score_fn, params)
    assert list(means) == [f"test/{m}@{k}" for m in NAMES for k in KS]
    for key, values in want.items():
        np.testing.assert_allclose(per_user[f"test/{key}"], values, rtol=1e-6, atol=1e-7,
                                   err_msg=key)
        np.testing.assert_allclose(means[f"test/{key}"], values.mean(), rtol=1e-6, err_msg=key)


def test_corner_cases_of_fixture(data):
    """The fixture really contains the cases the brute-force comparison is meant to cover."""
    train, valid, test, scores = data
    ev = RankingEvaluator("test", test, [train, valid], ks=[10], metrics=["recall", "precision"],
                          user_block=7)
    users, per_user = ev.per_user(score_fn, jnp.asarray(scores))
    assert 2 not in users  # only target item excluded -> not evaluated
    assert not set(users) & {NUM_USERS - 3, NUM_USERS - 2, NUM_USERS - 1}  # no target items
    assert users[0] == 0
    # Some tested block size pads the last block; some exceed the number of users.
    blocks = [RankingEvaluator("test", test, [train, valid], ks=[3], metrics=["hit"],
                               user_block=b).block for b in BLOCKS]
    assert any(len(users) % b for b in blocks) and max(BLOCKS) > len(users)
    # User 0: both unseen items relevant and ranked above the excluded ones.
    assert per_user["test/recall@10"][0] == 1.0 and per_user["test/precision@10"][0] == 0.2
    assert np.unique(scores[users], return_counts=True)[1].max() > 1  # ties present


def test_valid_split_single_exclude_and_no_exclude(data):
    train, valid, _, scores = data
    params = jnp.asarray(scores)
    for exclude in ([train], []):
        ev = RankingEvaluator("valid", valid, exclude, ks=[2, 5], metrics=["ndcg", "map"],
                              user_block=8)
        _, want = brute_force(valid, exclude, scores, [2, 5], ["ndcg", "map"])
        got = ev.run(score_fn, params)
        for key, values in want.items():
            np.testing.assert_allclose(got[f"valid/{key}"], values.mean(), rtol=1e-6)


def test_perfect_scores_give_one(data):
    train, _, test, _ = data
    perfect = np.zeros((NUM_USERS, NUM_ITEMS), np.float32)
    perfect[test.users, test.items] = 1.0
    ev = RankingEvaluator("test", test, [train], ks=[NUM_ITEMS], metrics=["ndcg", "recall", "map"])
    assert ev.run(score_fn, jnp.asarray(perfect)) == pytest.approx(
        {f"test/{m}@{NUM_ITEMS}": 1.0 for m in ["ndcg", "recall", "map"]})


def test_compiles_once_per_score_fn(data):
    train, _, test, scores = data
    ev = RankingEvaluator("test", test, [train], ks=[3], metrics=["hit"], user_block=5)
    first = ev.run(score_fn, jnp.asarray(scores))
    compiled = ev._compiled["program"][1]
    users, per_user = ev.per_user(score_fn, jnp.asarray(scores[::-1].copy()))
    second = ev.run(score_fn, jnp.asarray(scores[::-1].copy()))
    assert ev._compiled["program"][1] is compiled and compiled._cache_size() == 1
    assert first != second
    assert np.mean(per_user["test/hit@3"]) == pytest.approx(second["test/hit@3"])


def test_valid_and_test_share_one_program_per_kind(data):
    """share_layout pads valid and test alike: each evaluator kind runs one executable for
    both splits, with the same metrics as when each is laid out alone."""
    from jaxrec.metrics.evaluator import share_layout

    train, valid, test, scores = data
    ratings = jnp.asarray(scores)

    def predict(params, users_B, items_B):
        return params[users_B, items_B]

    def build():
        return [RankingEvaluator("valid", valid, [train], ks=[3, 5], metrics=["ndcg", "coverage"],
                                 user_block=4),
                RankingEvaluator("test", test, [train, valid], ks=[3, 5],
                                 metrics=["ndcg", "coverage"], user_block=4),
                RatingEvaluator("valid", valid, batch=7), RatingEvaluator("test", test, batch=7)]

    alone = build()
    expected = [ev.run(score_fn if i < 2 else predict, ratings) for i, ev in enumerate(alone)]
    shared = build()
    share_layout(shared)

    def fresh_score_fn(params, users_U):  # a new function: a program of its own
        return score_fn(params, users_U)

    got = [ev.run(fresh_score_fn if i < 2 else predict, ratings) for i, ev in enumerate(shared)]
    for e, g in zip(expected, got, strict=True):
        assert g == pytest.approx(e, rel=1e-6)
    assert shared[0]._compiled["program"][1] is shared[1]._compiled["program"][1]
    assert shared[0]._compiled["program"][1]._cache_size() == 1
    assert {k: v.shape for k, v in shared[0]._blocks.items()} == \
        {k: v.shape for k, v in shared[1]._blocks.items()}
    assert shared[2]._batches["users"].shape == shared[3]._batches["users"].shape
    assert alone[2]._batches["users"].shape != alone[3]._batches["users"].shape


def test_bad_input_raises_before_compile(data):
    train, _, test, _ = data
    with pytest.raises(ValueError, match="eval.metrics"):
        RankingEvaluator("test", test, [train], ks=[3], metrics=["auc"])
    with pytest.raises(ValueError, match="eval.ks"):
        RankingEvaluator("test", test, [train], ks=[NUM_ITEMS + 1], metrics=["ndcg"])
    with pytest.raises(ValueError, match="eval.user_block"):
        RankingEvaluator("test", test, [train], ks=[3], metrics=["ndcg"], user_block=0)
    with pytest.raises(ValueError, match="no user"):
        RankingEvaluator("test", train, [train], ks=[3], metrics=["ndcg"])
    ev = RankingEvaluator("test", test, [train], ks=[3], metrics=["ndcg"], user_block=4)
    with pytest.raises(ValueError, match="score_fn returned shape"):
        ev.run(lambda p, u: p[u][:, :-1], jnp.zeros((NUM_USERS, NUM_ITEMS)))


@pytest.mark.parametrize("batch", [1, 16, 1000])
def test_rating_matches_numpy(batch):
    rng = np.random.default_rng(1)
    users, items = random_pairs(rng, 50)
    ratings = rng.integers(1, 6, 50).astype(np.float32)
    preds = rng.uniform(0.5, 5.5, (NUM_USERS, NUM_ITEMS)).astype(np.float32)
    ev = RatingEvaluator("valid", interactions(users, items, ratings), batch=batch)
    err = preds[users, items].astype(np.float64) - ratings
    got = ev.run(predict_fn, jnp.asarray(preds))
    assert got == pytest.approx({"valid/rmse": np.sqrt(np.mean(err ** 2)),
                                 "valid/mae": np.mean(np.abs(err))}, rel=1e-6)
    users_v, per_user = ev.per_user(predict_fn, jnp.asarray(preds))
    for i, u in enumerate(users_v):  # each user's own errors, by brute force
        mine = err[users == u]
        assert per_user["valid/rmse"][i] == pytest.approx(np.sqrt(np.mean(mine ** 2)), rel=1e-5)
        assert per_user["valid/mae"][i] == pytest.approx(np.mean(np.abs(mine)), rel=1e-5)
    assert sorted(users_v.tolist()) == sorted(set(users.tolist()))


def test_make_evaluators(data):
    train, valid, test, _ = data
    cfg = EvalConfig(ks=[3], metrics=["ndcg"], user_block=8, rating_batch=32)
    evs = make_evaluators("test", test, [train, valid], cfg, explicit=True)
    assert [type(e) for e in evs] == [RankingEvaluator, RatingEvaluator]
    assert [type(e) for e in make_evaluators("test", test, [train], cfg, explicit=False)] == [
        RankingEvaluator]
    cfg.rating_metrics = False
    assert len(make_evaluators("test", test, [train], cfg, explicit=True)) == 1
    assert make_evaluators("valid", test.select(np.zeros(len(test), bool)), [train], cfg,
                           explicit=True) == []
