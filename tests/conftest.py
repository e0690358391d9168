"""Shared test setup: strict rank promotion, offline W&B, the real-data folder."""

import os
import tempfile

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_DIR", tempfile.mkdtemp(prefix="jaxrec-wandb-"))
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def data_dir():
    """The folder holding ml-latest-small (JAXREC_DATA_DIR); skips when unset."""
    path = os.environ.get("JAXREC_DATA_DIR")
    if not path or not os.path.isdir(os.path.join(path, "ml-latest-small")):
        pytest.skip("JAXREC_DATA_DIR does not hold ml-latest-small")
    return path
