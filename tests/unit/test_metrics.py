"""Per-user ranking metrics and rating errors against brute-force numpy loops."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import math  # noqa: E402

import hypothesis.extra.numpy as hnp  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jaxrec.metrics import (  # noqa: E402
    RANKING_METRICS,
    check_ranking_metrics,
    mae,
    metric_key,
    ranking_metrics,
    rmse,
)

NAMES = ("recall", "precision", "hit", "ndcg", "mrr", "map")
# One compile per (shape, ks) instead of op-by-op dispatch keeps the tests fast.
metrics_jit = jax.jit(ranking_metrics, static_argnums=(2, 3))


def brute_force(name: str, hits: list[bool], num_relevant: int, k: int) -> float:
    """One user's metric from the textbook definition, by plain loops."""
    if num_relevant == 0:
        return 0.0
    top = [bool(h) for h in hits[:k]]
    found = sum(top)
    if name == "recall":
        return found / num_relevant
    if name == "precision":
        return found / k
    if name == "hit":
        return 1.0 if found else 0.0
    if name == "ndcg":
        dcg = sum(1.0 / math.log2(rank + 1) for rank, h in enumerate(top, 1) if h)
        idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(num_relevant, k) + 1))
        return dcg / idcg
    if name == "mrr":
        for rank, h in enumerate(top, 1):
            if h:
                return 1.0 / rank
        return 0.0
    if name == "map":
        total, seen = 0.0, 0
        for rank, h in enumerate(top, 1):
            if h:
                seen += 1
                total += seen / rank
        return total / min(num_relevant, k)
    raise KeyError(name)


def check_all(hits_UxK: np.ndarray, num_relevant_U: np.ndarray, ks) -> None:
    got = metrics_jit(jnp.asarray(hits_UxK), jnp.asarray(num_relevant_U), NAMES, tuple(ks))
    for name in NAMES:
        for k in ks:
            values = np.asarray(got[metric_key(name, k)])
            assert values.dtype == np.float32 and values.shape == num_relevant_U.shape
            want = [brute_force(name, list(h), int(r), k)
                    for h, r in zip(hits_UxK, num_relevant_U, strict=True)]
            np.testing.assert_allclose(values, want, rtol=1e-6, atol=1e-7, err_msg=f"{name}@{k}")


def random_case(rng: np.random.Generator, num_users: int, width: int):
    """Random hit lists with a consistent number of relevant items (>= hits in the list)."""
    density = rng.uniform(0.0, 0.8, size=(num_users, 1))
    hits = rng.random((num_users, width)) < density
    extra = rng.integers(0, 2 * width, num_users) * (rng.random(num_users) < 0.7)
    return hits, (hits.sum(1) + extra).astype(np.int32)


@pytest.mark.parametrize("seed", range(4))
def test_random_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    hits, num_rel = random_case(rng, 48, 12)
    num_rel[:3] = 0  # users with no relevant items get 0 everywhere
    hits[:3] = False
    check_all(hits, num_rel, [1, 3, 5, 12])


@settings(max_examples=60, deadline=None)
@given(hits=hnp.arrays(np.bool_, (8, 6)),
       extra=hnp.arrays(np.int32, (8,), elements=st.integers(0, 9)))
def test_property_against_brute_force(hits, extra):
    check_all(hits, hits.sum(1).astype(np.int32) + extra, [1, 4, 6])


def test_float_hits_are_accepted():
    hits, num_rel = random_case(np.random.default_rng(7), 16, 6)
    check_all(hits.astype(np.float32), num_rel, [2, 6])


def test_edge_cases():
    width = 5
    hits = np.array([
        [0, 0, 0, 0, 0],  # no relevant items at all
        [0, 0, 0, 0, 0],  # relevant items, none retrieved
        [1, 1, 1, 1, 1],  # all retrieved items relevant, more relevant than K
        [1, 1, 1, 0, 0],  # fewer relevant than K, all on top (perfect list)
        [0, 0, 0, 0, 1],  # single hit at the last rank
        [1, 0, 0, 0, 0],  # single hit at the first rank
        [1, 1, 1, 1, 1],  # exactly K relevant, all retrieved
    ], bool)
    num_rel = np.array([0, 4, 9, 3, 1, 1, 5], np.int32)
    check_all(hits, num_rel, [1, 2, width])
    got = metrics_jit(jnp.asarray(hits), jnp.asarray(num_rel), NAMES, (width,))
    # A perfect list scores 1 on ndcg / map / mrr / hit; recall is capped by K / R.
    for name in ["ndcg", "map", "mrr", "hit"]:
        assert np.asarray(got[f"{name}@5"])[[3, 6]].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(np.asarray(got["recall@5"])[[2, 3]], [5 / 9, 1.0])
    assert all(float(v[0]) == 0.0 for v in got.values())


@settings(max_examples=40, deadline=None)
@given(hits=hnp.arrays(np.bool_, (8, 6)),
       extra=hnp.arrays(np.int32, (8,), elements=st.integers(0, 9)))
def test_values_in_unit_interval_and_monotone(hits, extra):
    num_rel = hits.sum(1).astype(np.int32) + extra
    got = {key: np.asarray(v) for key, v in
           metrics_jit(jnp.asarray(hits), jnp.asarray(num_rel), NAMES, (1, 3, 6)).items()}
    for v in got.values():
        assert np.all((v >= 0.0) & (v <= 1.0 + 1e-6))
    for name in ["recall", "hit", "mrr"]:  # non-decreasing in k
        assert np.all(got[f"{name}@1"] <= got[f"{name}@3"] + 1e-7)
        assert np.all(got[f"{name}@3"] <= got[f"{name}@6"] + 1e-7)


def test_registry_and_keys():
    assert sorted(RANKING_METRICS) == sorted(NAMES)
    assert metric_key("ndcg", 10) == "ndcg@10"
    keys = list(ranking_metrics(jnp.zeros((2, 3), bool), jnp.ones(2, jnp.int32),
                                ["ndcg", "hit"], [1, 3]))
    assert keys == ["ndcg@1", "ndcg@3", "hit@1", "hit@3"]


def test_bad_names_and_cutoffs():
    with pytest.raises(ValueError, match="eval.metrics.*'auc'"):
        check_ranking_metrics(["ndcg", "auc"], [10])
    for bad in [0, -1, 2.5, True]:
        with pytest.raises(ValueError, match="eval.ks"):
            check_ranking_metrics(["ndcg"], [bad])
    with pytest.raises(ValueError, match="k=4"):
        RANKING_METRICS["ndcg"](jnp.zeros((2, 3), bool), jnp.ones(2, jnp.int32), 4)


@pytest.mark.parametrize("with_mask", [False, True])
def test_rmse_mae_against_numpy(with_mask):
    rng = np.random.default_rng(3)
    preds = rng.uniform(0.5, 5.0, 40).astype(np.float32)
    targets = rng.integers(1, 6, 40).astype(np.float32)
    mask = rng.random(40) < 0.6 if with_mask else np.ones(40, bool)
    err = (preds - targets)[mask].astype(np.float64)
    args = (jnp.asarray(preds), jnp.asarray(targets)) + ((jnp.asarray(mask),) if with_mask else ())
    np.testing.assert_allclose(float(rmse(*args)), np.sqrt(np.mean(err ** 2)), rtol=1e-6)
    np.testing.assert_allclose(float(mae(*args)), np.mean(np.abs(err)), rtol=1e-6)


def test_every_metric_states_its_direction():
    from jaxrec.metrics import ALL_METRICS, HIGHER_IS_BETTER

    assert set(ALL_METRICS) | {"rmse", "mae", "loss"} == set(HIGHER_IS_BETTER)
    assert all(isinstance(v, bool) for v in HIGHER_IS_BETTER.values())
    lower = {k for k, up in HIGHER_IS_BETTER.items() if not up}
    assert lower == {"rmse", "mae", "loss", "gini", "avg_popularity"}


@pytest.mark.parametrize(("key", "up"), [("valid/ndcg@10", True),
                                         ("test/cold_item/recall@20", True),
                                         ("test/activity_0-19/recall_min@50", True),
                                         ("valid/rmse", False), ("test/mae", False),
                                         ("train/loss", False), ("test/coverage@10", True),
                                         ("test/gini@10", False), ("ndcg@5", True)])
def test_higher_is_better_parses_keys(key, up):
    from jaxrec.metrics import higher_is_better

    assert higher_is_better(key) is up


@pytest.mark.parametrize(("key", "message"), [
    ("valid/auc@10", "metric key 'valid/auc@10': unknown metric 'auc'"),
    ("valid/ndcg", "metric key 'valid/ndcg': ndcg needs a positive cut-off"),
    ("valid/ndcg@0", "metric key 'valid/ndcg@0': ndcg needs a positive cut-off"),
    ("valid/rmse@10", "metric key 'valid/rmse@10': rmse has no cut-off"),
])
def test_higher_is_better_rejects_unknown_keys(key, message):
    from jaxrec.metrics import higher_is_better

    with pytest.raises(ValueError) as err:
        higher_is_better(key)
    assert message in str(err.value) and "\n" not in str(err.value)
