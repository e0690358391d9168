"""The next-item protocol: test is scored from train + valid on time-ordered splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flax import nnx

from jaxrec.config import EvalConfig, SplitConfig
from jaxrec.data.interactions import Interactions
from jaxrec.data.pipeline import load_and_split
from jaxrec.metrics.inputs import attach_test_inputs, input_tables, resolve_test_input
from jaxrec.metrics.protocols import build_evaluators, check_protocol, describe
from jaxrec.metrics.scoring import evaluate, scoring_state
from jaxrec.models import MF, MultVAE, SASRec
from jaxrec.models.base import ModelContext
from tests.helpers import run_train

SPLIT = {"method": "leave_last", "valid": 0.1, "test": 0.2}


def _sequences(num_users=6, length=5, num_items=12, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(num_users):
        seq = rng.choice(num_items, size=length, replace=False)
        users += [u] * length
        items += list(seq)
        times += list(100 * u + np.arange(length))
    n = len(users)
    return Interactions(users=np.array(users, np.int32), items=np.array(items, np.int32),
                        ratings=np.ones(n, np.float32), timestamps=np.array(times, np.int64),
                        user_ids=np.arange(num_users), item_ids=np.arange(num_items))


def sequences_split():
    """The leave-last split of `_sequences` (6 users, 12 items)."""
    return load_and_split(_sequences(), {"implicit": True}, SPLIT)


def check_test_input(ds, model, table: str, num_users: int = 3):
    """The model as the test evaluator scores it: its ``table`` (left-padded sequences)
    ends with each user's valid item and scoring reads it (``seq[:-1]`` predicts
    ``seq[-1]``)."""
    _, test_evals = build_evaluators(ds, EvalConfig(ks=[3]), seed=0)
    attach_test_inputs(test_evals, model, ds, EvalConfig())
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    test_model = nnx.merge(graphdef, *scoring_state(test_evals[0], graphdef, (params, rest)))
    seq = np.asarray(getattr(test_model, table)[...])
    for u, item in zip(ds.valid.users.tolist(), ds.valid.items.tolist(), strict=True):
        assert seq[u, -1] == item
    users = np.arange(num_users, dtype=np.int32)
    np.testing.assert_allclose(test_model.score_all(users),
                               model.score_sequence(seq[:num_users, 1:]), rtol=1e-5, atol=1e-5)


class _Spy:
    """An evaluator that records the state it is given."""

    inputs = "users"

    def __init__(self):
        self.seen = None

    def run(self, score_fn, state):
        self.seen = state
        return {}


def test_resolve_test_input():
    leave_last, random = SplitConfig(**SPLIT), SplitConfig(method="random", valid=0.1)
    assert resolve_test_input(EvalConfig(), leave_last) == "train_valid"
    assert resolve_test_input(EvalConfig(), SplitConfig(method="temporal", valid=0.1)) \
        == "train_valid"
    assert resolve_test_input(EvalConfig(), random) == "train"
    assert resolve_test_input(EvalConfig(mask="train"), leave_last) == "train"
    assert resolve_test_input(EvalConfig(test_input="train"), leave_last) == "train"
    assert resolve_test_input(EvalConfig(test_input="train_valid"), random) == "train_valid"
    assert resolve_test_input(EvalConfig(), SplitConfig(method="leave_last", valid=0)) == "train"
    assert resolve_test_input(EvalConfig(protocol="strong"), None) == "fold_in"
    assert describe(EvalConfig(), leave_last)["test_input"] == "train+valid"
    assert describe(EvalConfig(), random)["test_input"] == "train"
    with pytest.raises(ValueError, match="eval.test_input='both' is not one of"):
        check_protocol(EvalConfig(test_input="both"), leave_last)


def test_sasrec_test_input_ends_with_the_valid_item():
    ds = load_and_split(_sequences(), {"implicit": True}, SPLIT)
    model = SASRec(ModelContext(info=ds.info, train=ds.train), dim=8, num_blocks=1, max_len=4,
                   rngs=nnx.Rngs(0))
    valid_evals, test_evals = build_evaluators(ds, EvalConfig(ks=[3]), seed=0)
    attach_test_inputs(test_evals, model, ds, EvalConfig())
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    spy_valid, spy_test = _Spy(), _Spy()
    spy_test.input_tables = test_evals[0].input_tables
    evaluate([spy_valid, spy_test], graphdef, (params, rest))

    def last_two(state):
        return np.asarray(nnx.merge(graphdef, *state).seq_UxL1[...])[:, -2:]

    valid_item = dict(zip(ds.valid.users.tolist(), ds.valid.items.tolist(), strict=True))
    last_train = {u: ds.train.items[ds.train.users == u][np.argmax(
        ds.train.timestamps[ds.train.users == u])] for u in valid_item}
    test_seq, valid_seq = last_two(spy_test.seen), last_two(spy_valid.seen)
    for u, item in valid_item.items():
        assert test_seq[u].tolist() == [last_train[u], item]  # seq[:-1] predicts seq[-1]
        assert valid_seq[u, -1] == last_train[u]  # seq[:-2] predicts seq[-2]
    assert last_two((params, rest))[0, -1] == last_train[0]  # the state is left as it was
    # the same swap reaches the evaluator's own scoring (score_all reads the new table)
    test_state = scoring_state(test_evals[0], graphdef, (params, rest))
    scores = nnx.merge(graphdef, *test_state).score_all(np.array([0], np.int32))
    seq = np.asarray(nnx.merge(graphdef, *test_state).seq_UxL1[...])[[0], 1:]
    np.testing.assert_allclose(scores, model.score_sequence(seq), rtol=1e-5, atol=1e-5)


def test_history_models_and_mf():
    ds = load_and_split(_sequences(), {"implicit": True}, SPLIT)
    ctx = ModelContext(info=ds.info, train=ds.train)
    vae = MultVAE(ctx, hidden=[4], latent=2, rngs=nnx.Rngs(0))
    tables = input_tables(vae, ds, EvalConfig())
    history = np.asarray(tables["history_UxN"])
    assert history[ds.valid.users, ds.valid.items].all()
    assert history.sum() == len(ds.train) + len(ds.valid)
    assert input_tables(vae, ds, EvalConfig(test_input="train")) is None
    assert input_tables(MF(ctx, dim=2, rngs=nnx.Rngs(0)), ds, EvalConfig()) is None
    # MF: the valid interactions are in the test exclusion mask
    (_, _, v_excl), (_, _, t_excl) = ds.eval_parts()
    assert [len(e) for e in t_excl] == [len(ds.train), len(ds.valid)]


def _planted_csv(path, num_users=300, pairs=4, num_starts=20, seed=0):
    """Sequences of pairs ``(a, f(a))``: a random start item a, then ``f(a)``; the
    validation item is the last ``a`` and the test item its ``f(a)``."""
    rng = np.random.default_rng(seed)
    follow = num_starts + rng.permutation(num_starts)
    rows = ["user_id,item_id,timestamp"]
    for u in range(num_users):
        t = 0
        for a in rng.choice(num_starts, size=pairs, replace=False):
            for item in (a, follow[a]):
                rows.append(f"{u},{item},{t}")
                t += 1
    path.write_text("\n".join(rows) + "\n")


def _planted_data(tmp_path) -> list[str]:
    csv = tmp_path / "planted.csv"
    _planted_csv(csv)
    return ["data=table", f"data.dataset.path={csv}", "data.dataset.columns.timestamp=timestamp",
            "data.preprocess.implicit=true", "data.split.method=leave_last",
            "data.split.valid=0.1", "eval.ks=[10]", "eval.metrics=[hit,ndcg]",
            "trainer.save_checkpoint=false", "eval.save_per_user=false", "logger.jsonl=false"]


TINY_SASREC = ["model=sasrec", "model.dim=16", "model.num_blocks=1", "model.max_len=8",
               "model.dropout=0.0", "optim.lr=0.01", "trainer.batch_size=64",
               "trainer.epochs=40", "trainer.eval_every=40"]


@pytest.mark.slow
def test_planted_next_item_pattern_sasrec_beats_mf(tmp_path):
    data = _planted_data(tmp_path)
    sasrec = run_train([*data, *TINY_SASREC, "loss=sequence_bce"], tmp_path / "sasrec")["metrics"]
    mf = run_train([*data, "model=mf", "loss=bpr", "model.dim=16", "optim.lr=0.01",
                    "trainer.batch_size=256", "trainer.epochs=40", "trainer.eval_every=40"],
                   tmp_path / "mf")["metrics"]
    saved = json.loads((tmp_path / "sasrec" / "results.json").read_text())
    assert saved["protocol_details"]["test_input"] == "train+valid"
    print({k: round(v, 3) for k, v in sasrec.items()}, {k: round(v, 3) for k, v in mf.items()})
    assert sasrec["test/hit@10"] > 0.9  # f(valid item) is the test item
    assert sasrec["test/hit@10"] > mf["test/hit@10"] + 0.4


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["softmax_ce", "sequence_sampled_softmax", "gbce"])
def test_planted_pattern_is_learnt_with_every_sasrec_loss(tmp_path, loss):
    extra = [] if loss == "softmax_ce" else ["loss.num_negatives=8"]  # 40 items
    m = run_train([*_planted_data(tmp_path), *TINY_SASREC, f"loss={loss}", *extra],
                  tmp_path / loss)["metrics"]
    assert m["test/hit@10"] > 0.9, m  # measured: 1.0 for each


@pytest.mark.slow
def test_planted_pattern_is_learnt_by_hstu(tmp_path):
    m = run_train([*_planted_data(tmp_path), *TINY_SASREC, "model=hstu", "model.attention_dim=8",
                   "model.linear_dim=8", "loss=softmax_ce", "loss.temperature=0.05"],
                  tmp_path / "hstu")["metrics"]
    assert m["test/hit@10"] > 0.9, m
