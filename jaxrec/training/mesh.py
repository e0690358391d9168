"""Data-parallel training over a device mesh: shardings are data, not code paths.

``trainer.mesh`` names a 2-D mesh ``(data, model)`` of local devices. The epoch
program is the same function on one device or many; on a mesh of more than one
device it is jitted with shardings (:meth:`MeshPlan.jit_epoch`):

* batches are split over ``data``: the host-shuffled row order ``perm_NbxB`` is
  sharded on its batch axis, so each step's gathered batch is too. The configured
  ``trainer.batch_size`` is the global batch, so 1 and 8 devices compute the same
  steps (to float rounding of the cross-device reductions);
* parameters are placed by a rule on their shape: a 2-D table whose first
  dimension is the number of users or items is row-sharded over ``model``
  (``PartitionSpec("model", None)``) when its rows divide evenly, everything else
  is replicated; ``trainer.mesh.rules`` overrides it per parameter
  (``{regex over the parameter path: rows | replicated}``);
* the optimiser state follows its parameters (the same rule: its moments have the
  parameters' shapes and paths), the training data is replicated;
* full-ranking evaluation splits each block of users over ``data``.

A mesh of one device (the default on a one-device machine) returns no plan, and
the loop compiles exactly the program it always did. Vectorised sweep groups
(K > 1 stacked members) train on one device: `jaxrec.runner.program` gives them no
plan. One host only (no multi-process meshes yet).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxrec.config import MeshConfig, validate_mesh


def mesh_shape(mesh: MeshConfig, num_devices: int) -> tuple[int, int]:
    """``(data, model)`` sizes for ``num_devices`` local devices (one-line errors)."""
    validate_mesh(mesh)
    model = mesh.model
    if mesh.data == -1:
        if num_devices % model:
            raise ValueError(f"trainer.mesh.model: {model} does not divide the {num_devices} "
                             "local devices (trainer.mesh.data=-1 takes them all)")
        return num_devices // model, model
    if mesh.data * model > num_devices or num_devices % (mesh.data * model):
        raise ValueError(f"trainer.mesh: data x model = {mesh.data} x {model} must divide the "
                         f"{num_devices} local devices")
    return mesh.data, model


def is_table(shape: tuple[int, ...], table_rows: tuple[int, ...], *, vectors: bool = False
             ) -> bool:
    """The row rule: a 2-D parameter whose first dimension is a number of users or items
    (``table_rows``) is a table of per-user / per-item rows (``vectors``: 1-D per-row
    biases too; the row-sparse optimiser, `jaxrec.training.sparse`, updates those)."""
    return (len(shape) == 2 or (vectors and len(shape) == 1)) and shape[0] in table_rows


def path_name(path) -> str:
    """``params/user_emb/embedding``-style name of a pytree key path (``.value`` dropped)."""
    parts = []
    for key in path:
        name = getattr(key, "key", getattr(key, "name", getattr(key, "idx", key)))
        parts.append(str(name))
    return "/".join(p for p in parts if p != "value")


class MeshPlan:
    """Where the arrays of a fit live on a ``(data, model)`` mesh, and the epoch jitted so.

    Args:
      mesh: the `jax.sharding.Mesh` (axes ``data``, ``model``).
      table_rows: first dimensions that make a 2-D parameter a table (users, items).
      rules: ``{regex: rows | replicated}`` overriding the shape rule, matched with
        ``re.search`` against the parameter's path (see :func:`path_name`).
    """

    def __init__(self, mesh: Mesh, *, table_rows: tuple[int, ...] = (),
                 rules: dict[str, str] | None = None):
        self.mesh = mesh
        self.table_rows = set(table_rows)
        self.rules = [(re.compile(k), v) for k, v in dict(rules or {}).items()]
        self.replicated = NamedSharding(mesh, P())
        self.batches = NamedSharding(mesh, P(None, "data"))
        self.rows = NamedSharding(mesh, P("model", None))

    @property
    def axes(self) -> dict[str, int]:
        return {name: int(size) for name, size in self.mesh.shape.items()}

    @property
    def devices(self) -> int:
        return int(self.mesh.devices.size)

    def placement(self, name: str, shape: tuple[int, ...]) -> str:
        """``rows`` or ``replicated`` for the array at path ``name`` of ``shape``."""
        for pattern, placement in self.rules:
            if pattern.search(name):
                chosen = placement
                break
        else:
            chosen = "rows" if is_table(shape, tuple(self.table_rows)) else "replicated"
        if chosen == "rows" and (len(shape) < 1 or shape[0] % self.axes["model"]):
            return "replicated"  # uneven rows stay whole (device_put needs equal shards)
        return chosen

    def state_shardings(self, state) -> Any:
        """A `NamedSharding` per leaf of a train state (or any pytree of parameters)."""
        def one(path, leaf):
            shape = tuple(np.shape(leaf))
            return self.rows if self.placement(path_name(path), shape) == "rows" \
                else self.replicated
        return jax.tree_util.tree_map_with_path(one, state)

    def sharded(self, state) -> list[str]:
        """The paths of the leaves of ``state`` that are row-sharded."""
        flat = jax.tree_util.tree_flatten_with_path(state)[0]
        return [path_name(p) for p, x in flat
                if self.placement(path_name(p), tuple(np.shape(x))) == "rows"]

    def place(self, state):
        """``state`` moved onto the mesh by :meth:`state_shardings` (None stays None)."""
        if state is None:
            return None
        return jax.device_put(state, self.state_shardings(state))

    def place_data(self, data):
        """The training data (a `TrainData`), replicated on every device of the mesh."""
        return jax.device_put(data, self.replicated)

    def place_evaluators(self, evaluators) -> None:
        """Split each full-ranking block's users over ``data`` (when the block divides)."""
        size = self.axes["data"]
        for ev in evaluators:
            block = getattr(ev, "block", 0)
            if hasattr(ev, "place") and block and block % size == 0:
                ev.place(lambda name, x: self.batches if name in ("users", "num_relevant")
                         else self.replicated)

    def prepare(self, program, members, trackers):
        """Before compiling a fit: its members' states (and restored best states), its
        training data and its evaluators onto the mesh; returns the program to fit."""
        import dataclasses

        if len(members) > 1:
            raise ValueError("trainer.mesh: a vectorised group trains on one device")
        for m, t in zip(members, trackers, strict=True):
            m.state = self.place(m.state)
            t.best_state = self.place(t.best_state)
        self.place_evaluators([*program.valid_evals, *program.test_evals])
        return dataclasses.replace(program, data=self.place_data(program.data))

    def jit_epoch(self, epoch, state):
        """``jax.jit(epoch)`` over the mesh, ``epoch(state, data, hparams, perm, mask, key)``;
        the state keeps its shardings from epoch to epoch and is donated."""
        shardings = self.state_shardings(state)
        rep = self.replicated
        return jax.jit(epoch, donate_argnums=0,
                       in_shardings=(shardings, rep, rep, self.batches, self.batches, rep),
                       out_shardings=(shardings, rep))


def make_plan(mesh: MeshConfig, *, batch_size: int, table_rows: tuple[int, ...] = (),
              devices: list | None = None) -> MeshPlan | None:
    """The plan of ``trainer.mesh`` on the local devices, or None for a one-device mesh
    (the default program, compiled as without a mesh). One-line errors before compiling."""
    devices = jax.local_devices() if devices is None else devices
    data, model = mesh_shape(mesh, len(devices))
    if data * model == 1:
        return None
    if batch_size % data:
        raise ValueError(f"trainer.batch_size: {batch_size} must be divisible by "
                         f"trainer.mesh.data={data} (the batch is global, split over devices)")
    grid = np.asarray(devices[:data * model], dtype=object).reshape(data, model)
    return MeshPlan(Mesh(grid, ("data", "model"), axis_types=(AxisType.Auto,) * 2),
                    table_rows=table_rows, rules=mesh.rules)


def group_note(mesh: MeshConfig) -> str | None:
    """The one-line note of a vectorised group whose ``trainer.mesh`` asks for more than
    one device (groups train on one; the mesh applies to single runs), else None."""
    try:
        data, model = mesh_shape(mesh, jax.local_device_count())
    except ValueError as err:
        return f"{err}; a vectorised group trains on one device"
    if data * model == 1:
        return None
    return (f"trainer.mesh asks for {data} x {model} devices; a vectorised group trains on "
            "one device (the mesh applies to single runs)")


def describe(plan: MeshPlan | None) -> dict[str, Any]:
    """The ``devices`` and ``mesh`` fields of ``results.json``."""
    if plan is None:
        return {"devices": 1, "mesh": {"data": 1, "model": 1}}
    return {"devices": plan.devices, "mesh": plan.axes}
