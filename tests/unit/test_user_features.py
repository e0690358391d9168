"""Built-in user features: ml-100k ``u.user`` / ml-1m ``users.dat`` parsing, the cache,
the ``data.features.user`` fields as bags, and one-line errors for bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data import cache
from jaxrec.data.datasets.movielens import ML1M_OCCUPATIONS, load_movielens, parse_movielens
from jaxrec.data.features import build_features, user_field
from jaxrec.data.interactions import DataError
from jaxrec.data.preprocess import compact
from tests.unit.test_data_movielens import assert_one_line, assert_same, write_csv_variant

# (user id, age, gender, occupation, zip) as the ml-100k u.user file writes them
USERS_100K = [(1, 24, "M", "technician", "85711"), (2, 53, "F", "other", "94043"),
              (3, 17, "M", "writer", "T8H1N"), (5, 33, "F", "other", "15213")]
# (user id, gender, age code, occupation code, zip) as the ml-1m users.dat writes them
USERS_1M = [(1, "F", 1, 10, "48067"), (2, "M", 56, 16, "70072"), (3, "M", 25, 15, "55117"),
            (4, "M", 45, 7, "02460-1234")]


def write_ml100k(root: Path, ratings, users=USERS_100K, *, num_items: int | None = None,
                 user_lines: list[str] | None = None) -> Path:
    """A dataset in the ml-100k format (tab u.data, pipe u.item with 19 genre flags, u.user)
    under ``root/ml-100k``. ``ratings``: (user, item, rating, timestamp) rows; items are the
    ids 1..num_items, item i in genre ``i % 18 + 1``. ``users=None`` writes no u.user;
    ``user_lines`` writes those raw lines instead."""
    folder = root / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings))
    num_items = num_items or max(i for _, i, _, _ in ratings)
    flags = lambda g: "|".join("1" if j == g else "0" for j in range(19))
    year = lambda i: 1990 + i % 10
    (folder / "u.item").write_bytes("".join(
        f"{i}|Movie {i} ({year(i)})|01-Jan-{year(i)}||http://x/{i}|{flags(i % 18 + 1)}\n"
        for i in range(1, num_items + 1)).encode("latin-1"))
    if user_lines is None and users is not None:
        user_lines = [f"{u}|{a}|{g}|{o}|{z}" for u, a, g, o, z in users]
    if user_lines is not None:
        (folder / "u.user").write_text("\n".join(user_lines) + "\n")
    return folder


def write_ml1m(root: Path, ratings, users=USERS_1M, *, user_lines: list[str] | None = None
               ) -> Path:
    """A dataset in the ml-1m format (``::``-separated ratings.dat, movies.dat, users.dat)."""
    folder = root / "ml-1m"
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ratings))
    items = sorted({i for _, i, _, _ in ratings})
    (folder / "movies.dat").write_bytes("".join(
        f"{i}::Movie {i} (1999)::Drama|Comedy\n" for i in items).encode("latin-1"))
    if user_lines is None and users is not None:
        user_lines = [f"{u}::{g}::{a}::{o}::{z}" for u, g, a, o, z in users]
    if user_lines is not None:
        (folder / "users.dat").write_text("\n".join(user_lines) + "\n")
    return folder


RATINGS = [(1, 1, 4, 10), (1, 2, 3, 11), (2, 2, 5, 12), (3, 3, 2, 13), (5, 1, 1, 14),
           (5, 3, 4, 15)]
RATINGS_1M = [(1, 1, 4, 10), (2, 2, 5, 12), (3, 1, 2, 13), (4, 2, 1, 14), (4, 1, 3, 15)]


def bag_rows(bag) -> list[list[tuple[str, float]]]:
    """Each row's (vocab name, weight) pairs, padding dropped."""
    return [[(bag.vocab[i], float(w)) for i, w in zip(ids, ws, strict=True) if i > 0]
            for ids, ws in zip(bag.ids, bag.weights, strict=True)]


# ---------------------------------------------------------------- parsing


def test_ml100k_user_file_parses_to_what_was_written(tmp_path):
    inter = parse_movielens(write_ml100k(tmp_path, RATINGS), "ml-100k")
    np.testing.assert_array_equal(inter.user_attribute_ids, [u for u, *_ in USERS_100K])
    attrs = inter.user_attributes
    assert attrs["age"].dtype == np.int32 and attrs["age"].tolist() == [24, 53, 17, 33]
    assert attrs["gender"].tolist() == ["M", "F", "M", "F"]
    assert attrs["occupation"].tolist() == ["technician", "other", "writer", "other"]
    assert attrs["zip"].tolist() == ["85711", "94043", "T8H1N", "15213"]  # non-US zip kept
    assert inter.user_attribute("occupation").tolist() == ["technician", "other", "writer",
                                                           "other"]


def test_ml1m_user_file_maps_codes_to_readme_names(tmp_path):
    inter = parse_movielens(write_ml1m(tmp_path, RATINGS_1M), "ml-1m")
    attrs = inter.user_attributes
    assert "age" not in attrs and attrs["age_band"].tolist() == [1, 56, 25, 45]
    assert attrs["gender"].tolist() == ["F", "M", "M", "M"]
    assert attrs["occupation"].tolist() == ["K-12 student", "self-employed", "scientist",
                                            "executive/managerial"]
    assert len(ML1M_OCCUPATIONS) == 21 and ML1M_OCCUPATIONS[0] == "other or not specified"
    assert attrs["zip"].tolist() == ["48067", "70072", "55117", "02460-1234"]


def test_attributes_follow_raw_ids_through_reindexing(tmp_path):
    """Keyed by raw id: dropping user 2 re-indexes users, attributes stay with their user;
    a rated user the file does not list (7) gets the unknown value."""
    inter = parse_movielens(write_ml100k(tmp_path, RATINGS + [(7, 1, 3, 16)]), "ml-100k")
    np.testing.assert_array_equal(inter.user_ids, [1, 2, 3, 5, 7])
    assert inter.user_attribute("age").tolist() == [24, 53, 17, 33, 0]
    assert inter.user_attribute("gender").tolist() == ["M", "F", "M", "F", ""]
    small = compact(inter.select(inter.users != 1))
    np.testing.assert_array_equal(small.user_ids, [1, 3, 5, 7])
    assert small.user_attribute("age").tolist() == [24, 17, 33, 0]
    assert small.user_attribute("zip").tolist() == ["85711", "T8H1N", "15213", ""]


def test_no_user_file_means_no_attributes_and_csv_variants_have_none(tmp_path):
    inter = parse_movielens(write_ml100k(tmp_path / "a", RATINGS, users=None), "ml-100k")
    assert inter.user_attributes == {} and inter.user_attribute_ids is None
    csv = parse_movielens(write_csv_variant(tmp_path / "b"), "ml-latest-small")
    assert csv.user_attributes == {}


# ---------------------------------------------------------------- feature bags


def test_ml100k_user_bags_match_a_hand_built_expectation(tmp_path):
    inter = parse_movielens(write_ml100k(tmp_path, RATINGS + [(7, 1, 3, 16)]), "ml-100k")
    spec = {"user": {"age": {}, "gender": {}, "occupation": {}, "zip": {"digits": 2}}}
    bag = build_features(inter, inter, spec).user
    assert bag.fields == ("age", "gender", "occupation", "zip")
    assert bag.ids.shape == (5, 4) and bag.ids.dtype == np.int32
    assert bag_rows(bag) == [
        [("age=18-24", 1.0), ("gender=M", 1.0), ("occupation=technician", 1.0), ("zip=85", 1.0)],
        [("age=50-55", 1.0), ("gender=F", 1.0), ("occupation=other", 1.0), ("zip=94", 1.0)],
        [("age=<18", 1.0), ("gender=M", 1.0), ("occupation=writer", 1.0), ("zip=T8", 1.0)],
        [("age=25-34", 1.0), ("gender=F", 1.0), ("occupation=other", 1.0), ("zip=15", 1.0)],
        [],  # user 7 is not in u.user: no features
    ]
    # shared values share one id; padding (the unknown user's row) has weight 0
    assert bag.ids[1, 2] == bag.ids[3, 2] and bag.ids[0, 1] == bag.ids[2, 1]
    assert (bag.ids[4] == 0).all() and (bag.weights[4] == 0).all()
    assert len(set(bag.vocab)) == bag.vocab_size == 1 + 4 + 2 + 3 + 4


def test_ml1m_age_codes_land_in_the_same_bands_as_ml100k_years(tmp_path):
    inter = parse_movielens(write_ml1m(tmp_path, RATINGS_1M), "ml-1m")
    bag = build_features(inter, inter, {"user": ["age", "occupation", "zip"]}).user
    assert bag_rows(bag) == [
        [("age=<18", 1.0), ("occupation=K-12 student", 1.0), ("zip=4", 1.0)],
        [("age=56+", 1.0), ("occupation=self-employed", 1.0), ("zip=7", 1.0)],
        [("age=25-34", 1.0), ("occupation=scientist", 1.0), ("zip=5", 1.0)],
        [("age=45-49", 1.0), ("occupation=executive/managerial", 1.0), ("zip=0", 1.0)],
    ]
    # brute force: each ml-1m code is the lower bound of its band
    years = parse_movielens(write_ml100k(tmp_path / "y", RATINGS, users=[
        (u, code, "M", "x", "0") for u, code in zip([1, 2, 3, 5], [1, 18, 50, 56], strict=True)]),
        "ml-100k")
    labels = [r[0][0] for r in user_field(years, "age").rows]
    assert labels == ["<18", "18-24", "50-55", "56+"]


def test_ml100k_age_width_buckets_and_user_plus_item_fields(tmp_path):
    inter = parse_movielens(write_ml100k(tmp_path, RATINGS), "ml-100k")
    rows = user_field(inter, "age", {"width": 10}).rows
    assert rows == [[("20", 1.0)], [("50", 1.0)], [("10", 1.0)], [("30", 1.0)]]
    f = build_features(inter, inter, {"item": ["genres"], "user": ["gender"]})
    assert f.item.num_rows == inter.num_items and f.user.num_rows == inter.num_users
    assert f.user_warm.all()


# ---------------------------------------------------------------- cache


def test_cache_round_trips_user_attributes_and_rebuilds_old_versions(tmp_path, monkeypatch):
    write_ml1m(tmp_path / "data", RATINGS_1M)
    kw = dict(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    first = load_movielens("ml-1m", **kw)
    again = load_movielens("ml-1m", **kw)  # from the npz
    assert_same(first, again)
    for key, value in first.user_attributes.items():
        np.testing.assert_array_equal(again.user_attributes[key], value, err_msg=key)
        assert again.user_attributes[key].dtype == value.dtype
    np.testing.assert_array_equal(again.user_attribute_ids, first.user_attribute_ids)
    # a file written by an older format version is rejected by load and rebuilt by cached
    path = next((tmp_path / "cache" / "parsed").glob("*.npz"))
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION - 1)
    cache.save(dataclasses.replace(first, user_attributes={}, user_attribute_ids=None), path)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="cache format"):
        cache.load(path)
    rebuilt = cache.cached(path, lambda: parse_movielens(tmp_path / "data" / "ml-1m", "ml-1m"))
    assert rebuilt.user_attributes["occupation"].tolist() == first.user_attributes[
        "occupation"].tolist()
    assert cache.load(path).user_attribute_ids is not None  # rewritten in the new version


def test_adding_the_user_file_changes_the_cache_key(tmp_path):
    folder = write_ml100k(tmp_path / "data", RATINGS, users=None)
    kw = dict(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    assert load_movielens("ml-100k", **kw).user_attributes == {}
    (folder / "u.user").write_text("".join(f"{u}|{a}|{g}|{o}|{z}\n"
                                           for u, a, g, o, z in USERS_100K))
    assert load_movielens("ml-100k", **kw).user_attributes["age"].tolist() == [24, 53, 17, 33]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("variant", "line", "fragments"), [
    ("ml-100k", "2|53|F|other", ["u.user", "line 2", "4 '|'-separated fields, expected 5"]),
    ("ml-100k", "2|fifty|F|other|94043", ["u.user", "line 2", "age", "'fifty'"]),
    ("ml-100k", "2|53|X|other|94043", ["u.user", "line 2", "gender 'X'"]),
    ("ml-100k", "2|53|F||94043", ["u.user", "line 2", "empty occupation"]),
    ("ml-100k", "1|53|F|other|94043", ["u.user", "line 2", "user id 1 repeats line 1"]),
    ("ml-100k", "x|53|F|other|94043", ["u.user", "line 2", "user id", "'x'"]),
    ("ml-1m", "2::W::56::16::70072", ["users.dat", "line 2", "gender 'W'"]),
    ("ml-1m", "2::M::30::16::70072", ["users.dat", "line 2", "age code '30'"]),
    ("ml-1m", "2::M::56::21::70072", ["users.dat", "line 2", "occupation code '21'", "0-20"]),
    ("ml-1m", "2::M::56::16", ["users.dat", "line 2", "4 '::'-separated fields"]),
])
def test_malformed_user_lines_fail_with_one_line(tmp_path, variant, line, fragments):
    if variant == "ml-100k":
        folder = write_ml100k(tmp_path, RATINGS, user_lines=["1|24|M|technician|85711", line])
    else:
        folder = write_ml1m(tmp_path, RATINGS_1M, user_lines=["1::F::1::10::48067", line])
    with pytest.raises(DataError) as err:
        parse_movielens(folder, variant)
    assert_one_line(err, folder, *fragments)


def test_user_fields_without_user_attributes_fail_with_one_line(tmp_path):
    no_file = parse_movielens(write_ml100k(tmp_path / "a", RATINGS, users=None), "ml-100k")
    with pytest.raises(DataError) as err:
        build_features(no_file, no_file, {"user": ["gender"]})
    assert_one_line(err, "data.features.user.gender: ml-100k has no user attributes", "u.user")
    small = parse_movielens(write_csv_variant(tmp_path / "b"), "ml-latest-small")
    with pytest.raises(DataError) as err:
        build_features(small, small, {"user": {"age": {}}})
    assert_one_line(err, "data.features.user.age: ml-latest-small has no user attributes",
                    "side: user")


@pytest.mark.parametrize(("variant", "spec", "fragments"), [
    ("ml-100k", {"colour": {}}, ["data.features.user.colour", "valid: age, gender"]),
    ("ml-100k", {"zip": {"digits": 0}}, ["data.features.user.zip.digits=0"]),
    ("ml-100k", {"gender": {"bins": 2}}, ["data.features.user.gender", "unknown option 'bins'"]),
    ("ml-1m", {"age": {"width": 10}}, ["data.features.user.age.width", "band code"]),
])
def test_bad_user_field_specs_fail_with_one_line(tmp_path, variant, spec, fragments):
    writer = write_ml100k if variant == "ml-100k" else write_ml1m
    inter = parse_movielens(writer(tmp_path, RATINGS if variant == "ml-100k" else RATINGS_1M),
                            variant)
    with pytest.raises(DataError) as err:
        build_features(inter, inter, {"user": spec})
    assert_one_line(err, *fragments)


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize("variant", ["ml-100k", "ml-1m"])
def test_cold_user_configs_build_user_bags_for_held_out_users(tmp_path, variant):
    from jaxrec.data import build_dataset
    from tests.helpers import compose_train

    users = [(u, 25, "MF"[u % 2], u % 21, f"{u}0000") for u in range(1, 21)]
    ratings = [(u, i, 4, u * 10 + i) for u in range(1, 21) for i in range(1, 6) if (u + i) % 3]
    if variant == "ml-100k":
        write_ml100k(tmp_path / "data", ratings, [(u, a, g, f"job{o}", z)
                                                  for u, a, g, o, z in users])
    else:
        write_ml1m(tmp_path / "data", ratings, [(u, g, a, o, z) for u, a, g, o, z in users])
    cfg = compose_train([f"data={variant}-cold-user", f"paths.data_dir={tmp_path / 'data'}",
                         f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path / "out")
    ds = build_dataset(cfg.data)
    f = build_features(ds.full, ds.train, cfg.data.features)
    assert f.user.fields == ("age", "gender", "occupation", "zip")
    assert f.item.fields == ("genres", "year", "title")
    cold = np.unique(ds.test.users)
    assert len(cold) == 4 and not f.user_warm[cold].any()  # 20% of 20 users, no train rows
    for u in cold:  # every held-out user has its four features, as written in the file
        raw = int(ds.full.user_ids[u])
        job = f"job{raw % 21}" if variant == "ml-100k" else ML1M_OCCUPATIONS[raw % 21]
        assert sorted(name for name, _ in bag_rows(f.user)[u]) == sorted([
            "age=25-34", f"gender={'MF'[raw % 2]}", f"zip={str(raw)[0]}", f"occupation={job}"])
