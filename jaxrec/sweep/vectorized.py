"""Vectorised trials: K configurations trained as stacked states in one compiled program.

Trials whose resolved configs differ only in :data:`VECTOR_KEYS` (learning rate,
weight decay, L2 weight, init scale, seed) share the data, the model graph and
the optimiser's structure. Their parameter and optimiser states are stacked on
a leading ``K`` axis and one ``jax.jit(jax.vmap(epoch))`` trains them all:

* the learning rate and weight decay are injected optimiser hyperparameters
  (arrays in each member's optimiser state), the L2 weight reaches the step as
  a per-member hyperparameter (`jaxrec.training.step.make_train_step`), the init
  scale and seed only change the initial state (a dropout rate that is a model
  attribute changes the graph: such trials are not vectorised);
* every member is assembled like a single run (`jaxrec.assembly.assemble`: every
  check, before compiling) and trained by the one training loop
  (`jaxrec.training.loop.fit`), which keeps each member's batch order, keys,
  early stopping and divergence apart, so a member reproduces the separately
  trained run to float tolerance;
* with several local devices the member axis is placed on them (a 1-D mesh
  ``members``, `jaxrec.training.mesh.member_plan`): 16 members on 8 devices train
  2 per device, each on the arithmetic of the one-device program.

This module only groups trials and stacks them; each member then writes the
same run directory as ``jaxrec train`` (`jaxrec.runner.finish`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import jax
from omegaconf import DictConfig

VECTOR_KEYS = ("seed", "optim.lr", "optim.weight_decay", "loss.l2", "model.init_std",
               "model.dropout", "model.dropout_rate")
_BOOKKEEPING = ("name", "paths.output_dir", "logger.group", "logger.tags")
_STATE_COPIES = 4  # state + gradients/updates + the new state + the best copy, per member


class NotVectorizable(ValueError):
    """The configs cannot share one program (different graphs or optimiser structures)."""


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.get(p)
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)


def group_key(resolved: dict) -> str:
    """Trials with equal keys differ only in vectorisable hyperparameters."""
    tree = json.loads(json.dumps(resolved, default=str))
    for key in (*VECTOR_KEYS, *_BOOKKEEPING):
        _drop(tree, key)
    return hashlib.sha1(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]


def _memory_bytes() -> int:
    """Memory of the device the arrays live on (host RAM for the CPU backend)."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        return int(stats.get("bytes_limit", 16 * 2**30))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * 2**30


def _cache_bytes(level: int = 2) -> int:
    """Size of one core's cache of ``level`` (0 when unknown)."""
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if int((index / "level").read_text()) != level or \
                    (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        return int(size.rstrip("KMG")) * scale
    return 0


def state_bytes(state) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes"))


def group_limits(per_member_bytes: int, *, cap: int, budget_mb: float = 0.0,
                 platform: str | None = None) -> tuple[int, int]:
    """``(group size, lanes)`` for members whose training state takes ``per_member_bytes``.

    The group size (members compiled and trained together) is bounded by memory:
    ``budget_mb`` or a quarter of the device's memory for all members' states
    and their working copies. Lanes (members stepped side by side by ``jax.vmap``)
    are bounded by the accelerator's memory too, but on a CPU by one core's L2
    cache: measured on this 2-core CPU, stacked MF states that spill out of
    cache step 1.3-3.5x slower per member than one state alone, so larger CPU
    groups step their members one after another through one compiled program.
    """
    working = max(per_member_bytes * _STATE_COPIES, 1)
    budget = int(budget_mb * 2**20) if budget_mb > 0 else _memory_bytes() // 4
    size = max(1, min(cap, budget // working))
    platform = platform or jax.devices()[0].platform
    if platform != "cpu":
        return size, size
    cache = _cache_bytes(2) or 2**20
    return size, max(1, min(size, cache // working))


def group_size_for(cfg: DictConfig, dataset, *, cap: int, budget_mb: float = 0.0
                   ) -> tuple[int, int]:
    """:func:`group_limits` for configs like ``cfg``: assembles one member to measure its state."""
    from jaxrec.assembly import assemble
    from jaxrec.training.step import init_state

    run = assemble(cfg, dataset=dataset, evaluate=False, training=False)
    if run.loss.rows == "none":
        return 1, 1
    _, state = init_state(run.model, run.tx)
    return group_limits(state_bytes(state), cap=cap, budget_mb=budget_mb)


def train_group(cfgs: list[DictConfig], *, dataset=None, lanes: int | None = None,
                on_done=None) -> list[dict | Exception]:
    """Train configs as one group (one compiled program); one results dict or exception each.

    Args:
      cfgs: composed train configs that differ only in :data:`VECTOR_KEYS` (and
        their output dirs and names).
      dataset: the group's dataset (built from ``cfgs[0]`` when None).
      lanes: members stepped side by side by ``jax.vmap`` (per device on a member mesh);
        None: all of them (see `jaxrec.training.loop.fit`).
      on_done: called as ``on_done(index, result_or_exception)`` as soon as a
        member's outputs are written.

    Raises:
      NotVectorizable: the members' model graphs or optimiser states differ, or they
        are fitted in closed form.
    """
    from jaxrec.assembly import assemble
    from jaxrec.runner import (
        checkpoints,
        finish,
        member,
        program,
        start_outputs,
        write_config,
    )
    from jaxrec.training.loop import fit
    from jaxrec.training.mesh import member_plan
    from jaxrec.training.resume import Preempted
    from jaxrec.training.signals import stop_on_signals
    from jaxrec.training.step import init_state

    t_start = time.perf_counter()
    K = len(cfgs)
    for cfg in cfgs:
        write_config(cfg)
    first = assemble(cfgs[0], dataset=dataset)
    if first.loss.rows == "none":
        raise NotVectorizable("closed-form models are not trained by gradient steps")
    if first.eval_cfg.protocol == "sampled" and len({int(c.seed) for c in cfgs}) > 1:
        raise NotVectorizable("eval.protocol=sampled draws each seed's own negatives")
    runs = [first] + [assemble(cfg, dataset=first.dataset,
                               evaluators=(first.valid_evals, first.test_evals))
                      for cfg in cfgs[1:]]
    graphdef, states = None, []
    for run in runs:
        g, state = init_state(run.model, run.tx)
        if graphdef is None:
            graphdef = g
        elif g != graphdef:
            raise NotVectorizable("members build different model graphs")
        if states and jax.tree.structure(state) != jax.tree.structure(states[0]):
            raise NotVectorizable("members have different optimiser state structures")
        states.append(state)
        run.model = None  # the state holds the parameters now
    common = _common_epoch([checkpoints(run) for run in runs])
    members = [member(run, state, hparams={"l2": float(run.loss.l2)}, resume_epoch=common)
               for run, state in zip(runs, states, strict=True)]
    for run, m in zip(runs, members, strict=True):
        start_outputs(run, resumed=m.resume is not None)
    writers = [m.writer for m in members]
    del states
    plan, mesh_note = member_plan(first.trainer.mesh, K)  # the member axis on the devices
    devices = 1 if plan is None else plan.devices
    n_lanes = K // devices if lanes is None else max(1, min(lanes, K // devices))
    outputs: list[dict | Exception | None] = [None] * K

    def done(k: int, result) -> None:
        outcome = result
        if not isinstance(result, Exception):
            group_seconds = time.perf_counter() - t_start
            extra = {"vectorized": {"group_size": K, "lanes": n_lanes, "member": k,
                                    "devices": devices, "group_seconds": group_seconds}}
            if mesh_note:
                extra["vectorized"]["mesh"] = mesh_note
            try:
                outcome = finish(runs[k], result, writers[k], total_seconds=group_seconds / K,
                                 extra=extra)
            except Exception as err:  # one member's failure does not lose the others
                outcome = err
        outputs[k] = outcome
        members[k].checkpoints.close()
        writers[k].close(failed=isinstance(outcome, Exception))
        if on_done is not None:
            on_done(k, outcome)

    try:
        with stop_on_signals() as stop:
            try:
                fit(program(first, graphdef, mesh=plan), members, lanes=n_lanes, on_done=done,
                    stop_requested=stop)
            except Preempted as err:
                err.signum = stop.signum
                raise
    finally:
        for k, writer in enumerate(writers):  # the group failed as a whole (or was stopped)
            if outputs[k] is None:
                members[k].checkpoints.close()
                writer.close(failed=True)
    return outputs  # type: ignore[return-value]


def _common_epoch(stores) -> int | None:
    """The newest epoch every member of a group has a checkpoint of (None: start afresh)."""
    try:
        steps = [set(s.steps()) for s in stores]
    finally:
        for s in stores:
            s.close()
    common = set.intersection(*steps) if steps else set()
    return max(common) if common else None
