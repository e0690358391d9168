"""DeepFM and DCN-V2: forward passes against numpy, score_all vs pairs, cold-item masking,
learning planted genre preferences, and end-to-end ``jaxrec train`` with features."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.data.features import FeatureBag, Features
from jaxrec.losses import BCE
from jaxrec.models.base import ModelContext
from jaxrec.models.dcn_v2 import DCNv2
from jaxrec.models.deepfm import DeepFM, fm_second_order
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import device_data, run_train

U, N, G = 9, 14, 3  # users, items, genres
INFO = DataInfo(num_users=U, num_items=N, num_train=60, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")
GENRE = np.arange(N) % G  # item i's main genre (planted preference: user u likes u % G)
COLD = np.array([11, 13])  # items without training interactions (one genre each: 2, 1)


def _bag(rows, fields):
    """A FeatureBag from per-row lists of per-field [(token, weight)] lists."""
    vocab, ids, weights, slots, start = ["<pad>"], [], [], [], 0
    widths = [max(len(r[f]) for r in rows) for f in range(len(fields))]
    for w in widths:
        slots.append((start, start + w))
        start += w
    ids, weights = np.zeros((len(rows), start), np.int32), np.zeros((len(rows), start), np.float32)
    for r, row in enumerate(rows):
        for f, (s, _) in enumerate(slots):
            for j, (tok, wt) in enumerate(row[f]):
                key = f"{fields[f]}={tok}"
                if key not in vocab:
                    vocab.append(key)
                ids[r, s + j], weights[r, s + j] = vocab.index(key), wt
    return FeatureBag(ids, weights, tuple(fields), tuple(slots), tuple(vocab))


def _features(user_feats=True):
    """Items: genres (1-2 values, mean weights) and a decade; users: one age bucket, and a
    history profile over the item vocabulary (random ids and weights)."""
    items = []
    for i in range(N):
        genres = [GENRE[i]] + ([(GENRE[i] + 1) % G] if i % 4 == 0 else [])
        items.append([[(g, 1.0 / len(genres)) for g in genres], [(1990 + 10 * (i % 2), 1.0)]])
    users = [[[(u % 2, 1.0)]] for u in range(U)]
    warm = np.ones(N, bool)
    warm[COLD] = False
    item_bag = _bag(items, ["genres", "decade"])
    rng = np.random.default_rng(7)
    history = FeatureBag(rng.integers(1, item_bag.vocab_size, (U, 3)).astype(np.int32),
                         rng.random((U, 3)).astype(np.float32), ("history",), ((0, 3),),
                         item_bag.vocab)
    return Features(item=item_bag, user=_bag(users, ["age"]) if user_feats else None,
                    item_warm=warm, user_warm=np.ones(U, bool), history=history)


def _np_ids(ids, rows):
    """Masked id vectors and weights in numpy: ``(m E[rows], m w[rows])``."""
    m = np.asarray(ids.warm_R[...])[rows]
    return m[:, None] * np.asarray(ids.emb_RxD[...])[rows], m * np.asarray(ids.w_R[...])[rows]


def _np_bag(bag_emb, rows):
    """Per-field pooled vectors and the first-order weight of a bag, in numpy."""
    ids, w = np.asarray(bag_emb.ids_RxL[...])[rows], np.asarray(bag_emb.weights_RxL[...])[rows]
    e = np.asarray(bag_emb.emb_VxD[...])[ids] * w[..., None]
    return [e[:, s:t].sum(1) for s, t in bag_emb.slots], (np.asarray(
        bag_emb.bias_V[...])[ids] * w).sum(1)


def _np_fields(model, users, items):
    """``([B, F, D] field vectors, [B] first-order sum)`` straight from the tables."""
    f = model.fields
    (user_v, user_w), (item_v, item_w) = _np_ids(f.user_id, users), _np_ids(f.item_id, items)
    vecs, first = [user_v], user_w + item_w
    if f.user_feats is not None:
        fields, w = _np_bag(f.user_feats, users)
        vecs, first = vecs + fields, first + w
    if f.history is not None:  # pooled with the item feature table, no first-order weight
        vecs += _np_bag(f.history, users)[0]
    fields, w = _np_bag(f.item_feats, items)
    return np.stack(vecs + [item_v] + fields, axis=1), first + w


def _dense(layer, x):
    return x @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...])


def _perturb(params, seed=0):
    """Random values for every parameter (zero-initialised biases would hide bugs)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.asarray(0.3 * rng.normal(size=x.shape), x.dtype), params)


def _randomised(model):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return nnx.merge(graphdef, _perturb(params), rest)


USERS = np.array([0, 3, 8, 5, 2, 2])
ITEMS = np.array([1, 13, 7, 11, 0, 4])  # 13 and 11 are cold
BUILD = {  # randomised models, built once; user features on (user id + age fields)
    "deepfm": lambda: DeepFM(ModelContext(INFO, features=_features()), dim=4, hidden=[6, 5],
                             history=True, block=4, rngs=nnx.Rngs(0)),
    "dcn_v2": lambda: DCNv2(ModelContext(INFO, features=_features()), dim=3, cross_layers=2, rank=2,
                            hidden=[5], structure="parallel", block=4, rngs=nnx.Rngs(0)),
    "dcn_v2_stacked": lambda: DCNv2(ModelContext(INFO, features=_features()), dim=3, cross_layers=2,
                                    hidden=[5], structure="stacked", block=4, rngs=nnx.Rngs(0)),
}


@pytest.fixture(scope="module")
def built():
    return {name: _randomised(make()) for name, make in BUILD.items()}


@functools.lru_cache(maxsize=8)
def _jitted(graphdef):
    """Jitted ``(state, users, items) -> scores`` and ``(state, users_U) -> scores_UxN``
    (one compile per model and shape; eager op-by-op dispatch is slower here)."""
    call = jax.jit(lambda state, u, i: nnx.merge(graphdef, state)(u, i))
    score_all = jax.jit(lambda state, u: nnx.merge(graphdef, state).score_all(u))
    return call, score_all


def _scores(model, users, items=None):
    graphdef, state = nnx.split(model)
    call, score_all = _jitted(graphdef)
    if items is None:
        return np.asarray(score_all(state, jnp.asarray(users)))
    return np.asarray(call(state, jnp.asarray(users), jnp.asarray(items)))


def test_fm_second_order_is_the_pairwise_sum_over_fields():
    v = np.random.default_rng(0).normal(size=(3, 5, 4)).astype(np.float32)
    brute = np.array([sum(v[b, f] @ v[b, g] for f in range(5) for g in range(f + 1, 5))
                      for b in range(3)])
    np.testing.assert_allclose(fm_second_order(jnp.asarray(v)), brute, rtol=1e-5, atol=1e-5)


def test_deepfm_matches_numpy_forward(built):
    model = built["deepfm"]
    v, first_order = _np_fields(model, USERS, ITEMS)
    assert v.shape == (6, 6, 4)  # user id, age, history, item id, genres, decade
    fm = np.array([sum(v[b, f] @ v[b, g] for f in range(6) for g in range(f + 1, 6))
                   for b in range(6)])
    h = _dense(model.deep_in, v.reshape(6, -1))
    for layer in model.deep:
        h = _dense(layer, np.maximum(h, 0))
    want = float(model.bias[...]) + first_order + fm + h[:, 0]
    np.testing.assert_allclose(_scores(model, USERS, ITEMS), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["dcn_v2", "dcn_v2_stacked"])
def test_dcn_v2_cross_layers_and_forward_match_numpy(built, name):
    """Cross layers ``x_{l+1} = x0 * (W x_l + b) + x_l`` (low rank: ``W = U V^T``), then the
    ReLU MLP beside (parallel) or on top of (stacked) them, then the logit layer."""
    model = built[name]
    x0 = _np_fields(model, USERS, ITEMS)[0].reshape(6, -1)
    assert x0.shape == (6, 5 * 3)
    x = x0
    for layer in model.cross:
        w = np.asarray(layer.out.kernel[...])
        if layer.down is not None:  # flax kernels are [in, out]: x @ V then @ U^T
            w = np.asarray(layer.down.kernel[...]) @ w
        x = x0 * (x @ w + np.asarray(layer.out.bias[...])) + x
    if model.structure == "stacked":
        out = np.maximum(_dense(model.deep[0], x), 0)
    else:
        out = np.concatenate([x, np.maximum(_dense(model.deep[0], x0), 0)], axis=1)
    np.testing.assert_allclose(_scores(model, USERS, ITEMS), _dense(model.logit, out)[:, 0],
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["deepfm", "dcn_v2"])
def test_score_all_equals_pairwise_scores(built, name):
    model = built[name]
    all_UxN = _scores(model, np.arange(U))  # 9 users in blocks of 4: three blocks, one padded
    pairs_UxN = _scores(model, np.arange(U)[:, None], np.arange(N)[None, :])
    assert all_UxN.shape == pairs_UxN.shape == (U, N)
    np.testing.assert_allclose(all_UxN, pairs_UxN, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_scores(model, USERS, ITEMS), all_UxN[USERS, ITEMS], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("name", ["deepfm", "dcn_v2"])
def test_cold_item_ignores_its_id_embedding(built, name):
    model = built[name]
    assert model.scores_cold_items and model.scores_cold_users
    before = _scores(model, np.arange(U))
    moved = nnx.clone(model)
    emb = moved.fields.item_id.emb_RxD
    emb[...] = emb[...].at[COLD].add(5.0).at[0].add(5.0)
    after = _scores(moved, np.arange(U))
    np.testing.assert_allclose(after[:, COLD], before[:, COLD], rtol=1e-6)
    assert not np.allclose(after[:, 0], before[:, 0])  # a warm item's id row does count
    no_feats = DeepFM(ModelContext(INFO), dim=2, rngs=nnx.Rngs(0))
    assert not no_feats.scores_cold_items and no_feats.fields.num_fields == 2


MODELS = {  # fresh (trainable) models without user features
    "deepfm": lambda: DeepFM(ModelContext(INFO, features=_features(user_feats=False)), dim=4,
                             hidden=[6, 5], rngs=nnx.Rngs(0)),
    "dcn_v2": lambda: DCNv2(ModelContext(INFO, features=_features(user_feats=False)), dim=4,
                            cross_layers=2, hidden=[6], rngs=nnx.Rngs(0)),
}


def _planted():
    """Each user interacts with warm items of genre u % G; cold items are never seen."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, U, 120).astype(np.int32)
    items = np.array([rng.choice(np.flatnonzero((GENRE == u % G) & ~np.isin(np.arange(N), COLD)))
                      for u in users], np.int32)
    order = np.lexsort((items, users))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=U))]).astype(np.int32)
    return {"users": users, "items": items, "ratings": np.ones(120, np.float32),
            "indptr": indptr, "indices": items[order]}


@pytest.mark.parametrize("name", MODELS)
def test_bce_training_learns_planted_genres_and_transfers_to_cold_items(name):
    planted = _planted()
    data = device_data(planted["users"], planted["items"], num_users=U, num_items=N)
    model = MODELS[name]()
    loss, tx = BCE(num_negatives=2), optax.adam(0.03)
    graphdef, state = init_state(model, tx)
    epoch = make_epoch_fn(make_train_step(graphdef, loss, tx))
    rng, values = np.random.default_rng(0), []
    for e in range(25):
        perm, mask = epoch_order(rng, 120, 40)
        state, value = epoch(state, data, {}, perm, mask, jax.random.key(e))
        values.append(float(value))
    assert np.isfinite(values).all() and np.mean(values[-3:]) < 0.7 * values[0], values
    scores_UxN = _scores(nnx.merge(graphdef, state.params, state.rest), np.arange(U))
    # each cold item is scored highest by the users who like its genre (from features only)
    users = np.arange(U)
    for item in COLD:
        fans = users % G == GENRE[item]
        assert scores_UxN[fans, item].mean() > scores_UxN[~fans, item].mean(), item


def test_bad_options_fail_with_one_line():
    with pytest.raises(ValueError, match=r"model.hidden=\[64, 0\]"):
        DeepFM(ModelContext(INFO), hidden=[64, 0], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="model.structure='serial'"):
        DCNv2(ModelContext(INFO), structure="serial", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="model.rank=0"):
        DCNv2(ModelContext(INFO), rank=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="model.dim=0"):
        DCNv2(ModelContext(INFO), dim=0, rngs=nnx.Rngs(0))


TINY = ["data=synthetic", "data.dataset.num_users=30", "data.dataset.num_items=40",
        "data.dataset.interactions_per_user=8", "data.split.method=cold_item",
        "data.features=[genres]", "loss=bce", "trainer.epochs=1", "trainer.progress=false",
        "trainer.save_checkpoint=false", "eval.save_per_user=false", "eval.metrics=[ndcg]",
        "eval.ks=[5]", "model.dim=4", "model.hidden=[4]",
        "data.split.valid=0.0"]  # no validation evaluators to compile: keeps the test short


@pytest.mark.slow  # end to end through jaxrec train
@pytest.mark.parametrize("overrides", [["model=deepfm", "model.history=true"],
                                       ["model=dcn_v2", "model.rank=2"]])
def test_jaxrec_train_runs_with_features(overrides, tmp_path):
    res = run_train([*overrides, *TINY], tmp_path)
    for key in ("test/ndcg@5", "test/cold_item/ndcg@5"):
        assert math.isfinite(res["metrics"][key]), key
    assert not res.get("notes")
