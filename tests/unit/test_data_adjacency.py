"""LightGCN / NGCF adjacency-list split files: parsing, the universe, parts, errors."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrec.config import SplitConfig
from jaxrec.data.datasets.adjacency import load_adjacency
from jaxrec.data.interactions import DataError
from jaxrec.data.pipeline import load_and_split

# As in LightGCN-PyTorch's data/gowalla: a trailing space, a user without items.
TRAIN = "0 0 1 2 \n1 2 3\n2\n3 1\n"
TEST = "0 3\n1 4\n3 0 5\n"


def write(tmp_path, train=TRAIN, test=TEST, valid=None):
    (tmp_path / "train.txt").write_text(train)
    if test is not None:
        (tmp_path / "test.txt").write_text(test)
    if valid is not None:
        (tmp_path / "valid.txt").write_text(valid)
    return tmp_path


def pairs(inter, part):
    rows = inter.parts == part
    return sorted(zip(inter.user_ids[inter.users[rows]].tolist(),
                      inter.item_ids[inter.items[rows]].tolist(), strict=True))


def test_rows_universe_and_parts(tmp_path):
    inter = load_adjacency(str(write(tmp_path)), use_cache=False)
    assert inter.name == tmp_path.name
    assert pairs(inter, 0) == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 3), (3, 1)]
    assert pairs(inter, 2) == [(0, 3), (1, 4), (3, 0), (3, 5)]
    assert inter.user_ids.tolist() == [0, 1, 2, 3]  # user 2 has an empty line
    assert inter.item_ids.tolist() == [0, 1, 2, 3, 4, 5]  # 4 and 5 only in test.txt
    assert inter.ratings.tolist() == [1.0] * 10 and not inter.timestamps.any()


def test_predefined_split_ranks_test_only_items(tmp_path):
    ds = load_and_split(load_adjacency(str(write(tmp_path)), use_cache=False),
                        {"implicit": True}, SplitConfig(method="predefined", valid=0.0))
    assert ds.info.num_items == 6 and len(ds.train) == 6 and len(ds.test) == 4
    assert set(ds.test.item_ids[ds.test.items].tolist()) == {0, 3, 4, 5}


def test_valid_file_and_cache(tmp_path):
    write(tmp_path, valid="0 5\n")
    cache = tmp_path / "cache"
    first = load_adjacency(str(tmp_path), cache_dir=str(cache))
    again = load_adjacency(str(tmp_path), cache_dir=str(cache))
    assert pairs(first, 1) == [(0, 5)]
    np.testing.assert_array_equal(first.parts, again.parts)
    np.testing.assert_array_equal(first.item_ids, again.item_ids)


@pytest.mark.parametrize(("train", "want"), [
    ("0 1 2\n1 x\n", "line 2: 'x'"), ("0 1\n1 -2\n", "line 2: '-2'"),
    ("0 1\n0 2\n", "line 2: user 0 is listed twice")])
def test_bad_lines(tmp_path, train, want):
    write(tmp_path, train=train)
    with pytest.raises(DataError, match=want) as e:
        load_adjacency(str(tmp_path), use_cache=False)
    assert "train.txt" in str(e.value) and "\n" not in str(e.value)


def test_missing_train(tmp_path):
    (tmp_path / "test.txt").write_text(TEST)
    with pytest.raises(DataError, match="missing file .*train.txt"):
        load_adjacency(str(tmp_path))


@pytest.mark.parametrize(("mask", "hit_at_1"), [("train_valid", 1.0), ("train", 0.0)])
def test_eval_mask_chooses_what_the_test_ranking_masks(tmp_path, mask, hit_at_1):
    """User 0: train item 0, valid item 1, test item 2; the scores put 1 first, then 2.
    eval.mask=train_valid masks item 1 (test item 2 ranks first); eval.mask=train ranks
    item 1 above it, as LightGCN-style papers' code does."""
    import jax.numpy as jnp

    from jaxrec.config import EvalConfig
    from jaxrec.metrics.protocols import build_evaluators, describe

    write(tmp_path, train="0 0\n1 1 2 3\n", valid="0 1\n", test="0 2\n")
    ds = load_and_split(load_adjacency(str(tmp_path), use_cache=False), {"implicit": True},
                        SplitConfig(method="predefined", valid=0.1))
    (_, _, v_excl), (_, _, t_excl) = ds.eval_parts(mask)
    assert v_excl == (ds.train,)
    assert t_excl == ((ds.train, ds.valid) if mask == "train_valid" else (ds.train,))
    cfg = EvalConfig(ks=[1], metrics=["hit"], mask=mask)
    _, [test_eval] = build_evaluators(ds, cfg, seed=0)
    scores = jnp.asarray(np.tile([0.0, 3.0, 2.0, 1.0], (ds.info.num_users, 1)), jnp.float32)
    assert test_eval.run(lambda s, users: s[users], scores) == {"test/hit@1": hit_at_1}
    assert ("valid" in describe(cfg)["candidates"]) == (mask == "train_valid")


def test_eval_mask_rejects_unknown_values(tmp_path):
    from jaxrec.config import EvalConfig
    from jaxrec.metrics.protocols import build_evaluators

    ds = load_and_split(load_adjacency(str(write(tmp_path)), use_cache=False),
                        {"implicit": True}, SplitConfig(method="predefined"))
    with pytest.raises(ValueError, match="eval.mask='valid' is not one of train_valid, train"):
        build_evaluators(ds, EvalConfig(mask="valid"), seed=0)
