"""Checkpoints with orbax-checkpoint: the best parameters, and the whole training state.

``checkpoints/best``: the best validated parameters of a finished run (what
``evaluate`` and ``recommend`` restore). A new one is written beside the old one
and swapped in by renames, so a crash at any point leaves a complete checkpoint
(the old or the new) and never a half-deleted one.

``checkpoints/state``: the whole state of a run in training (`StateCheckpoints`),
kept by an orbax ``CheckpointManager`` (atomic: each step is written to a
temporary folder and renamed when complete; the last ``keep`` steps are kept),
from which ``trainer.resume=auto`` continues bitwise-identically.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from jaxrec.multihost import barrier, fetch, is_primary

logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: one line naming the folder and what is wrong."""


def save_params(path: str | os.PathLike, params: nnx.State) -> None:
    """Save the parameter state at ``path``, replacing an older checkpoint there atomically."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    several = jax.process_count() > 1  # every process saves (orbax syncs them), 0 renames
    fresh = path.with_name(f"{path.name}.tmp-{'hosts' if several else os.getpid()}")
    old = path.with_name(f"{path.name}.old")
    if is_primary():
        shutil.rmtree(fresh, ignore_errors=True)
    barrier("jaxrec-save-params-start")
    pure = jax.tree.map(fetch, params.to_pure_dict())
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(fresh, pure)
        ckptr.wait_until_finished()
    if is_primary():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)  # a crash from here on leaves `old`, which _existing() falls back to
        fresh.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    barrier("jaxrec-save-params-done")


def _existing(path: Path) -> Path:
    """``path``, or the previous checkpoint a crash mid-swap left beside it."""
    old = path.with_name(f"{path.name}.old")
    return old if not path.exists() and old.is_dir() else path


def restore_params(path: str | os.PathLike, template: nnx.State) -> nnx.State:
    """Restore a parameter state saved by :func:`save_params` into the structure of
    ``template``, onto the default device."""
    import orbax.checkpoint as ocp

    path = _existing(Path(path).absolute())
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint: no checkpoint at {path}")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                            template.to_pure_dict())
    try:
        with ocp.StandardCheckpointer() as ckptr:
            restored: Any = ckptr.restore(path, abstract)
    except Exception as err:  # corrupt, truncated or from another model
        raise CheckpointError(f"checkpoint {path}: cannot be restored ("
                              f"{type(err).__name__}: {' '.join(str(err).split())[:200]})"
                              ) from None
    state = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(state, jax.tree.map(jax.numpy.asarray, restored))  # onto devices
    return state


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


class StateCheckpoints:
    """The whole training state of one run (or one sweep member), by epoch.

    ``save(epoch, tree, meta)`` writes the arrays of ``tree`` (any pytree: the train
    state, the best state) and a JSON ``meta`` record (the early-stopping tracker, the
    host RNG state, the metrics.jsonl offset, the config); ``restore(template)``
    returns ``(tree, meta)`` of the latest step with ``template``'s structure (PRNG key
    arrays are stored as their key data). Saves are asynchronous: arrays are copied to
    the host first, so training may go on (and donate its buffers) while files are
    written.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 2):
        import orbax.checkpoint as ocp

        self.dir = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max(1, keep), create=True,
                                               cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.dir, options=options)
        # orbax removes the temporary folders of an interrupted save in a thread that
        # close() does not wait for; a second manager on this folder (a group resuming,
        # a fresh start removing it) would race it. Wait for it here.
        wait = getattr(self._manager, "_maybe_await_cleanup_tmp_directory", None)
        if wait is not None:
            wait()

    def latest(self) -> int | None:
        """The newest complete epoch saved, or None."""
        return self._manager.latest_step()

    def steps(self) -> list[int]:
        """Every complete epoch kept, oldest first."""
        return sorted(self._manager.all_steps())

    def meta(self, epoch: int) -> dict[str, Any]:
        """The JSON record of ``epoch`` alone."""
        import orbax.checkpoint as ocp

        try:
            out = self._manager.restore(epoch, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))
        except Exception as err:
            raise CheckpointError(f"checkpoint {self.dir}/{epoch}: cannot be read ("
                                  f"{type(err).__name__}: {' '.join(str(err).split())[:200]})"
                                  ) from None
        return dict(out["meta"])

    def save(self, epoch: int, tree: Any, meta: dict[str, Any]) -> None:
        import orbax.checkpoint as ocp

        leaves = jax.tree.leaves(tree)
        arrays = {f"{i:05d}": fetch(jax.random.key_data(x) if _is_key(x) else x)
                  for i, x in enumerate(leaves)}
        self._manager.save(epoch, args=ocp.args.Composite(
            arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)))

    def restore(self, template: Any, epoch: int | None = None) -> tuple[Any, dict[str, Any]]:
        import orbax.checkpoint as ocp

        epoch = self.latest() if epoch is None else epoch
        leaves, treedef = jax.tree.flatten(template)
        abstract = {f"{i:05d}": jax.ShapeDtypeStruct(
            np.shape(jax.random.key_data(x) if _is_key(x) else x),
            jax.random.key_data(x).dtype if _is_key(x) else x.dtype)
            for i, x in enumerate(leaves)}
        try:
            out = self._manager.restore(epoch, args=ocp.args.Composite(
                arrays=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        except Exception as err:
            raise CheckpointError(f"checkpoint {self.dir}/{epoch}: cannot be restored ("
                                  f"{type(err).__name__}: {' '.join(str(err).split())[:200]})"
                                  ) from None
        arrays = out["arrays"]
        restored = [jax.random.wrap_key_data(jax.numpy.asarray(arrays[f"{i:05d}"]),
                                             impl=jax.random.key_impl(x))
                    if _is_key(x) else jax.numpy.asarray(arrays[f"{i:05d}"])
                    for i, x in enumerate(leaves)]
        return jax.tree.unflatten(treedef, restored), dict(out["meta"])

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
