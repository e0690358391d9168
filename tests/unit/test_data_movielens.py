"""MovieLens parsing: real ml-latest-small facts, the ml-100k / ml-1m / CSV formats,
the parsed-data cache, and one-line errors for bad input."""

import os
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data import cache
from jaxrec.data.datasets.movielens import load_movielens, parse_movielens
from jaxrec.data.interactions import DataError

CRLF = "\r\n"


def write_csv_variant(root: Path, variant: str = "ml-latest-small", *, ratings=None,
                      movies=None, tags=None) -> Path:
    """A tiny dataset in the CSV format (CRLF, quoted titles) under ``root/variant``."""
    folder = root / variant
    folder.mkdir(parents=True)
    ratings = ratings or ["userId,movieId,rating,timestamp", "1,10,4.0,100", "1,30,3.5,101",
                          "2,10,5.0,102", "2,20,0.5,103", "7,40,2.0,104"]
    movies = movies or ["movieId,title,genres", "10,Toy Story (1995),Adventure|Animation",
                        '20,"American President, The (1995)",Comedy|Drama|Romance',
                        "30,Babylon 5,(no genres listed)", "40,Heat (1995),Action",
                        "50,Never Rated (2001),Drama"]
    tags = tags if tags is not None else [
        "userId,movieId,tag,timestamp", "1,10,Pixar,1", "2,10, pixar ,2", "1,20,politics,3",
        '1,10,"funny, clever",4', "2,50,unrated,5"]
    (folder / "ratings.csv").write_bytes((CRLF.join(ratings) + CRLF).encode())
    (folder / "movies.csv").write_bytes((CRLF.join(movies) + CRLF).encode())
    if tags:
        (folder / "tags.csv").write_bytes((CRLF.join(tags) + CRLF).encode())
    return folder


def assert_same(a, b):
    for field in ("users", "items", "ratings", "timestamps", "user_ids", "item_ids",
                  "item_titles"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        assert getattr(a, field).dtype == getattr(b, field).dtype, field
    assert a.item_features.keys() == b.item_features.keys()
    for key in a.item_features:
        np.testing.assert_array_equal(a.item_features[key], b.item_features[key], err_msg=key)
        assert a.item_features[key].dtype == b.item_features[key].dtype
    assert a.feature_vocab == b.feature_vocab and a.name == b.name


def assert_one_line(err, *fragments):
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert str(fragment) in message, (fragment, message)


# ---------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def small(data_dir, tmp_path_factory):
    return load_movielens("ml-latest-small", data_dir=data_dir,
                          cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_ml_latest_small_known_counts(small):
    assert (len(small), small.num_users, small.num_items) == (100836, 610, 9724)
    assert small.users.dtype == np.int32 and small.items.dtype == np.int32
    assert small.ratings.dtype == np.float32 and small.timestamps.dtype == np.int64
    assert set(np.unique(small.ratings)) == set(np.arange(1, 11) / 2)
    assert small.timestamps.min() == 828124615  # 1996-03-29
    assert np.all(np.diff(small.user_ids) > 0) and np.all(np.diff(small.item_ids) > 0)
    assert small.user_ids[0] == 1 and small.user_ids[-1] == 610


def test_ml_latest_small_titles_genres_year_tags(small):
    toy = small.item_index[1]
    assert small.item_titles[toy] == "Toy Story (1995)"
    assert small.item_titles[small.item_index[11]] == "American President, The (1995)"
    vocab = small.feature_vocab["genres"]
    assert "(no genres listed)" not in vocab and len(vocab) == 19
    genres = small.item_features["genres"]
    assert genres.shape == (9724, 19) and genres.dtype == np.float32
    assert {vocab[j] for j in np.flatnonzero(genres[toy])} == {
        "Adventure", "Animation", "Children", "Comedy", "Fantasy"}
    assert (genres.sum(1) == 0).sum() == 34  # the "(no genres listed)" movies
    year = small.item_features["year"]
    assert year.dtype == np.int32 and year[toy] == 1995
    assert year[small.item_index[147250]] == 0  # "The Adventures of Sherlock Holmes and ..."
    tags = small.item_features["tags"]
    assert tags.shape == (9724, 1000) and tags.dtype == np.float32
    tag_vocab = small.feature_vocab["tags"]
    assert tag_vocab[0] == "in netflix queue"  # the most used tag
    assert all(t == t.strip().lower() for t in tag_vocab)
    assert tags[toy, tag_vocab.index("pixar")] >= 1


def test_real_data_cache_goes_to_cache_dir(data_dir, tmp_path, small):
    before = sorted(os.listdir(Path(data_dir) / "ml-latest-small"))
    again = load_movielens("ml-latest-small", data_dir=data_dir, cache_dir=str(tmp_path))
    assert len(list((tmp_path / "parsed").glob("*.npz"))) == 1
    assert sorted(os.listdir(Path(data_dir) / "ml-latest-small")) == before
    assert_same(small, again)


# ---------------------------------------------------------------- CSV format


def test_csv_format_parses_quotes_crlf_and_features(tmp_path):
    write_csv_variant(tmp_path / "data")
    inter = load_movielens("ml-latest-small", data_dir=str(tmp_path / "data"),
                           cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(inter.user_ids, [1, 2, 7])
    np.testing.assert_array_equal(inter.item_ids, [10, 20, 30, 40])  # 50 was never rated
    np.testing.assert_array_equal(inter.users, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(inter.items, [0, 2, 0, 1, 3])
    np.testing.assert_array_equal(inter.ratings, [4.0, 3.5, 5.0, 0.5, 2.0])
    np.testing.assert_array_equal(inter.timestamps, [100, 101, 102, 103, 104])
    assert list(inter.item_titles) == ["Toy Story (1995)", "American President, The (1995)",
                                       "Babylon 5", "Heat (1995)"]
    assert inter.feature_vocab["genres"] == ["Action", "Adventure", "Animation", "Comedy",
                                             "Drama", "Romance"]
    np.testing.assert_array_equal(inter.item_features["genres"][2], np.zeros(6))
    np.testing.assert_array_equal(inter.item_features["year"], [1995, 1995, 0, 1995])
    assert inter.feature_vocab["tags"] == ["pixar", "funny, clever", "politics"]
    np.testing.assert_array_equal(inter.item_features["tags"],
                                  [[2, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])


def test_max_tags_keeps_most_frequent(tmp_path):
    folder = write_csv_variant(tmp_path)
    inter = parse_movielens(folder, "ml-latest-small", max_tags=1)
    assert inter.feature_vocab["tags"] == ["pixar"]
    assert inter.item_features["tags"].shape == (4, 1)


def test_csv_variant_without_tags_file(tmp_path):
    folder = write_csv_variant(tmp_path, "ml-20m", tags=[])
    inter = parse_movielens(folder, "ml-20m")
    assert "tags" not in inter.item_features and inter.name == "ml-20m"


# ---------------------------------------------------------------- ml-100k / ml-1m


def test_ml_100k_format(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
                                   "196\t302\t1\t881250950\n")
    flags = lambda on: "|".join("1" if i in on else "0" for i in range(19))
    (folder / "u.item").write_bytes((
        f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{flags({5})}\n"
        f"302|Misérables, Les|01-Jan-1995||http://x|{flags({8, 14})}\n"
        f"999|Unrated (1990)|01-Jan-1990||http://y|{flags({0})}\n").encode("latin-1"))
    inter = load_movielens("ml-100k", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    np.testing.assert_array_equal(inter.user_ids, [186, 196])
    np.testing.assert_array_equal(inter.item_ids, [242, 302])
    np.testing.assert_array_equal(inter.users, [1, 0, 1])
    np.testing.assert_array_equal(inter.ratings, [3, 3, 1])
    assert list(inter.item_titles) == ["Kolya (1996)", "Misérables, Les"]
    assert inter.feature_vocab["genres"] == ["Comedy", "Drama", "Romance"]
    np.testing.assert_array_equal(inter.item_features["genres"], [[1, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(inter.item_features["year"], [1996, 1995])  # release date
    assert "tags" not in inter.item_features


def test_ml_1m_format(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n"
                                        "2::1193::4::978298413\n2::3000::2::978298414\n")
    (folder / "movies.dat").write_bytes(
        ("661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
         "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
         '2000::"Great Performances" Cats (1998)::Musical\n'
         "3000::Ca::la:: (1999)::Drama\n").encode("latin-1"))
    inter = load_movielens("ml-1m", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    np.testing.assert_array_equal(inter.item_ids, [661, 1193, 3000])
    np.testing.assert_array_equal(inter.items, [1, 0, 1, 2])
    np.testing.assert_array_equal(inter.timestamps[:3], [978300760, 978302109, 978298413])
    assert inter.item_titles[1] == "One Flew Over the Cuckoo's Nest (1975)"
    assert inter.item_titles[2] == "Ca::la:: (1999)"  # a title holding the separator
    assert inter.feature_vocab["genres"] == ["Animation", "Children's", "Drama", "Musical"]
    np.testing.assert_array_equal(inter.item_features["year"], [1996, 1975, 1999])


# ---------------------------------------------------------------- cache


def test_cache_second_load_equals_first_and_tracks_changes(tmp_path):
    write_csv_variant(tmp_path / "data")
    kw = dict(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    first = load_movielens("ml-latest-small", **kw)
    files = list((tmp_path / "cache" / "parsed").glob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "cache" / "parsed").glob(".*"))
    second = load_movielens("ml-latest-small", **kw)
    assert_same(first, second)
    assert_same(first, load_movielens("ml-latest-small", use_cache=False, **kw))
    files[0].write_bytes(b"truncated")  # a corrupt cache is rebuilt
    assert_same(first, load_movielens("ml-latest-small", **kw))
    ratings = tmp_path / "data" / "ml-latest-small" / "ratings.csv"
    ratings.write_bytes(ratings.read_bytes() + b"7,10,1.0,105\r\n")
    changed = load_movielens("ml-latest-small", **kw)
    assert len(changed) == len(first) + 1
    assert len(list((tmp_path / "cache" / "parsed").glob("*.npz"))) == 2


def test_cache_roundtrip_without_titles_or_features(tmp_path):
    import dataclasses

    from jaxrec.data.datasets.synthetic import make_synthetic

    inter = dataclasses.replace(make_synthetic(num_users=5, num_items=7, interactions_per_user=3),
                                item_titles=None, item_features={}, feature_vocab={})
    cache.save(inter, tmp_path / "x.npz")
    back = cache.load(tmp_path / "x.npz")
    assert back.item_titles is None and back.item_features == {}
    np.testing.assert_array_equal(back.items, inter.items)


# ---------------------------------------------------------------- bad input


def test_unknown_variant_lists_valid_names(tmp_path):
    with pytest.raises(DataError) as err:
        load_movielens("ml-7m", data_dir=str(tmp_path))
    assert_one_line(err, "'ml-7m'", "ml-latest-small", "ml-100k", "ml-25m")


def test_missing_file_names_the_path(tmp_path):
    (tmp_path / "ml-latest-small").mkdir()
    with pytest.raises(DataError) as err:
        load_movielens("ml-latest-small", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"),
                       base_url="http://127.0.0.1:9")  # must never try to download
    assert_one_line(err, tmp_path / "ml-latest-small" / "ratings.csv")


def test_missing_data_dir_variant_folder(tmp_path):
    with pytest.raises(DataError) as err:
        load_movielens("ml-1m", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    assert_one_line(err, f"no folder {tmp_path / 'ml-1m'}", "jaxrec data download ml-1m")


def test_missing_column_names_file_and_column(tmp_path):
    folder = write_csv_variant(tmp_path, ratings=["userId,movieId,score,timestamp", "1,10,4,1"])
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-latest-small")
    assert_one_line(err, folder / "ratings.csv", "'rating'")


def test_non_numeric_rating_names_value_and_line(tmp_path):
    folder = write_csv_variant(tmp_path, ratings=[
        "userId,movieId,rating,timestamp", "1,10,4.0,1", "1,20,four,2", "2,10,x,3"])
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-latest-small")
    assert_one_line(err, folder / "ratings.csv", "'rating'", "'four'", "line 3")


def test_empty_rating_and_non_integer_id(tmp_path):
    folder = write_csv_variant(tmp_path / "a", ratings=[
        "userId,movieId,rating,timestamp", "1,10,,1"])
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-latest-small")
    assert_one_line(err, "ratings.csv", "'rating'", "empty value", "line 2")
    movies = ["movieId,title,genres", "1.5,X (1999),Drama"]
    folder = write_csv_variant(tmp_path / "b", movies=movies)
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-latest-small")
    assert_one_line(err, "movies.csv", "'movieId'", "'1.5'", "line 2")


def test_bad_dat_lines(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::five::978302109\n")
    (folder / "movies.dat").write_text("1193::X (1975)::Drama\n")
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-1m")
    assert_one_line(err, folder / "ratings.dat", "'rating'", "'five'", "line 2")
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3\n")
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-1m")
    assert_one_line(err, "ratings.dat", "'timestamp'", "empty value", "line 2")


def test_header_only_ratings_file(tmp_path):
    folder = write_csv_variant(tmp_path, ratings=["userId,movieId,rating,timestamp"])
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-latest-small")
    assert_one_line(err, folder / "ratings.csv", "no rating rows")


def test_wrong_field_count_in_u_data(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t2\t3\t4\n1\t2\t3\t4\t5\n")
    (folder / "u.item").write_text("")
    with pytest.raises(DataError) as err:
        parse_movielens(folder, "ml-100k")
    assert_one_line(err, folder / "u.data", "line 2")
