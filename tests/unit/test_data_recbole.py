"""RecBole atomic files: .inter headers, the benchmark_filename triple, .item features."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrec.config import SplitConfig
from jaxrec.data.datasets.recbole import load_recbole
from jaxrec.data.interactions import DataError
from jaxrec.data.pipeline import load_and_split

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def inter_file(path, rows, header=HEADER):
    path.write_text(header + "".join("\t".join(map(str, r)) + "\n" for r in rows))


def test_single_inter_file_and_item_features(tmp_path):
    inter_file(tmp_path / "ml.inter", [(196, 242, 3, 881250949), (186, 302, 3, 891717742),
                                       (196, 302, 4.5, 878887116.0)])
    (tmp_path / "ml.item").write_text(
        'item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n'
        '242\tKolya "the"\t1996\tComedy\n302\tL.A. Confidential\t1997\tCrime Film-Noir\n'
        '999\tUnrated\t1990\tDrama\n')
    inter = load_recbole(str(tmp_path), "ml", item_fields=["class", "release_year"])
    assert inter.user_ids.tolist() == [186, 196] and inter.item_ids.tolist() == [242, 302]
    assert inter.ratings.tolist() == [3.0, 3.0, 4.5]
    assert inter.timestamps.tolist() == [881250949, 891717742, 878887116]
    assert inter.parts is None and inter.feature_vocab["class"] == ["Comedy", "Crime",
                                                                    "Drama", "Film-Noir"]
    np.testing.assert_array_equal(inter.item_features["class"], [[1, 0, 0, 0], [0, 1, 0, 1]])
    assert inter.item_features["release_year"].shape == (2, 3)


def test_benchmark_triple_keeps_split(tmp_path):
    header = "session_id:token\titem_id:token\ttimestamp:float\n"
    inter_file(tmp_path / "b.train.inter", [("a", "x", 1), ("a", "y", 2), ("b", "x", 1)], header)
    inter_file(tmp_path / "b.valid.inter", [("a", "z", 3)], header)
    inter_file(tmp_path / "b.test.inter", [("b", "w", 4)], header)
    inter = load_recbole(str(tmp_path), "b", user_field="session_id", cache_dir=None)
    assert inter.parts.tolist() == [0, 0, 0, 1, 2]
    assert inter.item_ids.tolist() == ["w", "x", "y", "z"]  # w only in test: still ranked
    assert inter.ratings.tolist() == [1.0] * 5
    ds = load_and_split(inter, {"implicit": True}, SplitConfig(method="predefined", valid=0.1))
    assert len(ds.train) == 3 and len(ds.valid) == 1 and len(ds.test) == 1
    assert ds.info.num_items == 4


def test_cached_reload(tmp_path):
    inter_file(tmp_path / "c.train.inter", [(1, 2, 5, 10)])
    inter_file(tmp_path / "c.test.inter", [(1, 3, 4, 11)])
    kw = dict(cache_dir=str(tmp_path / "cache"))
    first, again = load_recbole(str(tmp_path), "c", **kw), load_recbole(str(tmp_path), "c", **kw)
    np.testing.assert_array_equal(first.parts, again.parts)
    assert again.item_ids.tolist() == [2, 3]


@pytest.mark.parametrize(("line", "want"), [
    ("7\t8\tfive\t1\n", "line 3, column 'rating:float': 'five'"),
    ("7\t8\t4\n", "line 3 has 3 fields, expected 4"),
    ("7\t8\t4\tlater\n", "line 3, column 'timestamp:float': 'later'")])
def test_bad_lines(tmp_path, line, want):
    (tmp_path / "d.inter").write_text(HEADER + "1\t2\t3\t4\n" + line)
    with pytest.raises(DataError, match=want) as e:
        load_recbole(str(tmp_path), "d")
    assert "d.inter" in str(e.value) and "\n" not in str(e.value)


def test_missing_field_and_file(tmp_path):
    inter_file(tmp_path / "e.inter", [(1, 2, 3, 4)], "uid:token\titem_id:token\tr:float\tt:float\n")
    with pytest.raises(DataError, match="missing field 'user_id'"):
        load_recbole(str(tmp_path), "e")
    with pytest.raises(DataError, match="missing file .*nope.inter"):
        load_recbole(str(tmp_path), "nope")
