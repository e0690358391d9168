"""Beyond-accuracy metrics of the full-ranking evaluator against brute-force numpy."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxrec.config import EvalConfig  # noqa: E402
from jaxrec.data.interactions import Interactions  # noqa: E402
from jaxrec.metrics import RankingEvaluator, make_evaluators  # noqa: E402
from jaxrec.metrics.beyond import gini  # noqa: E402
from jaxrec.metrics.catalog import recall_min  # noqa: E402

NUM_USERS, NUM_ITEMS, NUM_GENRES = 19, 15, 4
KS = [1, 3, 10]
BEYOND = ["avg_popularity", "novelty", "ild", "coverage", "gini"]


def score_fn(params, users_U):
    return params[users_U]


def table(users, items, features) -> Interactions:
    users, items = np.asarray(users, np.int32), np.asarray(items, np.int32)
    return Interactions(users, items, np.ones(len(users), np.float32),
                        np.zeros(len(users), np.int64), np.arange(NUM_USERS),
                        np.arange(NUM_ITEMS), item_features={"genres": features})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    features = (rng.random((NUM_ITEMS, NUM_GENRES)) < 0.4).astype(np.float32)
    features[2] = 0.0  # an item without genres: cosine 0 with everything
    features[5] = 2.0 * features[6]  # parallel vectors: cosine 1
    # Users 1.. get random history (with repeats); user 0 has seen all items but two, so
    # its top-10 reaches into excluded items, which must not count as recommended.
    train_u = np.concatenate([rng.integers(1, NUM_USERS, 90), np.zeros(NUM_ITEMS - 2, int),
                              [1, 1]])
    train_i = np.concatenate([rng.integers(0, NUM_ITEMS, 90), np.arange(NUM_ITEMS - 2), [4, 4]])
    test_u = np.concatenate([rng.integers(1, NUM_USERS - 2, 40), [0]])
    test_i = np.concatenate([rng.integers(0, NUM_ITEMS, 40), [NUM_ITEMS - 1]])
    train = table(train_u, train_i, features)
    test = table(test_u, test_i, features)
    scores = rng.integers(0, 5, (NUM_USERS, NUM_ITEMS)).astype(np.float32)  # many ties
    return train, test, scores, features


def brute_force(train, test, scores, features, ks):
    """Top-k lists by sorting in numpy, then every metric from its textbook definition."""
    seen = {(int(u), int(i)) for u, i in zip(train.users, train.items, strict=True)}
    relevant = {}
    for u, i in zip(test.users.tolist(), test.items.tolist(), strict=True):
        if (u, i) not in seen:
            relevant.setdefault(u, set()).add(i)
    users = sorted(relevant)
    n_users_of = np.array([len({u for u, i in seen if i == item}) for item in range(NUM_ITEMS)])
    num_train_users = len({u for u, _ in seen})
    out = {f"{m}@{k}": [] for m in ("avg_popularity", "novelty", "ild") for k in ks}
    exposure = {k: np.zeros(NUM_ITEMS) for k in ks}
    for u in users:
        row = scores[u].astype(np.float64).copy()
        ranking = [i for i in np.argsort(-row, kind="stable") if (u, int(i)) not in seen]
        for k in ks:
            top = ranking[:k]
            exposure[k][top] += 1
            out[f"avg_popularity@{k}"].append(np.mean([n_users_of[i] for i in top]))
            out[f"novelty@{k}"].append(np.mean([-np.log2(max(n_users_of[i], 1) / num_train_users)
                                                for i in top]))
            sims = []
            for a in range(len(top)):
                for b in range(a + 1, len(top)):
                    fa, fb = features[top[a]], features[top[b]]
                    na, nb = np.linalg.norm(fa), np.linalg.norm(fb)
                    sims.append(0.0 if na == 0 or nb == 0 else fa @ fb / (na * nb))
            out[f"ild@{k}"].append(1.0 - np.mean(sims) if sims else 0.0)
    means = {key: float(np.mean(v)) for key, v in out.items()}
    for k in ks:
        c = exposure[k]
        means[f"coverage@{k}"] = float((c > 0).mean())
        # Gini as the mean absolute difference over all item pairs (an independent formula).
        pair_diffs = np.abs(c[:, None] - c[None, :]).sum()
        means[f"gini@{k}"] = float(pair_diffs / (2 * NUM_ITEMS * c.sum()))
    return np.array(users), {k: np.array(v) for k, v in out.items()}, means


def test_beyond_metrics_match_brute_force(data, user_block=4):  # several blocks, last padded
    train, test, scores, features = data
    ev = RankingEvaluator("test", test, [train], ks=KS, metrics=["ndcg", *BEYOND],
                          user_block=user_block, train=train, item_features=features)
    users, want_per_user, want_means = brute_force(train, test, scores, features, KS)
    got_users, per_user = ev.per_user(score_fn, jnp.asarray(scores))
    np.testing.assert_array_equal(got_users, users)
    got = ev.run(score_fn, jnp.asarray(scores))
    assert list(got) == [f"test/{m}@{k}" for m in ["ndcg", *BEYOND] for k in KS]
    assert not any(k.startswith(("test/coverage", "test/gini")) for k in per_user)
    for key, values in want_per_user.items():
        np.testing.assert_allclose(per_user[f"test/{key}"], values, rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    for key, value in want_means.items():
        np.testing.assert_allclose(got[f"test/{key}"], value, rtol=1e-5, atol=1e-6, err_msg=key)
    assert 0 in users  # the user whose list runs into excluded items is covered


def test_gini_extremes_and_formula():
    gini_jit = jax.jit(gini)
    n = 7
    assert float(gini_jit(jnp.ones(n))) == pytest.approx(0.0, abs=1e-7)
    assert float(gini_jit(jnp.zeros(n).at[3].set(5.0))) == pytest.approx(1 - 1 / n, rel=1e-6)
    assert float(gini_jit(jnp.zeros(n))) == 0.0
    c = np.random.default_rng(0).integers(0, 9, 40).astype(np.float64)
    want = np.abs(c[:, None] - c[None, :]).sum() / (2 * len(c) * c.sum())
    assert float(gini(jnp.asarray(c))) == pytest.approx(want, rel=1e-5)


def test_recall_min_against_definition():
    rng = np.random.default_rng(1)
    hits = rng.random((30, 8)) < 0.4
    num_rel = hits.sum(1) + rng.integers(0, 12, 30) * (rng.random(30) < 0.7)
    for k in (1, 3, 8):
        got = np.asarray(recall_min(jnp.asarray(hits), jnp.asarray(num_rel), k))
        want = [h[:k].sum() / min(k, r) if r else 0.0 for h, r in zip(hits, num_rel, strict=True)]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_metric_names_and_missing_inputs(data):
    train, test, _, _ = data
    with pytest.raises(ValueError, match="eval.metrics: unknown metric 'diversity'"):
        RankingEvaluator("test", test, [train], ks=[3], metrics=["diversity"])
    with pytest.raises(ValueError, match="novelty need the training"):
        RankingEvaluator("test", test, [train], ks=[3], metrics=["novelty"])
    cfg = EvalConfig(ks=[3], metrics=["ild"], diversity_feature="tags")
    with pytest.raises(ValueError, match="eval.diversity_feature.*'tags'.*has: genres"):
        make_evaluators("test", test, [train], cfg, explicit=False)
    (ev,) = make_evaluators("test", test, [train], EvalConfig(ks=[3], metrics=["ild", "novelty"]),
                            explicit=False)
    assert ev.keys == ["test/ild@3", "test/novelty@3"]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA CPU's top-k kernel")
def test_beyond_metrics_keep_the_top_k_kernel(data):
    """List metrics at several cut-offs must not turn top_k into a full sort of each row."""
    train, test, scores, features = data
    ev = RankingEvaluator("test", test, [train], ks=KS, metrics=BEYOND, train=train,
                          item_features=features)
    compiled = ev._program(score_fn).lower(jnp.asarray(scores), ev._blocks,
                                           ev.metric_set.ctx).compile().as_text()
    assert 'custom_call_target="TopK"' in compiled


def test_aggregate_only_metrics_have_no_per_user_values(data):
    train, test, scores, _ = data
    ev = RankingEvaluator("test", test, [train], ks=[3], metrics=["coverage"])
    users, per_user = ev.per_user(score_fn, jnp.asarray(scores))
    assert len(users) == ev.num_users and per_user == {}
    assert 0 < ev.run(score_fn, jnp.asarray(scores))["test/coverage@3"] <= 1
