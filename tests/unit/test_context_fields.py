"""Context fields of the feature models (``model.context``: hour, weekday, gap, extra
interaction columns): ids and request tables against a brute force, the contract (batch
context in training, per-split request tables in scoring), the no-context model left as
it was, a planted weekday / device signal only the context models learn, one-line errors."""

import dataclasses
import types

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.data import cache
from jaxrec.data.features.context import GAP_BUCKETS, ContextSpec
from jaxrec.data.interactions import Interactions
from jaxrec.losses.base import check_gradient_model
from jaxrec.metrics.scoring import scoring_state
from jaxrec.models.base import ModelContext, row_inputs, uses_context
from jaxrec.models.dcn_v2 import DCNv2
from jaxrec.models.deepfm import DeepFM
from jaxrec.models.two_tower import TwoTower
from jaxrec.types import DataInfo
from tests.helpers import compose_train, run_train

U, N = 6, 12
INFO = DataInfo(num_users=U, num_items=N, num_train=0, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")
DEVICES = np.array(["phone", "tv", "web"], dtype=object)


def _interactions(seed, n, devices=DEVICES):
    rng = np.random.default_rng(seed)
    ts = rng.integers(9 * 10**8, 9 * 10**8 + 40 * 86400, n)
    ts[:6] = ts[6:12]  # ties in time
    return Interactions(users=rng.integers(0, U, n).astype(np.int32),
                        items=rng.integers(0, N, n).astype(np.int32),
                        ratings=np.ones(n, np.float32), timestamps=ts.astype(np.int64),
                        user_ids=np.arange(U), item_ids=np.arange(N), name="tiny",
                        extra_columns={"device": devices[rng.integers(0, len(devices), n)]})


def _hour_day(t):
    return (t // 3600) % 24, (t // 86400 + 3) % 7  # 1970-01-01 was a Thursday


def _bucket(dt):
    return 1 + min(int(np.floor(np.log2(max(dt, 1)))), GAP_BUCKETS - 2)


def test_context_ids_and_request_tables_match_a_brute_force():
    train = _interactions(0, 80, DEVICES[:2])  # "web" never in training: unknown (0)
    held = _interactions(1, 30)
    spec = ContextSpec.build(train, ["device", "hour", "weekday", "gap"])
    assert spec.vocabs == (("phone", "tv"), (), (), ()) and spec.sizes == (3, 24, 7, GAP_BUCKETS)
    order = lambda inter, r: (inter.timestamps[r], inter.items[r], r)  # noqa: E731
    ids = spec.ids(train)
    for r in range(len(train)):
        earlier = [s for s in range(len(train)) if train.users[s] == train.users[r]
                   and order(train, s) < order(train, r)]
        gap = 0 if not earlier else _bucket(
            train.timestamps[r] - train.timestamps[max(earlier, key=lambda s: order(train, s))])
        want = [1 + ["phone", "tv"].index(train.extra_columns["device"][r]),
                *_hour_day(train.timestamps[r]), gap]
        assert ids[r].tolist() == want, r
    table = spec.request_ids(train, held, U)
    for u in range(U):
        mine = [r for r in range(len(held)) if held.users[r] == u]
        known = [s for s in range(len(train)) if train.users[s] == u]
        if not mine:  # no request: the latest known interaction's own context
            last = max(known, key=lambda s: order(train, s))
            assert table[u].tolist() == ids[last].tolist()
            continue
        r = min(mine, key=lambda s: order(held, s))
        t = held.timestamps[r]
        device = held.extra_columns["device"][r]
        before = [train.timestamps[s] for s in known if train.timestamps[s] <= t]
        want = [0 if device == "web" else 1 + ["phone", "tv"].index(device), *_hour_day(t),
                _bucket(t - max(before)) if before else 0]
        assert table[u].tolist() == want, u


def test_unknown_or_repeated_fields_are_one_line_errors(tmp_path):
    train = _interactions(0, 20)
    with pytest.raises(ValueError, match=r"model.context: field 'month' is neither a time "
                       r"field nor an interaction column of the data \(have: hour, weekday, "
                       r"gap, device"):
        ContextSpec.build(train, ["hour", "month"])
    with pytest.raises(ValueError, match="model.context: field 'hour' is listed twice"):
        ContextSpec.build(train, ["hour", "hour"])
    csv = tmp_path / "t.csv"
    csv.write_text("user_id,item_id,timestamp\n" + "".join(
        f"{r % 5},{r % 7},{100 * r}\n" for r in range(40)))
    cfg = compose_train(["data=table", f"data.dataset.path={csv}",
                         "data.dataset.columns.timestamp=timestamp", "data.dataset.cache_dir=null",
                         "model=deepfm", "loss=bce", "model.context=[hour,device]"], tmp_path)
    from jaxrec.assembly import assemble

    with pytest.raises(ValueError, match=r"^model.context: field 'device' is neither") as err:
        assemble(cfg, training=False)
    assert "\n" not in str(err.value)
    model = DeepFM(ModelContext(INFO, train=train), dim=4, hidden=(), context=("hour",),
                   rngs=nnx.Rngs(0))
    loss = types.SimpleNamespace(rows="interactions", l2=0.0)  # a loss that drops the context
    with pytest.raises(ValueError, match=r"model.context=\['hour'\]: loss=SimpleNamespace does "
                       "not pass per-interaction context"):
        check_gradient_model(loss, model)


MODELS = {"deepfm": lambda ctx, **kw: DeepFM(ctx, dim=4, hidden=(8,), **kw),
          "dcn_v2": lambda ctx, **kw: DCNv2(ctx, dim=4, hidden=(8,), cross_layers=1, **kw),
          "two_tower": lambda ctx, **kw: TwoTower(ctx, dim=4, hidden=(8,), history=False, **kw)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_context_reaches_pairs_and_score_all_through_the_request_table(name):
    train, held = _interactions(0, 60), _interactions(1, 20)
    make = MODELS[name]
    plain = make(ModelContext(INFO, train=train), rngs=nnx.Rngs(0))
    model = make(ModelContext(INFO, train=train), context=("hour", "weekday", "gap", "device"),
                 rngs=nnx.Rngs(0))
    assert not uses_context(plain) and row_inputs(plain, train) == {}
    assert plain.context_fields == () and plain.request_tables(train, held) == {}
    assert uses_context(model) and row_inputs(model, train)["context"].shape == (60, 4)
    # scoring a split: its request table swapped in, as the evaluators do
    tables = model.request_tables(train, held)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    ev = types.SimpleNamespace(input_tables={k: jnp.asarray(v) for k, v in tables.items()})
    swapped = nnx.merge(graphdef, *scoring_state(ev, graphdef, (params, rest)))
    request = jnp.asarray(next(iter(tables.values())))
    rows = np.arange(4)  # training rows in their own context: [B] users, [B] items, [B, C]
    ctx_ids = jnp.asarray(model.context_ids(train)[rows])
    row_users, row_items = jnp.asarray(train.users[rows]), jnp.asarray(train.items[rows])

    @nnx.jit  # one program: eager DCN-V2 compiles op by op
    def scores(model, swapped):
        users, items = jnp.arange(U, dtype=jnp.int32), jnp.arange(N, dtype=jnp.int32)
        out = {"all": swapped.score_all(users), "built_in": model.score_all(users),
               "pairs": model(users[:, None], items[None, :], context=request[:, None, :]),
               "swapped_pairs": swapped(users[:, None], items[None, :]),
               "rows": model(row_users, row_items, context=ctx_ids),
               "row_by_row": jnp.concatenate([
                   model(row_users[r:r + 1], row_items[r:r + 1], context=ctx_ids[r:r + 1])
                   for r in range(len(rows))])}
        if name == "two_tower":
            out["candidates"] = model.score_candidates(users, items, context=request)
        return out

    out = scores(model, swapped)
    for key in ("pairs", "swapped_pairs", "candidates"):
        if key in out:
            np.testing.assert_allclose(out[key], out["all"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out["built_in"], out["all"])  # the built-in table differs
    np.testing.assert_allclose(out["rows"], out["row_by_row"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_context_keeps_parameters_and_batch(name):
    """``context=[]`` builds the model it built before (same parameters, same keys) and
    the epoch's batch carries only users, items, ratings and mask."""
    from tests.helpers import device_data

    train = _interactions(0, 30)
    make = MODELS[name]
    before = nnx.state(make(ModelContext(INFO, train=train), rngs=nnx.Rngs(3)))
    now = nnx.state(make(ModelContext(INFO, train=train), context=[], rngs=nnx.Rngs(3)))
    flat_a, flat_b = dict(nnx.to_flat_state(before)), dict(nnx.to_flat_state(now))
    assert flat_a.keys() == flat_b.keys()
    for key, value in flat_a.items():
        np.testing.assert_array_equal(np.asarray(value[...]), np.asarray(flat_b[key][...]))
    data = device_data(train.users, train.items, num_users=U, num_items=N)
    assert data.batch_fields == ("users", "items", "ratings") and "context" not in data


def test_extra_columns_survive_select_concat_and_the_cache(tmp_path):
    inter = _interactions(0, 12)
    part = inter.select(np.array([3, 1]))
    assert part.extra_columns["device"].tolist() == inter.extra_columns["device"][[3, 1]].tolist()
    both = part.concat(inter.select(np.array([0])))
    assert len(both.extra_columns["device"]) == 3
    cache.save(inter, tmp_path / "c.npz")
    back = cache.load(tmp_path / "c.npz")
    assert back.extra_columns["device"].tolist() == inter.extra_columns["device"].tolist()
    with pytest.raises(ValueError, match="interaction column 'device' has 2 rows, expected 12"):
        dataclasses.replace(inter, extra_columns={"device": DEVICES[:2]})


def _planted_csv(path, num_users=300, seed=0):
    """The item of an interaction is ``4 weekday + r`` (r in 0..3) on a phone and ``28 + 4
    weekday + r`` on a tv: only the request's weekday and device tell its 4 items."""
    rng = np.random.default_rng(seed)
    rows = ["user_id,item_id,timestamp,device"]
    for u in range(num_users):
        t = 1_500_000_000 + int(rng.integers(0, 10**6))
        for _ in range(int(rng.integers(5, 9))):
            tv = bool(rng.integers(0, 2))
            item = 4 * ((t // 86400 + 3) % 7) + int(rng.integers(0, 4)) + 28 * tv
            rows.append(f"{u},{item},{t},{'tv' if tv else 'phone'}")
            t += 86400 * int(rng.integers(1, 4)) + int(rng.integers(0, 3600))
    path.write_text("\n".join(rows) + "\n")


def _planted_runs(tmp_path, model, loss):
    csv = tmp_path / "planted.csv"
    _planted_csv(csv)
    data = ["data=table", f"data.dataset.path={csv}", "data.dataset.columns.timestamp=timestamp",
            "data.dataset.extra_columns=[device]", "data.dataset.cache_dir=null",
            "data.preprocess.implicit=true", "data.split.method=leave_last",
            "data.split.valid=0.1", "eval.ks=[4]", "eval.metrics=[hit]",
            "trainer.monitor=valid/hit@4", "trainer.save_checkpoint=false",
            "eval.save_per_user=false", "logger.jsonl=false", f"model={model}", f"loss={loss}",
            "model.dim=8", "trainer.epochs=30", "trainer.batch_size=256", "optim.lr=0.01"]
    with_ctx = run_train([*data, "model.context=[weekday,device]"], tmp_path / "ctx")["metrics"]
    without = run_train(data, tmp_path / "plain")["metrics"]
    return with_ctx["test/hit@4"], without["test/hit@4"]


def test_planted_weekday_and_device_only_the_context_model_learns(tmp_path):
    with_ctx, without = _planted_runs(tmp_path, "deepfm", "bce")
    assert with_ctx > 0.9, with_ctx  # measured 1.00 (0.13 without)
    assert without < 0.3, without


@pytest.mark.slow
@pytest.mark.parametrize("model,loss", [("dcn_v2", "bce"), ("two_tower", "sampled_softmax")])
def test_planted_weekday_and_device_dcn_and_two_tower(tmp_path, model, loss):
    with_ctx, without = _planted_runs(tmp_path, model, loss)
    assert with_ctx > 0.9, with_ctx  # measured 1.00 / 0.97 (0.09 / 0.05 without)
    assert without < 0.3, without


@pytest.mark.slow
def test_deepfm_with_and_without_context_on_ml_latest_small(tmp_path):
    short = ["experiment=deepfm_warm", "trainer.epochs=2", "trainer.save_checkpoint=false",
             "eval.save_per_user=false"]
    plain = run_train(short, tmp_path / "plain")["metrics"]
    ctx = run_train([*short, "model.context=[hour,weekday,gap]"], tmp_path / "ctx")["metrics"]
    for m in (plain, ctx):
        assert 0.05 < m["test/ndcg@10"] < 0.5 and 0.05 < m["test/recall@20"] < 0.5, m
    assert ctx["test/ndcg@10"] != plain["test/ndcg@10"]


def test_table_keeps_extra_columns_and_names_a_missing_one(tmp_path):
    from jaxrec.data.datasets.table import load_table
    from jaxrec.data.interactions import DataError

    csv = tmp_path / "t.csv"
    csv.write_text("u,i,device\n1,2,tv\n2,3,\n1,3,phone\n")
    inter = load_table(csv, {"user": "u", "item": "i"}, extra_columns=["device"], cache_dir=None)
    assert inter.extra_columns["device"].tolist() == ["tv", "", "phone"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"u": [1, 2], "i": [2, 3], "device": [7, None]}),
                   tmp_path / "t.parquet")
    inter = load_table(tmp_path / "t.parquet", {"user": "u", "item": "i"},
                       extra_columns=["device"], cache_dir=None)
    assert inter.extra_columns["device"].tolist() == ["7", ""]
    with pytest.raises(DataError, match=r"missing column 'os' \(extra_columns; the file has: "
                       r"u, i, device\)"):
        load_table(csv, {"user": "u", "item": "i"}, extra_columns=["os"], cache_dir=None)
