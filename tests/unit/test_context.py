"""Context features (hour, weekday, log time gap) against pandas, SASRec's time_features
table and causality, and a planted case where the weekday decides the next item."""

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from jaxrec.data.features.context import CONTEXT_SIZES, GAP_BUCKETS, context_values
from jaxrec.models import SASRec
from jaxrec.models.base import ModelContext
from jaxrec.models.layers.history import sequence_slots
from jaxrec.types import DataInfo
from tests.helpers import run_train
from tests.unit.test_next_item_protocol import TINY_SASREC


def _interactions(seed=0, n=200):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 7, n).astype(np.int32)
    ts = rng.integers(9 * 10**8, 17 * 10**8, n)
    ts[:20] = ts[20:40]  # ties in time
    ts[40:45] = ts[45]
    return SimpleNamespace(users=users, items=rng.integers(0, 30, n).astype(np.int32),
                           timestamps=ts)


def test_context_values_match_pandas():
    inter = _interactions()
    got = context_values(inter)
    df = pd.DataFrame({"user": inter.users, "item": inter.items, "ts": inter.timestamps,
                       "row": np.arange(len(inter.users))})
    when = pd.to_datetime(df.ts, unit="s", utc=True)
    np.testing.assert_array_equal(got[:, 0], when.dt.hour)
    np.testing.assert_array_equal(got[:, 1], when.dt.weekday)
    df = df.sort_values(["user", "ts", "item", "row"])
    dt = df.groupby("user").ts.diff()
    bucket = 1 + np.minimum(np.floor(np.log2(np.maximum(dt, 1))), GAP_BUCKETS - 2)
    want = pd.Series(np.where(dt.isna(), 0, bucket), index=df.index).sort_index()
    np.testing.assert_array_equal(got[:, 2], want.astype(int))
    assert got.max(axis=0).tolist() < list(CONTEXT_SIZES.values())
    np.testing.assert_array_equal(context_values(inter, ["gap", "hour"]), got[:, [2, 0]])
    with pytest.raises(ValueError, match="context field 'month' is not one of"):
        context_values(inter, ["month"])


INFO = DataInfo(num_users=7, num_items=30, num_train=0, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")


def test_sasrec_time_features_table_and_causality():
    inter = _interactions()
    model = SASRec(ModelContext(INFO, train=inter), dim=8, num_blocks=1, max_len=5,
                   dropout=0.0, time_features=True, rngs=nnx.Rngs(0))
    assert set(model.history_tables(inter)) == {"seq_UxL1", "ctx_UxL1xC"}
    rows, users, cols = sequence_slots(inter, 7, 6)
    offsets = np.array([0, 24, 31])
    table = np.asarray(model.ctx_UxL1xC[...])
    np.testing.assert_array_equal(table[users, cols], context_values(inter)[rows] + offsets)
    seq = model.seq_UxL1[...][:, 1:]
    ctx = model.ctx_UxL1xC[...][:, 1:]
    encode = nnx.jit(lambda m, c: m.encode(seq, None, c))
    h = encode(model, ctx)
    h2 = encode(model, ctx.at[:, 3:, 1].set(24 + 6))
    np.testing.assert_allclose(h2[:, :3], h[:, :3], rtol=1e-6, atol=1e-6)
    assert not np.allclose(h2[:, 3], h[:, 3])
    np.testing.assert_allclose(model.score_all(jnp.arange(7, dtype=jnp.int32)),
                               h[:, -1] @ model.item_vectors().T,
                               rtol=1e-5, atol=1e-5)


def _weekday_csv(path, num_users=400, seed=0):
    """Item k + 1 of a user is ``7 k + weekday(t_k)``: only the previous interaction's
    weekday tells which of 7 items comes next (lengths 4-9, so every position's items
    are trained on by longer users)."""
    rng = np.random.default_rng(seed)
    rows = ["user_id,item_id,timestamp"]
    for u in range(num_users):
        t = 1_500_000_000 + int(rng.integers(0, 10**6))
        item = 100 + int(rng.integers(0, 20))
        for k in range(int(rng.integers(4, 10))):
            rows.append(f"{u},{item},{t}")
            item = 7 * k + int((t // 86400 + 3) % 7)
            t += 86400 * int(rng.integers(1, 7)) + int(rng.integers(0, 3600))
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_weekday_planted_next_item_needs_time_features(tmp_path):
    csv = tmp_path / "weekday.csv"
    _weekday_csv(csv)
    data = ["data=table", f"data.dataset.path={csv}", "data.dataset.columns.timestamp=timestamp",
            "data.preprocess.implicit=true", "data.split.method=leave_last",
            "data.split.valid=0.1", "eval.ks=[1]", "eval.metrics=[hit]",
            "trainer.monitor=valid/hit@1",
            "trainer.save_checkpoint=false", "eval.save_per_user=false", "logger.jsonl=false",
            *TINY_SASREC, "loss=softmax_ce"]
    with_ctx = run_train([*data, "model.time_features=true"], tmp_path / "ctx")["metrics"]
    without = run_train(data, tmp_path / "plain")["metrics"]
    print(with_ctx, without)
    assert with_ctx["test/hit@1"] > 0.6, with_ctx  # measured 0.70 (0.125 without)
    assert with_ctx["test/hit@1"] > without["test/hit@1"] + 0.4, (with_ctx, without)
