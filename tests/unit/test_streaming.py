"""Streaming evaluation (`jaxrec.metrics.streaming`): per-event ranks against a numpy
replay (one event at a time), windows, no leakage of the revealed item, one-line errors."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.data.interactions import Interactions
from jaxrec.metrics.protocols import check_protocol
from jaxrec.metrics.scoring import evaluate, scoring_fn
from jaxrec.metrics.streaming import StreamingEvaluator, event_order, resolve_fold_in
from jaxrec.models import EASE, IALS, MF, SASRec
from jaxrec.models.base import ModelContext
from jaxrec.types import DataInfo

U, N = 5, 12
INFO = DataInfo(num_users=U, num_items=N, num_train=0, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")


def _inter(rows) -> Interactions:
    users, items, times = (np.asarray(c) for c in zip(*rows, strict=True))
    return Interactions(users=users.astype(np.int32), items=items.astype(np.int32),
                        ratings=np.ones(len(rows), np.float32), timestamps=times.astype(np.int64),
                        user_ids=np.arange(U), item_ids=np.arange(N), name="tiny")


# (user, item, time); user 4 has no history before the stream
KNOWN = _inter([(0, 0, 1), (0, 1, 2), (0, 2, 3), (1, 3, 1), (1, 4, 5), (2, 5, 2), (2, 0, 4),
                (3, 6, 3), (3, 7, 1), (3, 8, 2), (1, 2, 6)])
STREAM = _inter([(0, 3, 10), (1, 9, 10), (0, 4, 11), (0, 4, 12),  # (0, 4) again: a repeat
                 (2, 5, 12),  # seen before the stream: a repeat
                 (4, 1, 13), (3, 10, 13), (4, 2, 14), (1, 0, 15), (2, 11, 15), (0, 7, 16),
                 (3, 1, 17), (1, 6, 18), (4, 9, 18), (2, 8, 19)])


def _replay(score_event):
    """Per-event 0-based ranks (-1: a repeat) by brute force: ``score_event(user, items in
    time order, seen set) -> [N]`` scores of one event at a time, ranked in numpy."""
    order = np.lexsort((np.arange(len(KNOWN)), KNOWN.items, KNOWN.timestamps))
    seqs = {u: [] for u in range(U)}
    for r in order:
        seqs[int(KNOWN.users[r])].append(int(KNOWN.items[r]))
    ranks = []
    for r in event_order(STREAM):
        u, i = int(STREAM.users[r]), int(STREAM.items[r])
        seen = set(seqs[u])
        if i in seen:
            ranks.append(-1)
        else:
            s = np.asarray(score_event(u, list(seqs[u]), seen), np.float64)
            ranks.append(sum(1 for j in range(N) if j not in seen and j != i
                             and (s[j] > s[i] or (s[j] == s[i] and j < i))))
        seqs[u].append(i)
    return np.asarray(ranks)


def _metrics(ranks, k):
    r = ranks[ranks >= 0].astype(np.float64)
    return {f"hit@{k}": r < k, f"ndcg@{k}": np.where(r < k, 1 / np.log2(r + 2), 0),
            f"mrr@{k}": np.where(r < k, 1 / (r + 1), 0)}


def _run(model, *, windows=1, window_by="count", block=256, fold_in="auto", **sgd):
    ev = StreamingEvaluator(STREAM, KNOWN, ks=[3, 5], metrics=["hit", "ndcg", "mrr"],
                            windows=windows, window_by=window_by, block=block, fold_in=fold_in,
                            **sgd)
    ev.attach(model)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return ev, graphdef, (params, rest)


def _sasrec(max_len=3):
    return SASRec(ModelContext(INFO, train=KNOWN), dim=8, num_blocks=1, num_heads=2,
                  max_len=max_len, dropout=0.0, rngs=nnx.Rngs(0))


def _ease():
    model = EASE(ModelContext(INFO), l2=2.0, rngs=nnx.Rngs(0))
    x = np.zeros((U, N))
    x[KNOWN.users, KNOWN.items] = 1.0
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(N))
    model.weights_NxN[...] = jnp.asarray(np.eye(N) - p / np.diag(p), jnp.float32)  # Steck
    return model


@pytest.mark.slow  # compiles SASRec twice (~3 s alone, 13 s on a loaded host)
def test_sasrec_stream_matches_a_per_event_numpy_replay():
    model = _sasrec()

    score_one = jax.jit(lambda seq_1xL: model.score_sequence(seq_1xL)[0])

    def score_event(u, items, seen):
        seq = [N] * max(0, 3 - len(items)) + items[-3:]
        return np.asarray(score_one(jnp.asarray([seq], jnp.int32)))

    want = _replay(score_event)
    ev, graphdef, state = _run(model, block=4)  # several blocks, the last one padded
    assert ev.mode == "sequence"
    np.testing.assert_array_equal(ev.ranks(scoring_fn(ev, graphdef), state), want)
    got = evaluate([ev], graphdef, state)
    for k in (3, 5):
        for name, values in _metrics(want, k).items():
            assert got[f"test/streaming/{name}"] == pytest.approx(values.mean(), abs=1e-9)


@pytest.mark.parametrize("block", [256, 2])
def test_ease_stream_folds_in_the_updated_history(block):
    model = _ease()
    b = np.asarray(model.weights_NxN[...])

    def score_event(u, items, seen):
        x = np.zeros(N, np.float32)
        x[list(seen)] = 1.0
        return x @ b

    want = _replay(score_event)
    assert (want == -1).sum() == 2 and (want >= 0).sum() == 13
    ev, graphdef, state = _run(model, windows=3, block=block)
    assert ev.mode == "closed_form"
    np.testing.assert_array_equal(ev.ranks(scoring_fn(ev, graphdef), state), want)
    got = evaluate([ev], graphdef, state)
    ndcg = _metrics(want, 5)["ndcg@5"]
    assert got["test/streaming/ndcg@5"] == pytest.approx(ndcg.mean())
    for j, part in enumerate(np.array_split(ndcg, 3)):  # equal-count windows, in time order
        assert got[f"test/streaming/w{j}/ndcg@5"] == pytest.approx(part.mean())
    assert sorted(got) == sorted(ev.keys)
    table = ev.window_table(got)
    assert [row["events"] for row in table] == [5, 4, 4]
    assert table[0]["from"] == 10 and table[2]["to"] == 19
    assert table[1]["ndcg@5"] == got["test/streaming/w1/ndcg@5"]


def test_time_windows_split_the_span_evenly():
    ev, _, _ = _run(_ease(), windows=3, window_by="time")
    times = ev.times_E[ev.scored_E]  # 10 .. 19: windows [10, 13), [13, 16), [16, 19]
    np.testing.assert_array_equal(ev.window_E, np.where(times < 13, 0, np.where(times < 16,
                                                                                1, 2)))


class _Echo(nnx.Module):
    """Scores every item by how often it appears in the input it is given: a model that
    reads the revealed item would rank it first."""

    def __init__(self, max_len):
        self.max_len, self.num_items = max_len, N
        self.w = nnx.Param(jnp.zeros(()))

    def score_sequence(self, seq_BxL):
        return jnp.sum(seq_BxL[..., None] == jnp.arange(N)[None, None], axis=1).astype(jnp.float32)

    def score_history(self, history_BxN):
        return history_BxN + self.w[...]

    def score_all(self, users_U):
        return jnp.zeros((users_U.shape[0], N)) + self.w[...]

    def __call__(self, users, items):
        return jnp.zeros(jnp.broadcast_shapes(users.shape, items.shape))


@pytest.mark.parametrize("fold_in", ["sequence", "closed_form"])
def test_the_revealed_item_is_never_in_the_input_it_is_scored_from(fold_in):
    ev, graphdef, state = _run(_Echo(max_len=4), fold_in=fold_in)
    # no leak: the revealed (unseen) item scores 0 like every other unseen item, so its
    # rank is the number of unseen items with a lower index (ties: lower index first)
    want = _replay(lambda u, items, seen: np.zeros(N))
    np.testing.assert_array_equal(ev.ranks(scoring_fn(ev, graphdef), state), want)


def test_models_that_cannot_stream_fail_in_one_line():
    mf = MF(ModelContext(INFO), dim=4, rngs=nnx.Rngs(0))
    assert resolve_fold_in(mf, "auto") == "none"
    assert resolve_fold_in(_ease(), "auto") == "closed_form"
    with pytest.raises(ValueError, match="eval.fold_in=closed_form: MF cannot fold in"):
        resolve_fold_in(mf, "closed_form")
    with pytest.raises(ValueError, match="eval.fold_in=sequence: EASE cannot score"):
        resolve_fold_in(_ease(), "sequence")
    with pytest.raises(ValueError, match="eval.fold_in=sgd: EASE has no user vector"):
        resolve_fold_in(_ease(), "sgd")
    cfg = SimpleNamespace(protocol="streaming", mask="train_valid", test_input="auto",
                          num_negatives=99, fold_in="sequence", windows=2, window_by="count",
                          metrics=["ndcg"], ks=[10], slices=[], user_block=256, sgd_steps=3,
                          sgd_lr=0.5)
    split = SimpleNamespace(method="temporal", valid=0.1)
    with pytest.raises(ValueError, match="eval.fold_in=sequence: MF"):
        check_protocol(cfg, split, mf)
    with pytest.raises(ValueError, match="data.split.method=random is not time-ordered"):
        check_protocol(cfg, SimpleNamespace(method="random", valid=0.1))
    for key, value, match in [("windows", 0, "eval.windows=0"),
                              ("window_by", "day", "eval.window_by='day'"),
                              ("metrics", ["coverage"], "'coverage' is not a streaming metric"),
                              ("slices", ["cold_item"], "slices are not computed"),
                              ("user_block", 0, "eval.user_block=0"),
                              ("sgd_lr", 0.0, "eval.sgd_lr=0.0"),
                              ("sgd_steps", -1, "eval.sgd_steps=-1")]:
        bad = SimpleNamespace(**{**vars(cfg), key: value})
        with pytest.raises(ValueError, match=match):
            check_protocol(bad, split)


@pytest.mark.slow  # compiles a batched Cholesky solve (~10 s on a loaded host)
def test_ials_folds_a_history_in_by_the_exact_user_solve():
    model = IALS(ModelContext(INFO), dim=3, unobserved_weight=0.2, reg=0.05, reg_exponent=1.0,
                 alpha=0.5, init_std=0.5, rngs=nnx.Rngs(1))
    h = np.asarray(model.item_emb_NxD[...], np.float64)
    x = (np.random.default_rng(0).random((4, N)) < 0.3).astype(np.float32)
    want = []
    for row in x:  # (alpha0 H^T H + H^T C_u H + lambda_u I) w = H^T C_u 1, C_u = 1 + alpha
        c = row * 1.5
        reg = 0.05 * (row.sum() + 0.2 * N)
        w = np.linalg.solve(0.2 * h.T @ h + (h * c[:, None]).T @ h + reg * np.eye(3), h.T @ c)
        want.append(w @ h.T)
    got = jax.jit(lambda x_UxN: model.score_history(x_UxN))(jnp.asarray(x))
    np.testing.assert_allclose(got, np.asarray(want),
                               rtol=1e-4, atol=1e-5)
    assert resolve_fold_in(model, "auto") == "closed_form"


@pytest.mark.slow  # two evaluation programs (~11 s on a loaded host)
def test_on_a_leave_last_split_the_stream_is_the_full_ranking_test():
    """One test event per user, scored from train + valid with those items masked: the
    streamed metrics are the full-ranking test metrics (computed by RankingEvaluator)."""
    from jaxrec.data.datasets.synthetic import make_synthetic
    from jaxrec.data.pipeline import load_and_split
    from jaxrec.metrics.evaluator import RankingEvaluator

    ds = load_and_split(make_synthetic(num_users=30, num_items=40, interactions_per_user=8,
                                       seed=0),
                        None, {"method": "leave_last", "test": 0.2, "valid": 0.1, "seed": 0})
    _, target, exclude = ds.eval_parts()[-1]
    model = MF(ModelContext(ds.info), dim=4, init_std=0.5, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    full = RankingEvaluator("test", target, list(exclude), ks=[5], metrics=["hit", "ndcg", "mrr"])
    want = evaluate([full], graphdef, (params, rest))
    stream = StreamingEvaluator(target, exclude[0].concat(exclude[1]), ks=[5],
                                metrics=["hit", "ndcg", "mrr"])
    stream.attach(model)
    got = evaluate([stream], graphdef, (params, rest))
    assert stream.scored_E.sum() == full.num_users
    for key, value in want.items():
        assert got[key.replace("test/", "test/streaming/")] == pytest.approx(value, abs=1e-6)


@pytest.mark.slow  # three compiles (~4 s on a loaded host)
def test_sgd_folds_the_updated_history_into_the_user_vector():
    model = MF(ModelContext(INFO), dim=3, init_std=0.5, rngs=nnx.Rngs(2))
    model.item_bias_N[...] = jnp.linspace(-0.3, 0.3, N)
    p0, q = (np.asarray(model.user_emb_UxD[...], np.float64),
             np.asarray(model.item_emb_NxD[...], np.float64))
    bias = np.asarray(model.item_bias_N[...], np.float64)

    def score_event(u, items, seen):  # 4 steps of gradient descent, the gradient by hand
        p, x = p0[u].copy(), np.zeros(N)
        x[list(seen)] = 1.0
        for _ in range(4):
            s = q @ p + bias
            pi = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            # d/dp of -(1/|S|) sum_S log softmax_i: -(mean_S q_i - pi q); 0 for no history
            p -= 0.7 * -(x @ q - x.sum() * (pi @ q)) / max(x.sum(), 1.0)
        return q @ p + bias  # + user bias and global mean: the same for every item

    want = _replay(score_event)
    ev, graphdef, state = _run(model, fold_in="sgd", sgd_steps=4, sgd_lr=0.7)
    assert ev.mode == "sgd"
    np.testing.assert_array_equal(ev.ranks(scoring_fn(ev, graphdef), state), want)
    still = _run(model, fold_in="sgd", sgd_steps=0)  # no steps: the trained vectors
    none = _run(model, fold_in="none")
    np.testing.assert_array_equal(still[0].ranks(scoring_fn(still[0], still[1]), still[2]),
                                  none[0].ranks(scoring_fn(none[0], none[1]), none[2]))
