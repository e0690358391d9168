"""Exact resume: what a member's periodic checkpoint holds, and when the loop writes one.

A member's checkpoint (``<run dir>/checkpoints/state/<epoch>``, orbax, atomic)
holds everything its future depends on: the train state (parameters, optimiser
state, step, model RNG state), the best state so far, and a JSON record of the
early-stopping tracker, the host RNG that orders batches, the byte length of
``metrics.jsonl`` and the W&B run id at that epoch, and the config that produced
it. Batch keys are ``fold_in(key(seed), epoch)``, so with these restored the
remaining epochs run exactly as they would have: a resumed run ends with
bitwise-identical metrics on CPU (on GPU: up to non-deterministic reductions).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from jaxrec.training.checkpoint import CheckpointError, StateCheckpoints

# Keys that do not change what a run computes: a resumed run may differ in them.
BOOKKEEPING = ("name", "logger", "paths", "trainer.progress", "trainer.resume",
               "trainer.checkpoint_every", "trainer.checkpoint_seconds",
               "trainer.keep_checkpoints", "trainer.save_checkpoint", "eval.save_per_user",
               "trainer.mesh", "trainer.distributed", "trainer.dry_run")
#   a mesh (of one process or several) changes float rounding only: resume on another


class Preempted(RuntimeError):
    """Training stopped on a signal after writing a checkpoint; resume with the same command."""


@dataclasses.dataclass
class Resume:
    """A member's restored training: continue after ``epoch``."""

    epoch: int
    state: Any  # jaxrec.training.step.TrainState
    best_state: Any  # (params, rest) or None
    tracker: dict[str, Any]
    writer: dict[str, Any]  # writer positions (metrics.jsonl offset, W&B run id)


def comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    """The flattened config without the :data:`BOOKKEEPING` keys."""
    flat: dict[str, Any] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            flat[prefix[:-1]] = node

    walk(resolved, "")
    return {k: v for k, v in flat.items()
            if not any(k == b or k.startswith(b + ".") for b in BOOKKEEPING)}


class MemberCheckpoints:
    """The periodic checkpoints of one member, and the policy of when to write them.

    Args:
      directory: ``<run dir>/checkpoints/state``.
      every: save after every ``every`` epochs (0: only when stopped by a signal).
      seconds: ... but not sooner than ``seconds`` after the previous save (0: no limit).
      keep: complete checkpoints kept.
      config: the run's resolved config; a checkpoint of another config is refused.
    """

    def __init__(self, directory: str | Path, *, every: int, seconds: float, keep: int,
                 config: dict[str, Any]):
        self.store = StateCheckpoints(directory, keep=keep)
        self.every, self.seconds = every, seconds
        self.config = comparable(config)
        self._last = time.monotonic()

    def due(self, epoch: int) -> bool:
        return bool(self.every) and epoch % self.every == 0 and (
            time.monotonic() - self._last >= self.seconds)

    def save(self, epoch: int, state: Any, best_state: Any, tracker: dict[str, Any],
             writer: dict[str, Any]) -> None:
        meta = {"epoch": epoch, "tracker": _jsonable(tracker), "writer": writer,
                "has_best": best_state is not None, "config": self.config}
        self.store.save(epoch, {"state": state, "best": best_state}, meta)
        self._last = time.monotonic()

    def steps(self) -> list[int]:
        return self.store.steps()

    def load(self, template_state: Any, epoch: int | None = None) -> Resume | None:
        """The member's checkpoint at ``epoch`` (default: the latest), or None when none."""
        epoch = self.store.latest() if epoch is None else epoch
        if epoch is None:
            return None
        meta = self.store.meta(epoch)  # the config first: a refused checkpoint is not read
        differ = sorted(k for k in set(meta["config"]) | set(self.config)
                        if meta["config"].get(k) != self.config.get(k))
        if differ:
            shown = ", ".join(f"{k} ({meta['config'].get(k)!r} -> {self.config.get(k)!r})"
                              for k in differ[:5])
            raise CheckpointError(f"trainer.resume: the checkpoint in {self.store.dir} was "
                                  f"written by another config: {shown}; use "
                                  "trainer.resume=never or another paths.output_dir")
        template = {"state": template_state, "best": (
            (template_state.params, template_state.rest) if meta["has_best"] else None)}
        tree, meta = self.store.restore(template, epoch)
        tracker = dict(meta["tracker"])
        if tracker.get("best_score") is None:
            tracker["best_score"] = -math.inf
        return Resume(epoch=int(meta["epoch"]), state=tree["state"],
                      best_state=tree["best"] if meta["has_best"] else None, tracker=tracker,
                      writer=dict(meta["writer"]))

    def close(self) -> None:
        self.store.close()


def _jsonable(tracker: dict[str, Any]) -> dict[str, Any]:
    out = dict(tracker)
    if not math.isfinite(out.get("best_score", 0.0)):
        out["best_score"] = None
    return out
