"""Strong generalisation: the user-level split and fold-in evaluation against numpy."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jaxrec.config import EvalConfig, SplitConfig  # noqa: E402
from jaxrec.data.datasets.synthetic import make_synthetic  # noqa: E402
from jaxrec.data.interactions import DataError, Interactions  # noqa: E402
from jaxrec.data.pipeline import load_and_split  # noqa: E402
from jaxrec.data.preprocess import compact  # noqa: E402
from jaxrec.data.splits import assign_parts, split, strong_split  # noqa: E402
from jaxrec.metrics.protocols import build_evaluators, check_protocol  # noqa: E402
from jaxrec.metrics.scoring import evaluate  # noqa: E402
from jaxrec.models.base import ModelContext  # noqa: E402
from jaxrec.types import DataInfo  # noqa: E402


class ItemKNN(nnx.Module):
    """Cosine item-item kNN over all neighbours: ``scores = history @ S``, ``diag(S) = 0``.

    A minimal fold-in model for the tests (closed form, ``loss=none``).
    """

    def __init__(self, ctx: ModelContext, *, rngs: nnx.Rngs):
        del rngs
        info = ctx.info
        self.sim_NxN = nnx.Param(jnp.zeros((info.num_items, info.num_items)))
        self.history_UxN = nnx.Param(jnp.zeros((info.num_users, info.num_items)))

    def solve_epoch(self, data, key):
        del key
        x = jnp.zeros_like(self.history_UxN[...]).at[data["users"], data["items"]].set(1.0)
        norm_N = jnp.sqrt(x.sum(0))
        sim = (x.T @ x) / jnp.maximum(norm_N[:, None] * norm_N[None, :], 1e-12)
        self.sim_NxN[...] = sim * (1.0 - jnp.eye(sim.shape[0]))
        self.history_UxN[...] = x
        return jnp.zeros(())

    def score_history(self, history_UxN):
        return history_UxN @ self.sim_NxN[...]

    def score_all(self, users_U):
        return self.score_history(self.history_UxN[...][users_U])

    def __call__(self, users, items):
        return self.score_all(users)[jnp.arange(users.shape[0]), items]

    def l2_rows(self, users, items):
        return []


def random_table(seed, num_rows, num_users, num_items):
    rng = np.random.default_rng(seed)
    inter = Interactions(
        users=rng.integers(0, num_users, num_rows).astype(np.int32),
        items=rng.integers(0, num_items, num_rows).astype(np.int32),
        ratings=np.ones(num_rows, np.float32), timestamps=np.zeros(num_rows, np.int64),
        user_ids=np.arange(num_users), item_ids=np.arange(num_items), name="rand")
    return compact(inter)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), num_rows=st.integers(1, 200), num_users=st.integers(1, 25),
       num_items=st.integers(1, 12), test=st.sampled_from([0.2, 0.5, 0.9]),
       valid=st.sampled_from([0.0, 0.25]), fold_in=st.sampled_from([0.5, 0.8, 1.0]),
       split_seed=st.integers(0, 3))
def test_strong_split_holds_out_users_without_leakage(seed, num_rows, num_users, num_items, test,
                                                      valid, fold_in, split_seed):
    inter = random_table(seed, num_rows, num_users, num_items)
    cfg = SplitConfig("strong", test=test, valid=valid, seed=split_seed, fold_in=fold_in)
    part = assign_parts(inter, cfg)
    np.testing.assert_array_equal(part, assign_parts(inter, cfg))  # deterministic
    active = np.unique(inter.users)
    role = {}
    for u in active:  # every user's rows go to one role only
        codes = set(part[inter.users == u].tolist())
        kinds = {0} if codes == {0} else {1 if c in (1, 3) else 2 if c in (2, 4) else 5
                                          for c in codes}
        assert 0 not in codes or codes == {0}, "a user is both train and held out"
        kinds.discard(5)
        assert len(kinds) <= 1
        role[u] = kinds.pop() if kinds else -1  # -1: held out, every row dropped
    want_test = int(np.floor(test * len(active) + 0.5))
    want_valid = int(np.floor(valid * (len(active) - want_test) + 0.5))
    held = [u for u, r in role.items() if r != 0]
    assert len(held) == want_test + want_valid
    assert sum(r == 2 for r in role.values()) <= want_test
    assert sum(r == 1 for r in role.values()) <= want_valid
    train_items = set(inter.items[part == 0].tolist())
    for u in held:
        rows = np.flatnonzero(inter.users == u)
        kept = rows[np.isin(inter.items[rows], list(train_items))]
        # dropped = exactly the held-out rows whose item never occurs in train
        assert set(rows[part[rows] == 5].tolist()) == set(rows.tolist()) - set(kept.tolist())
        n_target = int(np.isin(part[kept], (1, 2)).sum())
        assert n_target == math.floor(round((1 - fold_in) * len(kept), 9))
        assert n_target + int(np.isin(part[kept], (3, 4)).sum()) == len(kept)
    try:
        train, valid_part, test_part = split(inter, cfg)
    except DataError:
        assert not (part == 0).any()
        return
    assert not set(train.users.tolist()) & set(held)
    assert (valid_part is None) == (valid == 0)


def test_strong_split_parts_and_seeds():
    inter = make_synthetic(num_users=60, num_items=40, interactions_per_user=10)
    cfg = SplitConfig("strong", test=0.2, valid=0.25, seed=1)
    parts = strong_split(inter, cfg)
    assert len(np.unique(parts["test"].users)) == 12 and len(np.unique(parts["valid"].users)) == 12
    for name in ("valid", "test"):  # 10 items each: 2 targets, 8 fold-in (when none dropped)
        assert (np.bincount(parts[name].users)[np.unique(parts[name].users)] <= 2).all()
        assert set(parts[name].users.tolist()) <= set(parts[f"{name}_fold_in"].users.tolist())
    other = assign_parts(inter, SplitConfig("strong", test=0.2, valid=0.25, seed=2))
    assert (other != assign_parts(inter, cfg)).any()
    with pytest.raises(DataError, match="split.fold_in=1.5"):
        split(inter, SplitConfig("strong", fold_in=1.5))
    with pytest.raises(DataError, match="expected 'strong'"):
        strong_split(inter, SplitConfig("random"))


@pytest.fixture(scope="module")
def strong_data():
    inter = make_synthetic(num_users=80, num_items=60, interactions_per_user=20, seed=4)
    cfg = SplitConfig("strong", test=0.25, valid=0.2, seed=0)
    dataset = load_and_split(inter, {"implicit": True}, cfg)
    model = ItemKNN(ModelContext(dataset.info), rngs=nnx.Rngs(0))
    train = dataset.train
    model.solve_epoch({"users": jnp.asarray(train.users), "items": jnp.asarray(train.items)},
                      None)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return dataset, cfg, graphdef, (params, rest)


def test_fold_in_evaluation_matches_numpy(strong_data):
    dataset, cfg, graphdef, state = strong_data
    eval_cfg = EvalConfig(ks=[2, 10, 20], metrics=["recall_min", "ndcg", "recall"], user_block=7,
                          protocol="strong")
    valid_evals, test_evals = build_evaluators(dataset, eval_cfg, seed=0)
    (ev,) = test_evals
    assert ev.inputs == "history"
    got = evaluate(test_evals, graphdef, state)

    # numpy: cosine kNN from train only; each test user scored from its fold-in items.
    n = dataset.info.num_items
    x = np.zeros((dataset.info.num_users, n))
    x[dataset.train.users, dataset.train.items] = 1.0
    norm = np.sqrt(x.sum(0))
    sim = (x.T @ x) / np.maximum(norm[:, None] * norm[None, :], 1e-12)
    np.fill_diagonal(sim, 0.0)
    parts = strong_split(dataset.full, cfg)
    fold, target = parts["test_fold_in"], parts["test"]
    want = {f"{m}@{k}": [] for m in ("recall_min", "ndcg", "recall") for k in (2, 10, 20)}
    for u in np.unique(target.users):
        hist = np.zeros(n)
        hist[fold.items[fold.users == u]] = 1.0
        scores = hist @ sim
        rel = set(target.items[target.users == u].tolist())
        ranking = [i for i in np.argsort(-scores, kind="stable") if hist[i] == 0]
        for k in (2, 10, 20):
            found = [r for r, i in enumerate(ranking[:k], 1) if i in rel]
            idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
            want[f"recall_min@{k}"].append(len(found) / min(k, len(rel)))
            want[f"recall@{k}"].append(len(found) / len(rel))
            want[f"ndcg@{k}"].append(sum(1 / math.log2(r + 1) for r in found) / idcg)
    assert ev.num_users == len(np.unique(target.users))
    for key, values in want.items():
        np.testing.assert_allclose(got[f"test/{key}"], np.mean(values), rtol=2e-5, err_msg=key)
    assert got["test/recall_min@2"] > got["test/recall@2"] > 0  # 4 held out per user > k = 2


def test_dataset_fold_in_is_the_split_s_and_evaluators_never_re_split(strong_data,
                                                                         monkeypatch):
    dataset, cfg, _, _ = strong_data
    parts = strong_split(dataset.full, cfg)  # what strong_evaluators re-derived before
    assert dataset.split == cfg and set(dataset.fold_in) == {"valid", "test"}
    for name in ("valid", "test"):
        for field in ("users", "items"):
            np.testing.assert_array_equal(getattr(dataset.fold_in[name], field),
                                          getattr(parts[f"{name}_fold_in"], field))
            np.testing.assert_array_equal(getattr(getattr(dataset, name), field),
                                          getattr(parts[name], field))
    (valid, _, v_excl), (test, _, t_excl) = dataset.eval_parts()
    assert (valid, test) == ("valid", "test")
    assert v_excl == (dataset.fold_in["valid"],) and t_excl == (dataset.fold_in["test"],)

    import jaxrec.data.splits as splits

    def no_re_split(*args, **kwargs):
        raise AssertionError("evaluators must not re-split")

    for name in ("strong_split", "assign_parts", "split_parts", "split"):
        monkeypatch.setattr(splits, name, no_re_split)
    eval_cfg = EvalConfig(ks=[5], metrics=["recall"], protocol="strong")
    valid_evals, test_evals = build_evaluators(dataset, eval_cfg, seed=0)
    assert [e.num_users for e in test_evals] == [len(np.unique(parts["test"].users))]
    assert valid_evals[0].inputs == "history"


def test_strong_split_without_valid_has_test_fold_in_only():
    inter = make_synthetic(num_users=40, num_items=30, interactions_per_user=10, seed=1)
    dataset = load_and_split(inter, {"implicit": True}, SplitConfig("strong", test=0.25))
    assert set(dataset.fold_in) == {"test"} and not dataset.has_valid
    assert [p.name for p in dataset.eval_parts()] == ["test"]
    valid_evals, test_evals = build_evaluators(dataset, EvalConfig(protocol="strong"), seed=0)
    assert valid_evals == [] and len(test_evals) == 1


def test_protocol_checks():
    mf_like = object()
    strong = EvalConfig(protocol="strong")
    with pytest.raises(ValueError, match="object cannot fold in a new user's history"):
        check_protocol(strong, SplitConfig("strong"), mf_like)
    with pytest.raises(ValueError, match="data.split.method=random with eval.protocol=strong"):
        check_protocol(strong, SplitConfig("random"))
    with pytest.raises(ValueError, match="data.split.method=strong with eval.protocol=full"):
        check_protocol(EvalConfig(), SplitConfig("strong"))
    check_protocol(strong, SplitConfig("strong"), ItemKNN(
        ModelContext(DataInfo(3, 4, 1, 1.0, 1.0, 1.0, True)), rngs=nnx.Rngs(0)))
