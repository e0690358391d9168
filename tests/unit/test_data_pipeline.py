"""The config-driven pipeline, the data configs, the synthetic loader and summaries."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from jaxrec.config import DataConfig, PreprocessConfig, SplitConfig
from jaxrec.data import DataError, Dataset, build_dataset, load_and_split, make_synthetic, summarize

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
DATA_CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def compose(name, *, data_dir, cache_dir, seed=0):
    """The ``data`` node as train.yaml composes it (with the root keys it interpolates)."""
    root = OmegaConf.create({"seed": seed, "paths": {"data_dir": data_dir,
                                                     "cache_dir": str(cache_dir)}})
    root.data = OmegaConf.merge(OmegaConf.structured(DataConfig),
                                OmegaConf.load(CONFIG_DIR / f"{name}.yaml"))
    return root.data


def test_every_data_config_matches_the_schema():
    assert {"ml-latest-small", "ml-latest-small-implicit", "ml-100k", "ml-1m", "ml-20m",
            "ml-25m", "synthetic"} <= set(DATA_CONFIGS)
    for name in DATA_CONFIGS:
        text = (CONFIG_DIR / f"{name}.yaml").read_text()
        assert text.startswith("#"), f"{name}.yaml should start with a comment"
        node = OmegaConf.merge(OmegaConf.structured(DataConfig), OmegaConf.load(
            CONFIG_DIR / f"{name}.yaml"))  # unknown keys or wrong types raise here
        assert node.dataset._target_.startswith("jaxrec.data.datasets.")
        assert OmegaConf.to_container(node.split)["seed"] == "${seed}"


@pytest.mark.parametrize("name", [n for n in DATA_CONFIGS if n.startswith("ml-")])
def test_movielens_configs_resolve_to_data_dir_without_downloading(name, tmp_path):
    data = compose(name, data_dir=str(tmp_path), cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=str(tmp_path / data.dataset.variant)):
        build_dataset(data)
    assert not (tmp_path / "cache").exists()


def test_synthetic_config_builds(tmp_path):
    ds = build_dataset(compose("synthetic", data_dir=None, cache_dir=tmp_path, seed=3))
    assert isinstance(ds, Dataset)
    assert ds.info.num_train == len(ds.train) and ds.info.name == "synthetic"
    assert len(ds.train) + len(ds.valid) + len(ds.test) == len(ds.full) == 6000
    assert ds.info.num_users == ds.full.num_users == ds.train.num_users == 200
    assert ds.info.num_items == ds.test.num_items == ds.full.num_items
    assert ds.info.rating_min == 1.0 and ds.info.rating_max == 5.0 and not ds.info.implicit
    np.testing.assert_allclose(ds.info.rating_mean, ds.train.ratings.mean(), rtol=1e-6)
    again = build_dataset(compose("synthetic", data_dir=None, cache_dir=tmp_path, seed=3))
    np.testing.assert_array_equal(ds.test.items, again.test.items)
    other = build_dataset(compose("synthetic", data_dir=None, cache_dir=tmp_path, seed=4))
    assert not np.array_equal(ds.test.items, other.test.items)


def test_real_configs_build(data_dir, tmp_path):
    ds = build_dataset(compose("ml-latest-small", data_dir=data_dir, cache_dir=tmp_path))
    assert (ds.info.num_users, ds.info.num_items) == (610, 9724)
    assert len(ds.test) == 20167 and len(ds.valid) == 4033 and ds.info.num_train == 76636
    assert ds.info.rating_min == 0.5 and ds.info.rating_max == 5.0
    imp = build_dataset(compose("ml-latest-small-implicit", data_dir=data_dir, cache_dir=tmp_path))
    assert imp.info.implicit and imp.info.rating_mean == 1.0 and set(imp.full.ratings) == {1.0}
    assert np.bincount(imp.train.users, minlength=610).min() >= 1
    assert len(imp.train) + len(imp.valid) + len(imp.test) == 100836


def test_seed_argument_is_only_a_fallback(tmp_path):
    data = compose("synthetic", data_dir=None, cache_dir=tmp_path, seed=5)
    a = build_dataset(data, seed=5)  # agreeing is fine
    with pytest.raises(DataError, match=r"seed=6.*split.seed=5"):
        build_dataset(data, seed=6)
    detached = OmegaConf.create(OmegaConf.to_container(data, resolve=False))  # ${seed} dangles
    with pytest.raises(DataError, match="split.seed"):
        build_dataset(detached)
    b = build_dataset(detached, seed=5)
    np.testing.assert_array_equal(a.test.items, b.test.items)


def test_build_dataset_rejects_bad_configs(tmp_path):
    data = compose("synthetic", data_dir=None, cache_dir=tmp_path)
    data.dataset._target_ = "numpy.arange"
    data.dataset = {"_target_": "numpy.arange", "stop": 3}
    with pytest.raises(DataError, match="expected Interactions"):
        build_dataset(data)
    with pytest.raises(DataError, match="data.dataset is missing"):
        build_dataset({"split": {"seed": 0}})
    inter = make_synthetic(num_users=10, num_items=20, interactions_per_user=5)
    with pytest.raises(DataError, match="unknown key 'treshold'"):
        load_and_split(inter, {"treshold": 3}, None)


def test_load_and_split_plain_python():
    inter = make_synthetic(num_users=40, num_items=60, interactions_per_user=10)
    ds = load_and_split(inter, PreprocessConfig(rating_threshold=4, implicit=True,
                                                min_user_interactions=2),
                        SplitConfig("leave_last", valid=0.0, seed=0))
    assert ds.valid is None and ds.info.implicit and ds.info.rating_mean == 1.0
    assert len(ds.test) == ds.full.num_users - (np.bincount(ds.full.users) == 1).sum()
    assert (ds.full.ratings == 1.0).all() and ds.full.num_items <= 60
    dict_cfg = load_and_split(inter, {"rating_threshold": 4, "implicit": True,
                                      "min_user_interactions": 2}, {"method": "leave_last"})
    np.testing.assert_array_equal(ds.test.items, dict_cfg.test.items)


def test_synthetic_is_deterministic_and_structured():
    a, b = make_synthetic(seed=1), make_synthetic(seed=1)
    for field in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.item_features["genres"], b.item_features["genres"])
    assert not np.array_equal(a.items, make_synthetic(seed=2).items)
    assert len(a) == 200 * 30 and a.num_items == 300 and a.name == "synthetic"
    assert a.users.dtype == np.int32 and a.ratings.dtype == np.float32
    assert a.timestamps.dtype == np.int64 and set(np.unique(a.ratings)) <= {1, 2, 3, 4, 5}
    assert a.item_titles[17] == "item 17" and len(a.feature_vocab["genres"]) == 10
    genres = a.item_features["genres"]
    assert genres.shape == (300, 10) and (genres.sum(1) >= 1).all()
    for u in range(5):  # each user's history is strictly increasing in time, no repeats
        mine = a.users == u
        assert (np.diff(a.timestamps[mine]) > 0).all()
        assert len(set(a.items[mine].tolist())) == 30
    # Items liked by the same users share genres more than chance: a planted signal.
    seen = np.zeros((200, 300))
    seen[a.users, a.items] = a.ratings
    co = np.corrcoef(seen.T)
    same = genres @ genres.T > 0
    np.fill_diagonal(same, False)
    off = ~np.eye(300, dtype=bool)
    assert np.nanmean(co[same]) > np.nanmean(co[off & ~same]) + 0.02
    with pytest.raises(DataError, match="interactions_per_user=400"):
        make_synthetic(num_items=300, interactions_per_user=400)


def test_summarize_mentions_the_essentials():
    inter = make_synthetic(num_users=20, num_items=30, interactions_per_user=5)
    text = summarize(inter)
    for fragment in ("synthetic", "users         20", "items         30", "interactions  100",
                     "density", "16.6667%", "timestamps    2017-07-14", "genres float32[30x10]",
                     "item 0"):
        assert fragment in text, (fragment, text)
    assert len(text.splitlines()) >= 10  # includes the per-value rating histogram


def test_summarize_real_data(data_dir, tmp_path):
    from jaxrec.data import load_movielens

    text = summarize(load_movielens(data_dir=data_dir, cache_dir=str(tmp_path)))
    for fragment in ("610", "9,724", "100,836", "1996-03-29 .. 2018-09-24", "tags float32"):
        assert fragment in text, fragment


def test_dataset_carries_its_split_and_eval_parts():
    inter = make_synthetic(num_users=40, num_items=60, interactions_per_user=10)
    ds = load_and_split(inter, None, {"method": "random", "test": 0.2, "valid": 0.25, "seed": 3})
    assert ds.split == SplitConfig("random", test=0.2, valid=0.25, seed=3)
    assert ds.has_valid and ds.fold_in == {} and ds.features is None
    (v_name, v_target, v_excl), (t_name, t_target, t_excl) = ds.eval_parts()
    assert (v_name, t_name) == ("valid", "test")
    assert v_target is ds.valid and t_target is ds.test
    assert v_excl == (ds.train,) and len(t_excl) == 2
    assert t_excl[0] is ds.train and t_excl[1] is ds.valid
    no_valid = load_and_split(inter, None, {"method": "random", "test": 0.2, "seed": 3})
    assert not no_valid.has_valid and no_valid.valid is None
    (part,) = no_valid.eval_parts()
    assert part.name == "test" and part.exclude == (no_valid.train,)


def test_dataset_builds_its_features_once():
    inter = make_synthetic(num_users=30, num_items=40, interactions_per_user=8, seed=2)
    ds = load_and_split(inter, None, {"method": "cold_item", "test": 0.25, "seed": 0},
                        features_spec={"item": ["genres"]})
    assert ds.features is not None and ds.features.item is not None
    warm = np.bincount(ds.train.items, minlength=ds.info.num_items) > 0
    np.testing.assert_array_equal(ds.features.item_warm, warm)


def test_split_config_is_parsed_in_one_place(tmp_path):
    from jaxrec.data import split_config

    data = compose("synthetic", data_dir=None, cache_dir=tmp_path, seed=3)
    assert split_config(data) == build_dataset(data).split
    assert split_config(data).seed == 3 and split_config(None) is None
    assert split_config({"dataset": {}}) is None
