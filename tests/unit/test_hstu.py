"""HSTU: the relative bias and one layer against numpy references, causality, padding,
score_all vs pairs, the time table, and the next-item test input (valid item included)."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.config import EvalConfig
from jaxrec.data.pipeline import load_and_split
from jaxrec.metrics.inputs import input_tables
from jaxrec.models import HSTU
from jaxrec.models.base import HistoryInput, ModelContext, NextItemStates
from jaxrec.models.hstu import relative_bias, time_buckets
from jaxrec.models.layers.history import sequence_tables
from jaxrec.types import DataInfo
from tests.unit.test_next_item_protocol import SPLIT, _sequences

U, N, L = 5, 20, 6
INFO = DataInfo(num_users=U, num_items=N, num_train=0, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")


def _model(num_blocks=1, l2_norm=False, train=None, heads=1):
    return HSTU(ModelContext(INFO, train=train), dim=8, num_blocks=num_blocks, num_heads=heads,
                attention_dim=4, linear_dim=3, max_len=L, dropout=0.0, num_buckets=64,
                l2_norm=l2_norm, rngs=nnx.Rngs(0))


@nnx.jit
def _encode(model, seq, times):
    return model.encode(seq, times)


SEQ = jnp.array([[N, N, 3, 7, 1, 9], [5, 6, 7, 8, 9, 10]], jnp.int32)
TIMES = jnp.array([[0, 0, 0, 40, 41, 5000], [0, 2, 9, 100, 10**5, 10**7]], jnp.int32)


def test_time_buckets_match_numpy():
    dt = np.array([-(10**7), -3, -1, 0, 1, 2, 3, 7, 60, 3600, 86400, 10**9], np.int64)
    want = np.clip(np.floor(np.log(np.maximum(np.abs(dt), 1)) / 0.301), 0, 40)
    np.testing.assert_array_equal(time_buckets(jnp.asarray(dt, jnp.int32), 40), want)
    np.testing.assert_array_equal(time_buckets(jnp.asarray(dt, jnp.int32), 5),
                                  np.minimum(want, 5))


def _meta_rab(pos_w, time_w, times):
    """Meta's construction: pad-repeat-reshape for positions, ts(next) - ts(key) for time."""
    n = times.shape[1]
    t = np.tile(np.pad(pos_w[:2 * n - 1], (0, n)), n)[:-n].reshape(n, 3 * n - 2)
    r = (2 * n - 1) // 2
    pos = t[:, r:-r]
    ext = np.concatenate([times, times[:, -1:]], axis=1).astype(np.int64)
    dt = ext[:, 1:, None] - ext[:, None, :-1]
    buckets = np.clip((np.log(np.maximum(np.abs(dt), 1)) / 0.301).astype(np.int64),
                      0, len(time_w) - 1)
    return pos[None] + time_w[buckets]


def test_relative_bias_matches_metas_construction():
    rng = np.random.default_rng(0)
    pos_w, time_w = rng.normal(size=2 * L - 1), rng.normal(size=31)
    got = relative_bias(jnp.asarray(pos_w, jnp.float32), jnp.asarray(time_w, jnp.float32), TIMES)
    np.testing.assert_allclose(got, _meta_rab(pos_w, time_w, np.asarray(TIMES)), rtol=1e-5,
                               atol=1e-6)


def _np_layer_norm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)


def test_one_layer_matches_a_numpy_reference():
    model = _model(num_blocks=1, heads=2)
    p = {k: np.asarray(v, np.float64) for k, v in [
        ("emb", model.item_emb[...]), ("pos", model.pos_emb[...]), ("w", model.uvqk[0][...]),
        ("wo", model.out[0].kernel[...]), ("bo", model.out[0].bias[...]),
        ("pw", model.pos_w[0][...]), ("tw", model.time_w[0][...])]}
    seq, times = np.asarray(SEQ), np.asarray(TIMES)
    valid = seq != N
    x = (p["emb"][seq] * np.sqrt(8) + p["pos"][None]) * valid[..., None]
    h = np.zeros_like(x)
    rab = _meta_rab(p["pw"], p["tw"], times)
    silu = lambda z: z / (1 + np.exp(-z))  # noqa: E731
    for b in range(2):
        uvqk = silu(_np_layer_norm(x[b]) @ p["w"])
        u, v, q, k = uvqk[:, :6], uvqk[:, 6:12], uvqk[:, 12:20], uvqk[:, 20:]
        av = np.zeros((L, 6))
        for head in range(2):
            qh, kh, vh = q[:, 4 * head:4 * head + 4], k[:, 4 * head:4 * head + 4], \
                v[:, 3 * head:3 * head + 3]
            for i in range(L):
                for j in range(i + 1):  # causal, real keys only, no softmax
                    if valid[b, j]:
                        weight = silu(qh[i] @ kh[j] + rab[b, i, j]) / L
                        av[i, 3 * head:3 * head + 3] += weight * vh[j]
        h[b] = (x[b] + (_np_layer_norm(av) * u) @ p["wo"] + p["bo"]) * valid[b, :, None]
    np.testing.assert_allclose(_encode(model, SEQ, TIMES), h, rtol=2e-4, atol=2e-5)


def test_causal_in_items_and_times_and_ignores_padding():
    model = _model(num_blocks=2, l2_norm=True)
    h = _encode(model, SEQ, TIMES)
    for t in (3, 5):
        items = SEQ.at[:, t:].set((SEQ[:, t:] + 7) % N)
        times = TIMES.at[:, t + 1:].add(12345)
        h2 = _encode(model, items, times)
        np.testing.assert_allclose(h2[:, :t], h[:, :t], rtol=1e-5, atol=1e-6)
        assert not np.allclose(h2[:, t], h[:, t])
    # position t's query reads the time of t + 1 (Meta's request time), never the item
    h3 = _encode(model, SEQ, TIMES.at[:, 4].set(101))
    assert not np.allclose(h3[1, 3], h[1, 3])
    # padded positions: their times do not matter, their outputs are 0, all-padding is finite
    h4 = _encode(model, SEQ, TIMES.at[0, :2].set(999))
    np.testing.assert_allclose(h4, h, rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(h[0, :2]).max()) == 0.0
    assert bool(jnp.isfinite(_encode(model, jnp.full((1, L), N, jnp.int32), None)).all())
    np.testing.assert_allclose(jnp.linalg.norm(h[:, 2:], axis=-1), 1.0, rtol=1e-5)


def _train():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(U - 1), 9).astype(np.int32)
    items = rng.integers(0, N, len(users)).astype(np.int32)
    return SimpleNamespace(users=users, items=items,
                           timestamps=rng.integers(10**9, 10**9 + 10**6, len(users)))


def test_time_table_and_score_all_match_pairs():
    train = _train()
    model = _model(num_blocks=1, l2_norm=True, train=train)
    assert isinstance(model, NextItemStates) and isinstance(model, HistoryInput)
    seq, times = sequence_tables(train, U, N, L + 1)
    for u in range(U - 1):  # times are seconds since the first kept item, time ordered
        mine = np.sort(train.timestamps[train.users == u])[-(L + 1):]
        np.testing.assert_array_equal(times[u], mine - mine[0])
    assert (seq[U - 1] == N).all() and (times[U - 1] == 0).all()
    users = jnp.arange(U, dtype=jnp.int32)
    all_UxN = model.score_all(users)
    items = jnp.broadcast_to(jnp.arange(N), (U, N))
    np.testing.assert_allclose(model(users[:, None], items), all_UxN, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(all_UxN, model.score_sequence(model.seq_UxL1[...][:, 1:],
                                                             model.time_UxL1[...][:, 1:]),
                               rtol=1e-5, atol=1e-5)
    h, targets, valid = model.next_item_states(users, jax.random.key(0), train=False)
    assert h.shape == (U, L, 8) and float(valid[U - 1].sum()) == 0.0
    np.testing.assert_array_equal(targets, model.seq_UxL1[...][:, 1:])


def test_test_input_tables_include_the_validation_item_and_time():
    ds = load_and_split(_sequences(), {"implicit": True}, SPLIT)
    model = HSTU(ModelContext(info=ds.info, train=ds.train), dim=8, num_blocks=1, max_len=4,
                 attention_dim=4, linear_dim=4, rngs=nnx.Rngs(0))
    tables = input_tables(model, ds, EvalConfig())
    assert set(tables) == {"seq_UxL1", "time_UxL1"}
    seq, times = np.asarray(tables["seq_UxL1"]), np.asarray(tables["time_UxL1"])
    for u, item, t in zip(ds.valid.users, ds.valid.items, ds.valid.timestamps, strict=True):
        assert seq[u, -1] == item  # seq[:-1] predicts seq[-1]
        last_train = ds.train.timestamps[ds.train.users == u].max()
        assert times[u, -1] - times[u, -2] == t - last_train
        assert np.asarray(model.seq_UxL1[...])[u, -1] != item or item in ds.train.items[
            ds.train.users == u]


def test_gradients_are_finite_with_padded_rows():
    model = _model(num_blocks=1, l2_norm=True, train=_train())
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p):
        m = nnx.merge(graphdef, p, rest)
        h, _, valid = m.next_item_states(jnp.arange(U, dtype=jnp.int32), jax.random.key(0))
        return jnp.sum(h @ m.item_vectors().T * valid[..., None])

    grads = jax.jit(jax.grad(loss))(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


def test_sasrec_l2_norm_option():
    from jaxrec.models import SASRec

    model = SASRec(ModelContext(INFO, train=_train()), dim=8, num_blocks=1, max_len=L,
                   dropout=0.0, l2_norm=True, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(jnp.linalg.norm(model.item_vectors(), axis=-1), 1.0, rtol=1e-5)
    users = jnp.arange(U - 1, dtype=jnp.int32)
    np.testing.assert_allclose(jnp.linalg.norm(model.user_state(users), axis=-1), 1.0,
                               rtol=1e-5)
