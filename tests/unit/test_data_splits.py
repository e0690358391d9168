"""Splits: no leakage, exact sizes, determinism; property-based over random tables."""

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrec.config import SplitConfig
from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.interactions import DataError, Interactions
from jaxrec.data.preprocess import compact
from jaxrec.data.splits import SPLIT_METHODS, assign_parts, split


def random_table(seed, num_rows, num_users, num_items, num_times):
    rng = np.random.default_rng(seed)
    inter = Interactions(
        users=rng.integers(0, num_users, num_rows).astype(np.int32),
        items=rng.integers(0, num_items, num_rows).astype(np.int32),
        ratings=rng.integers(1, 6, num_rows).astype(np.float32),
        timestamps=rng.integers(0, num_times, num_rows).astype(np.int64),  # many ties
        user_ids=np.arange(num_users), item_ids=np.arange(num_items), name="rand")
    return compact(inter)


def row_multiset(inter):
    return collections.Counter(zip(inter.users.tolist(), inter.items.tolist(),
                                   inter.ratings.tolist(), inter.timestamps.tolist(),
                                   strict=True))


def round_half_up(x):
    return int(np.floor(x + 0.5))


tables = st.builds(random_table, seed=st.integers(0, 2**16), num_rows=st.integers(1, 120),
                   num_users=st.integers(1, 12), num_items=st.integers(1, 15),
                   num_times=st.integers(1, 40))
configs = st.builds(SplitConfig, method=st.sampled_from(SPLIT_METHODS),
                    test=st.sampled_from([0.05, 0.1, 0.2, 0.5, 0.9]),
                    valid=st.sampled_from([0.0, 0.1, 0.3]), seed=st.integers(0, 3),
                    folds=st.integers(2, 5), fold=st.integers(0, 1))  # kfold; others ignore


@settings(max_examples=150, deadline=None)
@given(inter=tables, cfg=configs)
def test_parts_are_disjoint_and_cover_the_data(inter, cfg):
    part = assign_parts(inter, cfg)
    try:
        train, valid, test = split(inter, cfg)
    except DataError as e:  # only possible when nothing is left to train on
        assert (part != 0).all(), e
        return
    assert (valid is None) == (cfg.valid == 0)
    assert len(train) == (part == 0).sum() and len(test) == (part == 2).sum()
    parts = [train, test] + ([valid] if valid is not None else [])
    assert sum(len(p) for p in parts) == len(inter)
    assert sum((row_multiset(p) for p in parts), collections.Counter()) == row_multiset(inter)
    for p in parts:  # shared vocabularies and features
        assert p.user_ids is inter.user_ids and p.item_ids is inter.item_ids
        assert p.item_features is inter.item_features
    np.testing.assert_array_equal(train.users, inter.users[part == 0])  # row order kept
    assert (part == 1).sum() == (0 if valid is None else len(valid))


@settings(max_examples=100, deadline=None)
@given(inter=tables, test=st.sampled_from([0.1, 0.25, 0.5]), valid=st.sampled_from([0.0, 0.2]),
       seed=st.integers(0, 5))
def test_user_ratio_fractions_within_rounding(inter, test, valid, seed):
    part = assign_parts(inter, SplitConfig("user_ratio", test, valid, seed))
    for u in range(inter.num_users):
        mine = part[inter.users == u]
        n = len(mine)
        n_test = min(round_half_up(test * n), max(n - 1, 0))
        n_valid = min(round_half_up(valid * (n - n_test)), max(n - n_test - 1, 0))
        assert (mine == 2).sum() == n_test and (mine == 1).sum() == n_valid
        assert (mine == 0).sum() >= 1  # every user keeps at least one training row
        assert abs((mine == 2).sum() - test * n) <= 0.5 or n_test == n - 1


@settings(max_examples=100, deadline=None)
@given(inter=tables, valid=st.sampled_from([0.0, 0.1]))
def test_leave_last_holds_out_each_users_latest(inter, valid):
    part = assign_parts(inter, SplitConfig("leave_last", 0.2, valid, 0))
    for u in range(inter.num_users):
        rows = np.flatnonzero(inter.users == u)
        # latest by (timestamp, item index, row order)
        ranked = sorted(rows, key=lambda r: (inter.timestamps[r], inter.items[r], r))
        held = part[rows]
        if len(rows) == 1:
            assert held.tolist() == [0]
            continue
        assert part[ranked[-1]] == 2 and (held == 2).sum() == 1
        if valid > 0 and len(rows) >= 3:
            assert part[ranked[-2]] == 1 and (held == 1).sum() == 1
        else:
            assert (held == 1).sum() == 0
        train_ts = inter.timestamps[rows[held == 0]]
        assert inter.timestamps[ranked[-1]] >= train_ts.max()


@settings(max_examples=100, deadline=None)
@given(inter=tables, test=st.sampled_from([0.1, 0.3]), valid=st.sampled_from([0.0, 0.2]))
def test_temporal_cut_is_global_and_ties_stay_together(inter, test, valid):
    part = assign_parts(inter, SplitConfig("temporal", test, valid, 0))
    ts = inter.timestamps
    if (part == 2).any() and (part != 2).any():
        assert ts[part == 2].min() > ts[part != 2].max()
        assert (part == 2).sum() >= round_half_up(test * len(ts))
    if (part == 1).any() and (part == 0).any():
        assert ts[part == 1].min() > ts[part == 0].max()


def test_random_split_sizes_and_seeds():
    inter = make_synthetic(num_users=50, num_items=80, interactions_per_user=20)
    cfg = SplitConfig("random", test=0.2, valid=0.1, seed=7)
    train, valid, test = split(inter, cfg)
    assert len(test) == 200 and len(valid) == 80 and len(train) == 720


@pytest.mark.parametrize("method", ["random", "user_ratio"])
def test_same_seed_same_split_other_seed_other_split(method):
    inter = make_synthetic(num_users=50, num_items=80, interactions_per_user=20)
    a = assign_parts(inter, SplitConfig(method, 0.2, 0.1, seed=1))
    b = assign_parts(inter, SplitConfig(method, 0.2, 0.1, seed=1))
    c = assign_parts(inter, SplitConfig(method, 0.2, 0.1, seed=2))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


@pytest.mark.parametrize("method", ["leave_last", "temporal"])
def test_time_based_splits_ignore_the_seed(method):
    inter = make_synthetic(num_users=30, num_items=50, interactions_per_user=10)
    a = assign_parts(inter, SplitConfig(method, 0.2, 0.1, seed=1))
    np.testing.assert_array_equal(a, assign_parts(inter, SplitConfig(method, 0.2, 0.1, seed=9)))


def test_leave_last_on_synthetic_holds_one_per_user():
    inter = make_synthetic(num_users=30, num_items=50, interactions_per_user=10)
    train, valid, test = split(inter, SplitConfig("leave_last", valid=0.5))
    assert np.bincount(test.users).tolist() == [1] * 30
    assert np.bincount(valid.users).tolist() == [1] * 30
    assert len(train) == 30 * 8


def test_bad_split_options():
    inter = make_synthetic(num_users=5, num_items=10, interactions_per_user=3)
    with pytest.raises(DataError, match="split.method='by_user'"):
        split(inter, SplitConfig(method="by_user"))
    with pytest.raises(DataError, match=r"split.test=1.5 must be in \[0, 1\)"):
        split(inter, SplitConfig(test=1.5))
    same_time = Interactions(users=np.zeros(4, np.int32), items=np.arange(4, dtype=np.int32),
                             ratings=np.ones(4, np.float32), timestamps=np.zeros(4, np.int64),
                             user_ids=np.arange(1), item_ids=np.arange(4))
    with pytest.raises(DataError, match="left no training interactions"):
        split(same_time, SplitConfig("temporal", test=0.2))


# --- kfold: K-fold cross-validation over interactions ---------------------------------------


def _kfold_parts(inter, folds, *, seed=0, valid=0.0):
    return [assign_parts(inter, SplitConfig("kfold", valid=valid, seed=seed, folds=folds,
                                            fold=k)) for k in range(folds)]


@settings(max_examples=60, deadline=None)
@given(inter=tables, folds=st.integers(2, 7), seed=st.integers(0, 3))
def test_kfold_tests_every_row_exactly_once_in_near_equal_folds(inter, folds, seed):
    parts = np.stack(_kfold_parts(inter, folds, seed=seed))  # [K, E]
    is_test = parts == 2
    np.testing.assert_array_equal(is_test.sum(0), np.ones(len(inter)))  # one fold per row
    sizes = is_test.sum(1)
    assert sizes.sum() == len(inter) and sizes.max() - sizes.min() <= 1
    # sklearn / Surprise KFold: the first E % K folds carry the extra row
    expected = [len(inter) // folds + (k < len(inter) % folds) for k in range(folds)]
    assert sizes.tolist() == expected
    assert ((parts == 0) | is_test).all()  # valid=0: everything else is train


def test_kfold_matches_surprise_kfold_on_the_same_permutation():
    inter = make_synthetic(num_users=20, num_items=30, interactions_per_user=7)  # 140 rows
    folds, seed = 3, 5
    perm = np.random.default_rng(seed).permutation(len(inter))  # the split's first draw
    stop = 0
    for k in range(folds):  # surprise.model_selection.KFold.split, transcribed
        start, stop = stop, stop + len(perm) // folds + (k < len(perm) % folds)
        part = assign_parts(inter, SplitConfig("kfold", seed=seed, folds=folds, fold=k))
        np.testing.assert_array_equal(np.flatnonzero(part == 2), np.sort(perm[start:stop]))


def test_kfold_is_deterministic_per_seed_and_carves_validation_from_train():
    inter = make_synthetic(num_users=40, num_items=60, interactions_per_user=10)  # 400 rows
    a, b = _kfold_parts(inter, 5, seed=1, valid=0.1), _kfold_parts(inter, 5, seed=1, valid=0.1)
    c = _kfold_parts(inter, 5, seed=2, valid=0.1)
    for pa, pb, pc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(pa, pb)
        assert (pa != pc).any()
    no_valid = _kfold_parts(inter, 5, seed=1)
    for with_valid, plain in zip(a, no_valid, strict=True):
        np.testing.assert_array_equal(with_valid == 2, plain == 2)  # same test fold
        assert (with_valid == 1).sum() == round_half_up(0.1 * 320)  # 10% of the train rows
        assert (plain[with_valid == 1] == 0).all()
    train, valid, test = split(inter, SplitConfig("kfold", valid=0.1, seed=1, folds=5, fold=3))
    assert (len(train), len(valid), len(test)) == (288, 32, 80)


@pytest.mark.parametrize(("folds", "fold", "match"), [
    (0, 0, "split.method=kfold needs split.folds"),
    (1, 0, "split.folds=1 must be >= 2"),
    (5, 5, r"split.fold=5 must be in 0..4 \(split.folds=5\)"),
    (5, -1, r"split.fold=-1 must be in 0..4"),
])
def test_kfold_bad_options(folds, fold, match):
    inter = make_synthetic(num_users=5, num_items=10, interactions_per_user=3)
    with pytest.raises(DataError, match=match):
        split(inter, SplitConfig("kfold", folds=folds, fold=fold))
