"""Feature spec -> padded bags: built-in MovieLens-like fields, tables, errors, history profiles."""

import numpy as np
import pytest

from jaxrec.data.features import (
    build_features,
    concat_fields,
    history_profiles,
    item_field,
    tokenize,
)
from jaxrec.data.interactions import DataError, Interactions


def tiny(num_users=4):
    genres = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]], np.float32)
    tags = np.array([[2, 0], [0, 1], [0, 0], [1, 1], [0, 0]], np.float32)
    return Interactions(
        users=np.array([0, 0, 1, 2, 3, 3], np.int32)[: 6 if num_users == 4 else 3],
        items=np.array([0, 1, 1, 2, 3, 0], np.int32)[: 6 if num_users == 4 else 3],
        ratings=np.ones(6 if num_users == 4 else 3, np.float32),
        timestamps=np.zeros(6 if num_users == 4 else 3, np.int64),
        user_ids=np.arange(10, 10 + num_users), item_ids=np.array([1, 2, 3, 4, 5]),
        item_titles=np.array(["Toy Story (1995)", "Story of Us, The (1999)", "Heat (1995)",
                              "Toy Soldiers (1991)", "Untitled"], object),
        item_features={"genres": genres, "tags": tags,
                       "year": np.array([1995, 1999, 1995, 1991, 0], np.int32)},
        feature_vocab={"genres": ["Action", "Comedy", "Drama"], "tags": ["pixar", "fun"]},
        name="tiny")


def names(bag, row):
    return sorted(bag.vocab[i] for i, w in zip(bag.ids[row], bag.weights[row], strict=True)
                  if i > 0)


def test_builtin_item_fields_become_one_padded_bag():
    inter = tiny()
    f = build_features(inter, inter, ["genres", "year", "tags", "title"])
    bag = f.item
    assert bag.ids.shape[0] == 5 and bag.ids.dtype == np.int32
    assert bag.fields == ("genres", "year", "tags", "title")
    assert names(bag, 0) == ["genres=Action", "genres=Comedy", "tags=pixar", "title=story",
                             "title=toy", "year=1995"]
    assert names(bag, 4) == []  # no genres, unknown year, no tags, no kept title token
    s, e = bag.slots[0]
    np.testing.assert_allclose(bag.weights[0, s:e].sum(), 1.0)  # mean-pooled genres
    assert (bag.weights[bag.ids == 0] == 0).all()  # padding carries no weight
    dense = bag.dense()
    assert dense.shape == (5, bag.vocab_size) and (dense[:, 0] == 0).all()


def test_year_buckets_and_title_tokens():
    inter = tiny()
    f = item_field(inter, "year", {"width": 10}, )
    assert [r[0][0] if r else None for r in f.rows] == ["1990", "1990", "1990", "1990", None]
    assert tokenize("The Story of Us, The (1999)") == ["story", "us", "1999"]
    title = item_field(inter, "title", {"min_count": 2})  # year stripped, rare tokens dropped
    assert [sorted(t for t, _ in r) for r in title.rows] == [["story", "toy"], ["story"], [],
                                                             ["toy"], []]


def test_tags_tfidf_downweights_common_tags():
    inter = tiny()
    plain = item_field(inter, "tags", {"pool": "sum"})
    tfidf = item_field(inter, "tags", {"tfidf": True, "pool": "sum"})
    assert dict(plain.rows[3]) == {"pixar": 1.0, "fun": 1.0}
    w = dict(tfidf.rows[0])["pixar"]
    np.testing.assert_allclose(w, 2 * (np.log(6 / 3) + 1), rtol=1e-6)


def test_history_profile_is_the_mean_item_bag():
    inter = tiny()
    f = build_features(inter, inter, {"item": ["genres"]})
    dense_items = f.item.dense()
    prof = f.history
    dense_prof = np.zeros((4, f.item.vocab_size))
    for u in range(4):
        for i, w in zip(prof.ids[u], prof.weights[u], strict=True):
            dense_prof[u, i] += w
    for u in range(4):
        mine = inter.items[inter.users == u]
        np.testing.assert_allclose(dense_prof[u, 1:], dense_items[mine].mean(0)[1:], atol=1e-6)
    truncated = history_profiles(f.item, inter, max_len=1)
    assert truncated.ids.shape == (4, 1)


def test_warm_masks_come_from_train_only():
    inter = tiny()
    train = inter.select(inter.items != 3)
    f = build_features(inter, train, ["genres"])
    assert f.item_warm.tolist() == [True, True, True, False, False]
    assert f.user_warm.tolist() == [True, True, True, True]


def test_tables_map_columns_to_kinds(tmp_path):
    inter = tiny()
    path = tmp_path / "users.csv"
    path.write_text("uid,age,gender,likes,bio\n10,23,F,a|b,loves toy story\n"
                    "12,51,M,b,\n13,,F,,story\n")
    spec = {"tables": [{"path": str(path), "side": "user", "key": "uid",
                        "columns": {"age": {"kind": "bucket", "bins": 2}, "gender": "categorical",
                                    "likes": "multi_categorical",
                                    "bio": {"kind": "text", "min_count": 1}}}],
            "item": ["genres"]}
    f = build_features(inter, inter, spec)
    bag = f.user
    assert bag.fields == ("age", "gender", "likes", "bio")
    assert "gender=F" in names(bag, 0) and "likes=a" in names(bag, 0)
    assert names(bag, 1) == []  # user 11 has no row
    assert not any(n.startswith("age=") for n in names(bag, 3))  # missing age
    num = build_features(inter, inter, {"tables": [{"path": str(path), "side": "user",
                                                   "key": "uid", "columns": {"age": "numeric"}}]})
    w = num.user.weights[[0, 2], 0]
    np.testing.assert_allclose(w, [-1.0, 1.0], atol=1e-6)  # standardised


@pytest.mark.parametrize(("content", "spec", "match"), [
    ("uid,age\n10,3\n99,4\n", {"columns": {"age": "numeric"}}, "user id 99"),
    ("uid,age\n10,3\n", {"columns": {"height": "numeric"}}, "missing column 'height'"),
    ("uid,age\n10,old\n", {"columns": {"age": "numeric"}}, "non-numeric"),
    ("uid,age\n10,3\n", {"columns": {"age": "colour"}}, "kind 'colour'"),
    ("uid,age\nx,3\n", {"columns": {"age": "numeric"}}, "non-integer id 'x'"),
])
def test_bad_tables_fail_with_one_line(tmp_path, content, spec, match):
    inter = tiny()
    path = tmp_path / "t.csv"
    path.write_text(content)
    table = {"path": str(path), "side": "user", "key": "uid", **spec}
    with pytest.raises(DataError, match=match) as err:
        build_features(inter, inter, {"tables": [table]})
    assert "\n" not in str(err.value)


def test_unknown_ids_can_be_ignored(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("uid,age\n10,3\n99,4\n")
    table = {"path": str(path), "side": "user", "key": "uid", "columns": {"age": "categorical"},
             "unknown_ids": "ignore"}
    f = build_features(tiny(), tiny(), {"tables": [table]})
    assert names(f.user, 0) == ["age=3"]


@pytest.mark.parametrize(("spec", "match"), [
    (["colour"], "no item feature 'colour'"),
    ({"item": {"genres": {"bins": 3}}}, "unknown option 'bins'"),
    ({"items": ["genres"]}, "unknown key 'items'"),
])
def test_bad_specs_fail_with_one_line(spec, match):
    with pytest.raises(DataError, match=match):
        build_features(tiny(), tiny(), spec)


def test_no_spec_means_no_features():
    assert build_features(tiny(), tiny(), None) is None
    assert concat_fields([], 3) is None
