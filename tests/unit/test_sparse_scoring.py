"""Sparse-aware fold-in scoring (EASE): the product from the history's nonzeros equals the
dense product (numpy), including empty rows, padding chunks and the over-capacity fallback."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxrec.models.layers.history import sparse_history_product


@pytest.mark.parametrize("cap", [40, 7])  # 7 < the nonzeros: the dense fallback
def test_sparse_history_product_equals_dense_numpy(cap):
    rng = np.random.default_rng(0)
    history = rng.random((6, 9)) < 0.4
    history[2] = False  # a user with no history scores 0 everywhere
    weights = rng.normal(size=(9, 5)).astype(np.float32)
    got = jax.jit(lambda h, w: sparse_history_product(h, w, cap=cap, chunk=4))(history, weights)
    np.testing.assert_allclose(np.asarray(got), history.astype(np.float32) @ weights,
                               rtol=1e-5, atol=1e-6)
    assert history.sum() > 7
