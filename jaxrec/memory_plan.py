"""The memory plan of a run (``jaxrec train --dry-run``): bytes per device, nothing allocated.

`plan_memory(cfg)` assembles the run with an abstract model (``nnx.eval_shape``: its
parameters are shapes only) and sizes, per device of the run's mesh
(`jaxrec.training.mesh`; the devices present, ``XLA_FLAGS`` may force more on a CPU):

* parameters and the optimiser state (``jax.eval_shape(tx.init)``): row-sharded
  tables divide by ``trainer.mesh.model``, everything else is whole on every device;
* gradients: one more copy of the parameters while a step runs;
* the device-resident training data (`jaxrec.data.device`), replicated (its rows split
  over ``data`` with ``trainer.mesh.rows`` sharded);
* the evaluation block: ``min(eval.user_block, users)`` users x items x 4 bytes of
  scores plus their top-k (values and indices, and the merge's candidates), split over
  ``trainer.mesh.data`` when the block divides, its items over ``trainer.mesh.model``
  (`jaxrec.metrics.item_shards`).

against the device's memory (``device.memory_stats()["bytes_limit"]``; on a CPU the
host's RAM shared by its local devices). Nothing is compiled. A plan that does not
fit is refused with one line saying what to change.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import numpy as np


@dataclasses.dataclass
class MemoryPlan:
    """Bytes per device of each part of a run, and what the device has."""

    parts: dict[str, int]  # name -> bytes per device
    notes: dict[str, str]  # name -> how it was computed
    mesh: dict[str, int]
    available: int
    source: str  # where ``available`` came from

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def table(self) -> str:
        """The plan as printed by ``--dry-run``."""
        lines = [f"memory plan per device (mesh data={self.mesh['data']} x "
                 f"model={self.mesh['model']}; nothing allocated or compiled)"]
        for name, size in self.parts.items():
            lines.append(f"  {name:<20}{human(size):>12}  {self.notes[name]}")
        lines.append(f"  {'total':<20}{human(self.total):>12}")
        lines.append(f"  {'available':<20}{human(self.available):>12}  {self.source}")
        share = 100.0 * self.total / max(self.available, 1)
        lines.append(f"fits: {share:.1f}% of the available memory" if self.fits else
                     f"does not fit: {share:.0f}% of the available memory")
        return "\n".join(lines)

    @property
    def fits(self) -> bool:
        return self.total <= self.available

    def advice(self, *, model: int, user_block: int) -> str:
        """The one line refusing a plan that does not fit."""
        tables = self.parts["parameters"] + self.parts["optimizer state"] + \
            self.parts["gradients"]
        if self.parts["evaluation block"] > tables and self.parts["evaluation block"] > \
                self.parts["training data"]:
            fix = f"lower eval.user_block (now {user_block})"
        elif self.parts["training data"] > tables:
            fix = "use devices with more memory (the training data is on every device)"
        else:
            fix = f"raise trainer.mesh.model (now {model}; tables' rows split over it) or " \
                  "lower model.dim"
        return (f"--dry-run: the run needs {human(self.total)} per device but "
                f"{human(self.available)} is available ({self.source}); {fix}")


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def nbytes(x) -> int:
    """Bytes of an array or shape (64-bit types count as JAX stores them, 32-bit;
    a PRNG key as its key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return math.prod(x.shape) * 8  # two uint32 words (threefry)
    return math.prod(x.shape) * np.dtype(jax.dtypes.canonicalize_dtype(x.dtype)).itemsize


def per_device(tree, plan) -> tuple[int, int]:
    """``(bytes per device, leaves row-sharded)`` of ``tree`` placed by ``plan``."""
    from jaxrec.training.mesh import path_name

    total, sharded = 0, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        size = nbytes(leaf)
        if plan is not None and plan.placement(path_name(path), tuple(leaf.shape)) == "rows":
            size, sharded = size // plan.axes["model"], sharded + 1
        total += size
    return total, sharded


def device_memory() -> tuple[int, str]:
    """``(bytes, where from)`` one device may use."""
    device = jax.devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # backends without allocator statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{device.device_kind} memory_stats bytes_limit"
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    local = jax.local_device_count()
    return ram // local, f"host RAM / {local} local {device.platform} device(s)"


def plan_memory(cfg) -> MemoryPlan:
    """The memory plan of the run ``cfg`` (see the module docstring); one-line errors for
    configs a run would refuse."""
    from flax import nnx

    from jaxrec.assembly import assemble
    from jaxrec.data.device import host_arrays
    from jaxrec.data.sampling import negative_pool
    from jaxrec.models.base import row_inputs
    from jaxrec.runner import mesh_plan
    from jaxrec.training.batch_rows import ROW_FIELDS
    from jaxrec.training.mesh import describe

    run = assemble(cfg, evaluate=False, abstract=True)
    plan = mesh_plan(run)
    mesh = describe(plan)["mesh"]
    _, params, rest = nnx.split(run.model, nnx.Param, ...)
    opt = jax.eval_shape(run.tx.init, params)
    parts, notes = {}, {}
    size, sharded = per_device(params, plan)
    parts["parameters"] = size
    notes["parameters"] = (f"{len(jax.tree.leaves(params))} arrays, {sharded} row-sharded "
                           f"over model={mesh['model']}")
    parts["model state"], _ = per_device(rest, plan)
    notes["model state"] = "non-parameter variables (RNG state, statistics)"
    parts["optimizer state"], _ = per_device(opt, plan)
    notes["optimizer state"] = f"{run.optim.name}: moments sharded like their parameters"
    parts["gradients"] = parts["parameters"] if run.loss.rows != "none" else 0
    notes["gradients"] = "one copy of the parameters during a step"
    train = run.dataset.train
    arrays = host_arrays(train, negative_pool(train.items, train.num_items, run.negatives),
                         rows=run.loss.rows, extra=row_inputs(run.model, train))
    rows_split = mesh["data"] if getattr(plan, "shard_rows", False) else 1
    per_row = {*ROW_FIELDS, *row_inputs(run.model, train)}
    parts["training data"] = sum(nbytes(a) // (rows_split if name in per_row else 1)
                                 for name, a in arrays.items())
    notes["training data"] = (f"{len(train):,} training interactions + CSR, on every device"
                              if rows_split == 1 else f"{len(train):,} training rows split "
                              f"over data={rows_split} (trainer.mesh.rows), CSR on every device")
    users, items = run.dataset.info.num_users, run.dataset.info.num_items
    block = min(run.eval_cfg.user_block, users)
    k = min(max(run.eval_cfg.ks), items)
    split = mesh["data"] if block % mesh["data"] == 0 else 1
    tiles = mesh["model"] if block % mesh["data"] == 0 else 1  # items over model
    merge = 2 if tiles > 1 else 1  # the tiles' gathered candidates, then the merged top-k
    tile_items = -(-items // tiles)  # metrics.item_shards pads the last tile
    parts["evaluation block"] = (block * tile_items * 4 + block * k * 8 * merge) // split
    notes["evaluation block"] = (f"{block} users x {items:,} items x 4 B + top-{k}, "
                                 f"split over data={split}, items over model={tiles}")
    available, source = device_memory()
    return MemoryPlan(parts=parts, notes=notes, mesh=mesh, available=available, source=source)


def dry_run(cfg) -> MemoryPlan:
    """Print the plan of ``cfg``; a ``ValueError`` (one line) when it does not fit."""
    from jaxrec.config import TrainerConfig, typed

    plan = plan_memory(cfg)
    print(plan.table(), flush=True)
    if not plan.fits:
        trainer = typed(cfg, "trainer", TrainerConfig)
        raise ValueError(plan.advice(model=trainer.mesh.model,
                                     user_block=int(cfg.eval.user_block)))
    return plan
