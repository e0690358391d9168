"""BERT4Rec and the masked-item cross-entropy: masking, padding, the loss against numpy,
scoring, the next-item test input, and (slow) a planted sequential pattern."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxrec.losses.masked_item_ce import MaskedItemCE, cloze_mask
from jaxrec.models.base import ModelContext
from jaxrec.models.bert4rec import BERT4Rec
from tests.helpers import run_train
from tests.unit.test_next_item_protocol import _planted_data, check_test_input, sequences_split


@pytest.fixture(scope="module")
def setup():
    ds = sequences_split()
    model = BERT4Rec(ModelContext(info=ds.info, train=ds.train), dim=8, num_blocks=1,
                     num_heads=2, ffn_dim=16, max_len=5, dropout=0.0, rngs=nnx.Rngs(0))
    return ds, model


def test_cloze_mask_never_masks_padding_and_masks_every_row():
    pad, mask = 9, 10
    seq = jnp.array([[pad, pad, 1, 2, 3], [pad, pad, pad, pad, pad], [4, 5, 6, 7, 8]] * 20)
    masked, targets, where = cloze_mask(jax.random.key(0), seq, mask_prob=0.3, pad=pad,
                                        mask_token=mask)
    masked, targets, where, seq = map(np.asarray, (masked, targets, where, seq))
    assert not where[seq == pad].any()  # padding is never masked nor predicted
    assert (masked[where > 0] == mask).all() and (masked[where == 0] == seq[where == 0]).all()
    assert (targets[where > 0] == seq[where > 0]).all()
    real_rows = (seq != pad).any(axis=1)
    assert (where[real_rows].sum(axis=1) >= 1).all() and where[~real_rows].sum() == 0
    assert 0.2 < where[seq != pad].mean() < 0.45  # ~p, plus the forced ones
    _, _, every = cloze_mask(jax.random.key(1), seq, mask_prob=1.0, pad=pad, mask_token=mask)
    assert (np.asarray(every) == (seq != pad)).all()
    with pytest.raises(ValueError, match="loss.mask_prob: must be in"):
        MaskedItemCE(mask_prob=0.0)


class _Recorder:
    """The model, recording what its encoder is given."""

    def __init__(self, model):
        self.model, self.seen = model, []
        self.num_items, self.mask_token = model.num_items, model.mask_token

    def cloze_sequences(self, users):
        return self.model.cloze_sequences(users)

    def encode(self, seq, key=None):
        self.seen.append(seq)
        return self.model.encode(seq, key)

    def item_logits(self, h):
        return self.model.item_logits(h)


def test_masked_item_ce_against_numpy_and_no_leak(setup):
    _, model = setup
    users = jnp.arange(6, dtype=jnp.int32)
    batch = {"users": users, "mask": jnp.array([1, 1, 1, 1, 1, 0.0]), "items": users}
    loss, key = MaskedItemCE(mask_prob=0.5), jax.random.key(3)
    spy = _Recorder(model)
    value, _ = loss.objective(spy, batch, None, key, 0)
    k_mask, k_model = jax.random.split(key)
    seq = np.asarray(model.cloze_sequences(users))
    masked, targets, where = map(np.asarray, cloze_mask(
        k_mask, jnp.asarray(seq), mask_prob=0.5, pad=model.num_items,
        mask_token=model.mask_token))
    # the encoder saw [MASK], never the true item, at every predicted position
    np.testing.assert_array_equal(np.asarray(spy.seen[0]), masked)
    assert (np.asarray(spy.seen[0])[where > 0] == model.mask_token).all()
    logits = np.asarray(model.item_logits(model.encode(jnp.asarray(masked), k_model)),
                        np.float64)
    terms = []
    for b in range(5):  # user 5 is a padded batch row
        for t in np.flatnonzero(where[b]):
            row = logits[b, t]
            terms.append(np.log(np.exp(row - row.max()).sum()) + row.max() - row[targets[b, t]])
    np.testing.assert_allclose(float(value), np.mean(terms), rtol=1e-5)


def test_padding_is_ignored_and_attention_is_bidirectional(setup):
    _, model = setup
    pad, m = model.num_items, model.mask_token
    long = jnp.array([[pad, pad, 1, 2, m]])
    short = jnp.array([[pad, 1, 2, m]])  # same items at the same positions, less padding
    np.testing.assert_allclose(model.encode(long)[:, 2:], model.encode(short)[:, 1:],
                               rtol=1e-5, atol=1e-6)
    later = jnp.array([[pad, pad, 1, 3, m]])
    assert not np.allclose(model.encode(long)[0, 2], model.encode(later)[0, 2])


def test_score_all_equals_pairwise_and_scores_after_the_history(setup):
    _, model = setup
    users = jnp.arange(4, dtype=jnp.int32)
    full = np.asarray(model.score_all(users))
    items = jnp.arange(model.num_items, dtype=jnp.int32)
    pair = np.asarray(model(users[:, None], items[None, :]))
    np.testing.assert_allclose(pair, full, rtol=1e-5, atol=1e-5)
    seq = model.seq_UxL[...][users][:, 1:]
    np.testing.assert_allclose(model.score_sequence(seq), full, rtol=1e-5, atol=1e-5)


def test_test_input_ends_with_the_valid_item(setup):
    ds, model = setup
    check_test_input(ds, model, "seq_UxL")


def test_bad_config_is_one_line(setup):
    ds, _ = setup
    with pytest.raises(ValueError, match="model.dim: must be a positive multiple"):
        BERT4Rec(ModelContext(info=ds.info, train=ds.train), dim=6, num_heads=4,
                 rngs=nnx.Rngs(0))


TINY_BERT4REC = ["model=bert4rec", "loss=masked_item_ce", "model.dim=16", "model.num_blocks=1",
                 "model.num_heads=1", "model.ffn_dim=32", "model.max_len=9",
                 "model.dropout=0.0", "loss.mask_prob=0.3", "optim.lr=0.01",
                 "trainer.batch_size=64", "trainer.epochs=60", "trainer.eval_every=60"]


@pytest.mark.slow
def test_planted_next_item_pattern_bert4rec_beats_popularity(tmp_path):
    data = _planted_data(tmp_path)
    bert = run_train([*data, *TINY_BERT4REC], tmp_path / "bert4rec")["metrics"]
    pop = run_train([*data, "model=popularity", "loss=none"], tmp_path / "pop")["metrics"]
    print({k: round(v, 3) for k, v in bert.items()}, {k: round(v, 3) for k, v in pop.items()})
    assert bert["test/hit@10"] > 0.9, bert  # f(valid item) is the test item (MF: < 0.5)
    assert bert["test/hit@10"] > pop["test/hit@10"] + 0.4
