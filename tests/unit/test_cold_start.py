"""Cold-start splits (no leakage of held-out items / users into train) and evaluation slices."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.config import EvalConfig, SplitConfig
from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.pipeline import load_and_split
from jaxrec.data.splits import split
from jaxrec.metrics.slices import SliceEvaluator, UnableEvaluator, add_slices, slice_rows
from jaxrec.models.base import ModelContext
from jaxrec.models.mf import MF
from jaxrec.models.popularity import Popularity


@pytest.fixture(scope="module")
def inter():
    return make_synthetic(num_users=40, num_items=60, interactions_per_user=12, seed=1)


@pytest.mark.parametrize("method", ["cold_item", "cold_user"])
def test_held_out_entities_never_reach_train(inter, method):
    cfg = SplitConfig(method=method, test=0.2, valid=0.1, seed=3)
    train, valid, test = split(inter, cfg)
    side = "items" if method == "cold_item" else "users"
    held_test = set(getattr(test, side).tolist())
    held_valid = set(getattr(valid, side).tolist())
    seen = set(getattr(train, side).tolist())
    assert not held_test & seen and not held_valid & seen and not held_test & held_valid
    active = len(set(getattr(inter, side).tolist()))
    assert len(held_test) == int(np.floor(0.2 * active + 0.5))
    # every row of a held-out entity is in its part; the parts cover the table
    assert len(train) + len(valid) + len(test) == len(inter)
    assert (np.isin(getattr(inter, side), list(held_test)).sum()) == len(test)
    again = split(inter, cfg)[2]  # seeded
    np.testing.assert_array_equal(again.items, test.items)


def _dataset(inter):
    return load_and_split(inter, None, {"method": "cold_item", "test": 0.25, "valid": 0.2,
                                        "seed": 0})


def test_cold_item_slice_ranks_cold_items_only(inter):
    ds = _dataset(inter)
    (name, rows, cand), = slice_rows("cold_item", ds.test, ds.train)
    assert name == "cold_item" and rows.all()  # every test row is on a cold item
    warm = np.bincount(ds.train.items, minlength=ds.info.num_items) > 0
    np.testing.assert_array_equal(cand, ~warm)
    ev = SliceEvaluator("test/cold_item", ds.test, [ds.train, ds.valid], candidates_N=cand,
                        ks=[5], metrics=["recall"])

    def warm_first(params, users_U):  # loves warm items: they must not count
        return jnp.broadcast_to(jnp.asarray(warm, jnp.float32) * 100.0, (users_U.shape[0],
                                                                         len(warm)))

    out = ev.run(warm_first, None)
    assert set(out) == {"test/cold_item/recall@5"} and 0.0 <= out["test/cold_item/recall@5"]
    relevant_UxN = np.zeros((ds.info.num_users, ds.info.num_items), np.float32)
    relevant_UxN[ds.test.users, ds.test.items] = 1.0

    def oracle(params, users_U):
        return params[users_U]

    ev_ndcg = SliceEvaluator("test/cold_item", ds.test, [ds.train, ds.valid], candidates_N=cand,
                             ks=[60], metrics=["recall"])
    out = ev_ndcg.run(oracle, jnp.asarray(relevant_UxN))
    assert out["test/cold_item/recall@60"] == pytest.approx(1.0)


def test_models_without_features_are_reported_unable(inter):
    ds = _dataset(inter)
    eval_cfg = EvalConfig(ks=[10], metrics=["ndcg"], slices=["activity"])
    mf = MF(ModelContext(ds.info), dim=4, rngs=nnx.Rngs(0))
    (valid, test), notes = add_slices(([], []), ds, eval_cfg, model=mf)
    assert len(notes) == 1 and "MF cannot score cold items" in notes[0]
    unable = [ev for ev in test if isinstance(ev, UnableEvaluator)]
    assert unable[0].run(None, None) == {"test/cold_item/ndcg@10": pytest.approx(float("nan"),
                                                                                 nan_ok=True)}
    assert any(k.startswith("test/activity_") for ev in test for k in ev.keys)
    with pytest.raises(ValueError, match="MF cannot score cold items"):
        add_slices(([], []), ds, eval_cfg, model=mf, monitor="valid/cold_item/ndcg@10")
    pop = Popularity(ModelContext(ds.info), rngs=nnx.Rngs(0))
    (_, test), notes = add_slices(([], []), ds, eval_cfg, model=pop)
    assert not notes and isinstance(test[0], SliceEvaluator)


def test_unknown_slice_is_an_error(inter):
    with pytest.raises(ValueError, match="eval.slices"):
        add_slices(([], []), _dataset(inter), EvalConfig(slices=["colder"]))
