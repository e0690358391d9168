"""Preprocessing: dedup modes, rating threshold, implicit, iterated k-core, re-indexing."""

import numpy as np
import pytest

from jaxrec.config import PreprocessConfig
from jaxrec.data.interactions import DataError, Interactions
from jaxrec.data.preprocess import compact, dedup, k_core, preprocess


def table(rows, num_users=None, num_items=None, with_features=True):
    """Interactions from (user, item, rating, timestamp) rows; raw ids are 100+u / 1000+i."""
    u, i, r, t = (np.array(c) for c in zip(*rows, strict=True))
    nu = num_users or int(u.max()) + 1
    ni = num_items or int(i.max()) + 1
    features = {"genres": np.eye(ni, 3, dtype=np.float32), "year": np.arange(ni, dtype=np.int32)}
    return Interactions(
        users=u.astype(np.int32), items=i.astype(np.int32), ratings=r.astype(np.float32),
        timestamps=t.astype(np.int64), user_ids=np.arange(nu) + 100, item_ids=np.arange(ni) + 1000,
        item_titles=np.array([f"t{j}" for j in range(ni)], dtype=object),
        item_features=features if with_features else {},
        feature_vocab={"genres": ["a", "b", "c"]} if with_features else {}, name="toy")


def rows_of(inter):
    return list(zip(inter.users.tolist(), inter.items.tolist(), inter.ratings.tolist(),
                    inter.timestamps.tolist(), strict=True))


DUPS = table([(0, 0, 1.0, 5), (0, 1, 2.0, 1), (0, 0, 3.0, 9), (1, 0, 4.0, 2), (0, 0, 5.0, 7)])


def test_dedup_last_first_mean_none():
    assert rows_of(dedup(DUPS, "last")) == [(0, 1, 2.0, 1), (0, 0, 3.0, 9), (1, 0, 4.0, 2)]
    assert rows_of(dedup(DUPS, "first")) == [(0, 0, 1.0, 5), (0, 1, 2.0, 1), (1, 0, 4.0, 2)]
    assert rows_of(dedup(DUPS, "mean")) == [(0, 1, 2.0, 1), (0, 0, 3.0, 9), (1, 0, 4.0, 2)]
    mean = dedup(table([(0, 0, 1.0, 5), (0, 0, 2.0, 5), (0, 1, 4.0, 1)]), "mean")
    assert rows_of(mean) == [(0, 0, 1.5, 5), (0, 1, 4.0, 1)]
    assert dedup(DUPS, "none") is DUPS


def test_dedup_ties_on_timestamp_follow_row_order():
    tied = table([(0, 0, 1.0, 5), (0, 0, 2.0, 5)])
    assert rows_of(dedup(tied, "last")) == [(0, 0, 2.0, 5)]
    assert rows_of(dedup(tied, "first")) == [(0, 0, 1.0, 5)]


def test_threshold_and_implicit():
    cfg = PreprocessConfig(rating_threshold=3.0, implicit=True, dedup="none")
    out = preprocess(DUPS, cfg)
    assert rows_of(out) == [(0, 0, 1.0, 9), (1, 0, 1.0, 2), (0, 0, 1.0, 7)]
    assert out.num_items == 1 and out.item_ids.tolist() == [1000]


def test_k_core_iterates_until_stable():
    # user 2 has one rating; dropping it leaves item 2 with one rating; dropping that
    # leaves user 1 with one rating, ... only the dense 2x2 block survives.
    rows = [(0, 0, 1, 0), (0, 1, 1, 0), (3, 0, 1, 0), (3, 1, 1, 0),
            (1, 1, 1, 0), (1, 2, 1, 0), (2, 2, 1, 0)]
    out = k_core(table(rows), 2, 2)
    assert sorted(set(out.users.tolist())) == [0, 3] and sorted(set(out.items.tolist())) == [0, 1]
    assert (np.bincount(out.users)[[0, 3]] >= 2).all() and (np.bincount(out.items) >= 2).all()


def test_compact_reindexes_and_slices_features():
    inter = table([(1, 3, 4.0, 0), (3, 1, 2.0, 1)], num_users=5, num_items=5)
    out = compact(inter)
    assert out.user_ids.tolist() == [101, 103] and out.item_ids.tolist() == [1001, 1003]
    assert out.users.tolist() == [0, 1] and out.items.tolist() == [1, 0]
    assert out.users.dtype == np.int32 and out.items.dtype == np.int32
    assert out.item_titles.tolist() == ["t1", "t3"]
    np.testing.assert_array_equal(out.item_features["year"], [1, 3])
    np.testing.assert_array_equal(out.item_features["genres"], np.eye(5, 3)[[1, 3]])
    assert out.feature_vocab == inter.feature_vocab
    # Same raw (user, item, rating) facts before and after.
    before = set(zip(inter.user_ids[inter.users], inter.item_ids[inter.items], strict=True))
    after = set(zip(out.user_ids[out.users], out.item_ids[out.items], strict=True))
    assert before == after


def test_preprocess_defaults_keep_everything():
    inter = table([(0, 0, 4.0, 0), (1, 1, 2.0, 1)], with_features=False)
    assert preprocess(inter, PreprocessConfig()) is inter


def test_empty_after_threshold_names_filter_and_value():
    with pytest.raises(DataError) as err:
        preprocess(DUPS, PreprocessConfig(rating_threshold=6.0))
    assert "rating_threshold=6.0" in str(err.value) and "\n" not in str(err.value)


def test_empty_after_k_core_names_filter_and_value():
    with pytest.raises(DataError, match=r"k-core.*min_user_interactions=50"):
        preprocess(DUPS, PreprocessConfig(min_user_interactions=50))


def test_bad_options():
    with pytest.raises(DataError, match="dedup='latest'"):
        preprocess(DUPS, PreprocessConfig(dedup="latest"))
    with pytest.raises(DataError, match="min_item_interactions=-1"):
        preprocess(DUPS, PreprocessConfig(min_item_interactions=-1))
