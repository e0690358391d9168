"""Best-state checkpoints with orbax-checkpoint (written to a temporary folder, then renamed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO


def save_params(path: str | os.PathLike, params: nnx.State) -> None:
    """Save the parameter state at ``path`` (replacing an older checkpoint there)."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    pure = jax.tree.map(np.asarray, params.to_pure_dict())
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path, pure, force=True)
        ckptr.wait_until_finished()


def restore_params(path: str | os.PathLike, template: nnx.State) -> nnx.State:
    """Restore a parameter state saved by :func:`save_params` into the structure of ``template``."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: no checkpoint at {path}")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                            template.to_pure_dict())
    with ocp.StandardCheckpointer() as ckptr:
        restored: Any = ckptr.restore(path, abstract)
    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, jax.tree.map(jax.numpy.asarray, restored))  # onto devices
    return state
