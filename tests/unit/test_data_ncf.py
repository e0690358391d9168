"""NCF's data files (He et al. 2017): parsing, the predefined split, the fixed test
negatives, and one-line errors for malformed lines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jaxrec.config import EvalConfig, SplitConfig
from jaxrec.data.datasets.ncf import load_ncf, ncf_files
from jaxrec.data.interactions import DataError
from jaxrec.data.pipeline import load_and_split
from jaxrec.data.splits import split

# user, item, rating, timestamp; ids 0-based as in NCF's files. User 2 has no test line.
TRAIN = [(0, 0, 5, 100), (0, 3, 4, 105), (0, 7, 3, 101), (1, 0, 2, 200), (1, 1, 5, 205),
         (1, 2, 4, 201), (2, 4, 1, 300), (3, 5, 4, 400), (3, 6, 3, 401)]
TEST = [(0, 5, 4, 110), (1, 6, 3, 210), (3, 1, 5, 410)]
NUM_ITEMS = 8


def write_ncf(root: Path, *, train=TRAIN, test=TEST, negatives=None, dataset="ml-1m",
              num_negatives=3) -> Path:
    """NCF's three files for ``dataset`` under ``root/ncf`` in their exact format."""
    folder = root / "ncf"
    folder.mkdir(parents=True, exist_ok=True)

    def lines(rows):
        return "".join("\t".join(str(v) for v in row) + "\n" for row in rows)

    (folder / f"{dataset}.train.rating").write_text(lines(train))
    (folder / f"{dataset}.test.rating").write_text(lines(test))
    if negatives is None:
        seen = {}
        for u, i, *_ in list(train) + list(test):
            seen.setdefault(u, set()).add(i)
        negatives = {u: [i for i in range(NUM_ITEMS) if i not in seen[u]][:num_negatives]
                     for u, *_ in test}
    (folder / f"{dataset}.test.negative").write_text("".join(
        f"({u},{i})\t" + "\t".join(map(str, negatives[u])) + "\n" for u, i, *_ in test))
    return folder


def pairs(inter) -> set[tuple[int, int]]:
    return set(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist(),
                   strict=True))


def test_rows_ids_and_parts(tmp_path):
    write_ncf(tmp_path)
    inter = load_ncf("ml-1m", data_dir=str(tmp_path))
    assert inter.name == "ncf-ml-1m" and len(inter) == len(TRAIN) + len(TEST)
    np.testing.assert_array_equal(inter.user_ids, [0, 1, 2, 3])
    np.testing.assert_array_equal(inter.item_ids, np.arange(NUM_ITEMS))
    assert inter.users.dtype == np.int32 and inter.timestamps.dtype == np.int64
    rows = list(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist(),
                    inter.ratings.tolist(), inter.timestamps.tolist(), strict=True))
    assert rows == [tuple(float(v) if k == 2 else v for k, v in enumerate(r))
                    for r in TRAIN + TEST]
    np.testing.assert_array_equal(inter.parts, [0] * len(TRAIN) + [2] * len(TEST))
    assert inter.universe.startswith("union of the train and test files")  # -> results.json
    # select / concat carry the parts along
    assert inter.select(inter.parts == 2).parts.tolist() == [2, 2, 2]
    both = inter.select(np.arange(2)).concat(inter.select(np.arange(9, 12)))
    assert both.parts.tolist() == [0, 0, 2, 2, 2]


def test_predefined_split_keeps_the_files(tmp_path):
    write_ncf(tmp_path)
    inter = load_ncf("ml-1m", data_dir=str(tmp_path))
    train, valid, test = split(inter, SplitConfig(method="predefined", test=0.0))
    assert valid is None
    assert pairs(train) == {(u, i) for u, i, *_ in TRAIN}
    assert pairs(test) == {(u, i) for u, i, *_ in TEST}


def test_predefined_split_validation_is_each_users_latest_training_row(tmp_path):
    write_ncf(tmp_path)
    ds = load_and_split(load_ncf("ml-1m", data_dir=str(tmp_path)), {"implicit": True},
                        {"method": "predefined", "valid": 0.1})
    # latest train row per user with >= 2 train rows: u0 (3, t105), u1 (1, t205), u3 (6, t401);
    # user 2 has a single train row and keeps it
    assert pairs(ds.valid) == {(0, 3), (1, 1), (3, 6)}
    assert pairs(ds.test) == {(u, i) for u, i, *_ in TEST}
    assert pairs(ds.train) == {(u, i) for u, i, *_ in TRAIN} - pairs(ds.valid)
    assert set(ds.train.ratings.tolist()) == {1.0}


def test_predefined_shipped_validation_rows_are_train_without_valid(tmp_path):
    write_ncf(tmp_path)
    inter = load_ncf("ml-1m", data_dir=str(tmp_path))
    parts = inter.parts.copy()
    parts[0] = 1
    shipped = dataclasses.replace(inter, parts=parts)
    train, valid, _ = split(shipped, SplitConfig(method="predefined"))
    assert valid is None and len(train) == len(TRAIN)
    train, valid, _ = split(shipped, SplitConfig(method="predefined", valid=0.1))
    assert pairs(valid) == {(0, 0)} and len(train) == len(TRAIN) - 1  # shipped ones, no carving


def test_predefined_split_errors(tmp_path):
    write_ncf(tmp_path)
    inter = load_ncf("ml-1m", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="ships its split") as err:
        split(dataclasses.replace(inter, parts=None), SplitConfig(method="predefined"))
    assert "\n" not in str(err.value)
    parts = inter.parts.copy()
    parts[4] = 7
    with pytest.raises(DataError, match="predefined part 7 of row 4"):
        split(dataclasses.replace(inter, parts=parts), SplitConfig(method="predefined"))
    with pytest.raises(DataError, match="'parts' has 2 rows"):
        dataclasses.replace(inter, parts=np.zeros(2, np.int8))


def test_test_negatives_file_becomes_the_sampled_candidates(tmp_path):
    """eval.negatives_file reads the loader's raw ids: the saved negatives are the file's."""
    import pyarrow.parquet as pq

    from jaxrec.metrics.protocols import build_evaluators

    folder = write_ncf(tmp_path)
    ds = load_and_split(load_ncf("ml-1m", data_dir=str(tmp_path)), {"implicit": True},
                        {"method": "predefined"})
    eval_cfg = EvalConfig(protocol="sampled", num_negatives=3, ks=[2], metrics=["hit", "ndcg"],
                          rating_metrics=False, negatives_file=str(folder / "ml-1m.test.negative"))
    _, (test_eval,) = build_evaluators(ds, eval_cfg, seed=0, run_dir=tmp_path / "run")
    saved = pq.read_table(tmp_path / "run" / "negatives_test.parquet").to_pydict()
    expected = {}
    for line in (folder / "ml-1m.test.negative").read_text().splitlines():
        head, *negs = line.split("\t")
        expected[int(head.strip("()").split(",")[0])] = [int(x) for x in negs]
    assert dict(zip(saved["user_id"], saved["item_ids"], strict=True)) == expected
    np.testing.assert_array_equal(test_eval.users, [0, 1, 3])


def test_negatives_file_pairing_a_non_test_item_is_rejected(tmp_path):
    from jaxrec.metrics.sampled import evaluated_users, load_negatives

    folder = write_ncf(tmp_path)
    text = (folder / "ml-1m.test.negative").read_text().replace("(1,6)", "(1,2)")
    (folder / "ml-1m.test.negative").write_text(text)
    ds = load_and_split(load_ncf("ml-1m", data_dir=str(tmp_path)), {"implicit": True},
                        {"method": "predefined"})
    users, relevant = evaluated_users(ds.test, [ds.train])
    with pytest.raises(DataError, match=r"ml-1m.test.negative:2: item '2' is not a held-out"):
        load_negatives(folder / "ml-1m.test.negative", ds.full, users, relevant, 3)


@pytest.mark.parametrize(("line", "fragments"), [
    ("0\t1\t5\t100\t7", ["ml-1m.train.rating", "Expected 4 fields in line 3, saw 5"]),
    ("u7\t1\t5\t100", ["line 3", "'user'", "non-negative integer id", "'u7'"]),
    ("0\t-1\t5\t100", ["line 3", "'item'", "'-1'"]),
    ("0\t1.5\t5\t100", ["line 3", "'item'", "'1.5'"]),
    ("0\t1\tfive\t100", ["line 3", "'rating'", "a number", "'five'"]),
    ("0\t1\t5", ["line 3", "'timestamp'", "got nothing"]),
    ("0\t1\t5\t1e", ["line 3", "'timestamp'", "'1e'"]),
])
def test_malformed_line_is_one_line_error(tmp_path, line, fragments):
    folder = write_ncf(tmp_path)
    path = folder / "ml-1m.train.rating"
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:2] + [line] + rows[2:]) + "\n")
    with pytest.raises(DataError) as err:
        load_ncf("ml-1m", data_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    folder = write_ncf(tmp_path)
    path = folder / "ml-1m.test.rating"
    path.write_text("0\t5\t4\t110\n\n1\tsix\t3\t210\n")
    with pytest.raises(DataError, match=r"line 3, column 'item'"):
        load_ncf("ml-1m", data_dir=str(tmp_path))


def test_missing_file_data_dir_and_overlap_errors(tmp_path):
    with pytest.raises(DataError, match="data_dir is not set") as err:
        load_ncf("ml-1m", data_dir=None)
    assert "neural_collaborative_filtering" in str(err.value)
    with pytest.raises(DataError, match=r"missing file .*ncf/ml-1m.train.rating"):
        load_ncf("ml-1m", data_dir=str(tmp_path))
    write_ncf(tmp_path, test=TEST + [(2, 4, 3, 999)])
    with pytest.raises(DataError, match=r"ml-1m.test.rating: line 4: pair \(user 2, item 4\) "
                                        r"is also in ml-1m.train.rating"):
        load_ncf("ml-1m", data_dir=str(tmp_path))
    assert ncf_files("pinterest-20", str(tmp_path))["negative"].name == (
        "pinterest-20.test.negative")


def test_data_config_builds_the_split(tmp_path):
    """configs/data/ncf-ml-1m.yaml: paths.data_dir/ncf, predefined split, implicit."""
    from jaxrec.data.pipeline import build_dataset
    from tests.helpers import compose_train

    write_ncf(tmp_path)
    cfg = compose_train(["data=ncf-ml-1m", f"paths.data_dir={tmp_path}"], tmp_path / "run")
    ds = build_dataset(cfg.data)
    assert pairs(ds.test) == {(u, i) for u, i, *_ in TEST}
    assert pairs(ds.valid) == {(0, 3), (1, 1), (3, 6)} and ds.info.implicit


def test_preset_negatives_file_interpolates_the_data_dir(tmp_path):
    """eval.negatives_file: ${paths.data_dir}/ncf/... resolves in the typed eval section."""
    from jaxrec.config import typed
    from tests.helpers import compose_train

    cfg = compose_train(["experiment=paper_ncf_neumf_ml-1m", f"paths.data_dir={tmp_path}"],
                        tmp_path / "run")
    eval_cfg = typed(cfg, "eval", EvalConfig)
    assert eval_cfg.negatives_file == f"{tmp_path}/ncf/ml-1m.test.negative"
    assert (eval_cfg.protocol, eval_cfg.num_negatives, list(eval_cfg.ks)) == ("sampled", 99, [10])
