import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrec.losses import BCE, BPR, MSE, bce_loss, bpr_loss, l2_rows, mse_loss


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    pos = rng.normal(size=7).astype(np.float32)
    neg = rng.normal(size=(7, 3)).astype(np.float32)
    mask = np.array([1, 1, 1, 1, 1, 0, 0], np.float32)
    return pos, neg, mask


def test_mse_matches_numpy(batch):
    pos, neg, mask = batch
    target = neg[:, 0]
    expected = np.sum((pos - target) ** 2 * mask) / mask.sum()
    np.testing.assert_allclose(mse_loss(pos, target, mask_B=mask), expected, rtol=1e-6)


def test_bce_matches_numpy(batch):
    pos, neg, mask = batch
    per = -np.log(_np_sigmoid(pos)) - np.sum(np.log(1 - _np_sigmoid(neg)), axis=1)
    np.testing.assert_allclose(bce_loss(pos, neg, mask_B=mask), np.sum(per * mask) / mask.sum(),
                               rtol=1e-5)


def test_bpr_matches_numpy(batch):
    pos, neg, mask = batch
    per = -np.mean(np.log(_np_sigmoid(pos[:, None] - neg)), axis=1)
    np.testing.assert_allclose(bpr_loss(pos, neg, mask_B=mask), np.sum(per * mask) / mask.sum(),
                               rtol=1e-5)


def test_padding_has_no_gradient(batch):
    pos, neg, mask = batch
    g_pos, g_neg = jax.grad(lambda p, n: bpr_loss(p, n, mask_B=mask), argnums=(0, 1))(pos, neg)
    assert np.all(np.asarray(g_pos)[mask == 0] == 0)
    assert np.all(np.asarray(g_neg)[mask == 0] == 0)


def test_bpr_gradient_closed_form():
    # d/ds_pos of -log sigmoid(s_pos - s_neg) = -(1 - sigmoid(s_pos - s_neg))
    pos, neg, mask = jnp.array([0.3]), jnp.array([[-0.2]]), jnp.ones(1)
    g = jax.grad(lambda p: bpr_loss(p, neg, mask_B=mask))(pos)
    np.testing.assert_allclose(g, -(1 - _np_sigmoid(0.5)), rtol=1e-6)


def test_bce_is_stable_for_large_logits():
    value = bce_loss(jnp.array([1e4]), jnp.array([[-1e4]]), mask_B=jnp.ones(1))
    assert np.isfinite(float(value)) and float(value) < 1e-6


def test_l2_rows_counts_each_example_row():
    rows = [jnp.ones((3, 2)), 2 * jnp.ones((3, 4, 2))]
    mask = jnp.array([1.0, 1.0, 0.0])
    # per example: 2 * 1 + 4 * 2 * 4 = 34, mean over two real examples
    np.testing.assert_allclose(l2_rows(rows, mask_B=mask), 34.0)


def test_loss_dataclasses_declare_their_rows_and_sampling():
    assert MSE.rows == BCE.rows == BPR.rows == "interactions"
    assert BCE.samples_unseen and BPR.samples_unseen and not MSE.samples_unseen
    assert MSE.default_monitor == "valid/rmse" and BPR.default_monitor == "valid/ndcg@10"
