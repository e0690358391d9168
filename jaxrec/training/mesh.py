"""Data-parallel training over a device mesh: shardings are data, not code paths.

``trainer.mesh`` names a 2-D mesh ``(data, model)`` of every process's devices
(``jax.devices()``: the local ones, unless `jaxrec.multihost` joined several processes). The epoch
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
plan. Over several processes every process builds the same host values (data, batch
order, initial state) and `to_global` makes them global arrays; the jitted epoch's
arguments are made so on each call (`MeshPlan.jit_epoch`).
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
    """``(data, model)`` sizes for ``num_devices`` devices (one-line errors)."""
    validate_mesh(mesh)
    model = mesh.model
    if mesh.data == -1:
        if num_devices % model:
            raise ValueError(f"trainer.mesh.model: {model} does not divide the {num_devices} "
                             "devices (trainer.mesh.data=-1 takes them all)")
        return num_devices // model, model
    if mesh.data * model > num_devices or num_devices % (mesh.data * model):
        raise ValueError(f"trainer.mesh: data x model = {mesh.data} x {model} must divide the "
                         f"{num_devices} devices")
    return mesh.data, model


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
            chosen = "rows" if len(shape) == 2 and shape[0] in self.table_rows else "replicated"
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
        return to_global(state, self.state_shardings(state))

    def place_data(self, data):
        """The training data (a `TrainData`), replicated on every device of the mesh."""
        return to_global(data, jax.tree.map(lambda _: self.replicated, data))

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
        ins = (shardings, rep, rep, self.batches, self.batches, rep)
        jitted = jax.jit(epoch, donate_argnums=0, in_shardings=ins,
                         out_shardings=(shardings, rep))
        if jax.process_count() == 1:
            return jitted
        def put(args):
            return to_global(args, tuple(
                jax.tree.map(lambda _, s=s: s, a) if isinstance(s, NamedSharding) else s
                for a, s in zip(args, ins, strict=True)))

        return _GlobalArgs(jitted, put)


class _GlobalArgs:
    """A jitted function (or its lowered / compiled form) whose arguments are made global
    arrays first: several processes pass identical host values (batch order, keys)."""

    def __init__(self, fn, put):
        self.fn, self.put = fn, put

    def lower(self, *args):
        return _GlobalArgs(self.fn.lower(*self.put(args)), self.put)

    def compile(self):
        return _GlobalArgs(self.fn.compile(), self.put)

    def __call__(self, *args):
        return self.fn(*self.put(args))


def to_global(tree, shardings):
    """``tree`` placed by ``shardings`` (a matching pytree). On one process: `jax.device_put`.
    Over several, each leaf that is not yet a global array is built from this process's
    copy, which every process holds identically (PRNG keys through their key data)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(x, sharding):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x if x.sharding == sharding else jax.jit(lambda v: v,
                                                            out_shardings=sharding)(x)
        if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = one(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree, shardings)


def make_plan(mesh: MeshConfig, *, batch_size: int, table_rows: tuple[int, ...] = (),
              devices: list | None = None) -> MeshPlan | None:
    """The plan of ``trainer.mesh`` on every process's devices, or None for a one-device
    mesh (the default program, compiled as without a mesh). One-line errors before
    compiling."""
    devices = jax.devices() if devices is None else devices
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
