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
  parameters' shapes and paths), the training data is replicated; with
  ``trainer.mesh.rows=sharded`` (``auto``: over several processes) the training rows stay
  on the host and each epoch's batches are placed over ``data``, each process putting
  only its devices' columns (`jaxrec.training.batch_rows`);
* full-ranking evaluation splits each block of users over ``data`` and, with
  ``model > 1``, its items over ``model``: each device scores its ``[U/data, N/model]``
  tile and the tiles' top-k lists are merged on device (`jaxrec.metrics.item_shards`).

A mesh of one device (the default on a one-device machine) returns no plan, and
the loop compiles exactly the program it always did.

Vectorised sweep groups (K > 1 stacked members) place their member axis on the
devices instead (:class:`MemberPlan`, :func:`member_plan`): a 1-D mesh ``members``
of the devices ``trainer.mesh`` asks for (all local devices by default), the
stacked states, hyperparameters and keys sharded ``P("members")`` on their leading
axis, the data replicated. Each member's arithmetic is the one-device program's,
on the device holding its row.
Over several processes every process builds the same host values (data, batch
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
from jaxrec.training.batch_rows import ShardedRows


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
      shard_rows: keep the training rows on the host and place each epoch's batches over
        ``data`` (`jaxrec.training.batch_rows`) instead of replicating the rows.
    """

    def __init__(self, mesh: Mesh, *, table_rows: tuple[int, ...] = (),
                 rules: dict[str, str] | None = None, shard_rows: bool = False):
        self.mesh = mesh
        self.shard_rows = shard_rows
        self.batch_rows: ShardedRows | None = None  # set by `place_data` when shard_rows
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
        return to_global(state, self.state_shardings(state))

    def place_data(self, data):
        """The training data (a `TrainData`), replicated on every device of the mesh (with
        ``shard_rows``: all but its rows, which `jit_epoch` places batch by batch)."""
        if self.shard_rows:
            self.batch_rows, data = ShardedRows.split(data, self.batches)
        return to_global(data, jax.tree.map(lambda _: self.replicated, data))

    def place_evaluators(self, evaluators) -> None:
        """Split each full-ranking block's users over ``data`` (when the block divides) and,
        with ``model > 1``, its items over ``model`` (`RankingEvaluator.shard_items`)."""
        size = self.axes["data"]
        for ev in evaluators:
            block = getattr(ev, "block", 0)
            if hasattr(ev, "place") and block and block % size == 0:
                ev.place(lambda name, x: self.batches if name in ("users", "num_relevant")
                         else self.replicated)
                if hasattr(ev, "shard_items"):
                    ev.shard_items(self.mesh)

    def prepare(self, program, members, trackers):
        """Before compiling a fit: its members' states (and restored best states), its
        training data and its evaluators onto the mesh; returns the program to fit."""
        import dataclasses

        if len(members) > 1:
            raise ValueError("trainer.mesh: a vectorised group trains on a member mesh "
                             "(MemberPlan), not a data x model mesh")
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
        if jax.process_count() == 1 and not self.shard_rows:
            return jitted

        def put(args):
            if self.shard_rows:  # the order's rows (placed by `place_data`), not the order
                args = (*args[:3], self.batch_rows.batches(args[3]), *args[4:])
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
    shard_rows = mesh.rows == "sharded" or (mesh.rows == "auto" and jax.process_count() > 1)
    return MeshPlan(Mesh(grid, ("data", "model"), axis_types=(AxisType.Auto,) * 2),
                    table_rows=table_rows, rules=mesh.rules, shard_rows=shard_rows)


class MemberPlan:
    """The stacked members of a vectorised group on a 1-D mesh axis ``members``.

    Chunks of the group (`jaxrec.training.chunks`) are sized to multiples of the
    axis (:attr:`multiple`); each chunk's stacked state is sharded on its leading
    axis, so a chunk of 16 members on 8 devices holds 2 members per device.
    """

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.replicated = NamedSharding(mesh, P())
        self.members = NamedSharding(mesh, P("members"))

    @property
    def axes(self) -> dict[str, int]:
        return {"members": int(self.mesh.devices.size)}

    @property
    def devices(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def multiple(self) -> int:
        """Chunk widths are multiples of this (the number of devices)."""
        return self.devices

    def prepare(self, program, members, trackers):
        """Before compiling: the training data replicated on the member devices."""
        import dataclasses

        return dataclasses.replace(program, data=jax.device_put(program.data, self.replicated))

    def place_chunk(self, chunk) -> None:
        """A stacked chunk's state and hyperparameters, sharded on their member axis."""
        chunk.state = jax.device_put(chunk.state, self.members)
        chunk.hparams = jax.device_put(chunk.hparams, self.members)
        chunk.home = self.mesh.devices.flat[0]

    def jit_stacked(self, fn, *, shared_order: bool):
        """``jax.jit(fn)`` of the stacked epoch ``fn(state, data, hparams, active, perm, mask,
        keys)``: member-axis arguments sharded, the data (and a shared order) replicated."""
        m, rep = self.members, self.replicated
        order = rep if shared_order else m
        return jax.jit(fn, donate_argnums=0, in_shardings=(m, rep, m, m, order, order, m),
                       out_shardings=(m, m))


def requested_devices(mesh: MeshConfig) -> int:
    """The local devices ``trainer.mesh`` asks for (1 when it does not fit them)."""
    try:
        data, model = mesh_shape(mesh, jax.local_device_count())
    except ValueError:
        return 1
    return data * model


def member_devices(mesh: MeshConfig, members: int) -> tuple[int, str | None]:
    """How many devices a group of ``members`` places its member axis on: the largest
    divisor of ``members`` not above the devices ``trainer.mesh`` asks for, and a note
    when that is fewer than it asks for (None otherwise)."""
    try:
        mesh_shape(mesh, jax.local_device_count())
    except ValueError as err:
        return 1, f"{err}; the vectorised group trains on one device"
    wanted = requested_devices(mesh)
    n = max(d for d in range(1, min(wanted, members) + 1) if members % d == 0)
    if n == wanted:
        return n, None
    return n, (f"trainer.mesh asks for {wanted} devices; the group's {members} members are "
               f"placed on {n} (the largest divisor of {members} that fits)")


def member_plan(mesh: MeshConfig, members: int,
                devices: list | None = None) -> tuple[MemberPlan | None, str | None]:
    """``(plan, note)`` for a vectorised group of ``members``; no plan on one device."""
    n, note = member_devices(mesh, members)
    if n == 1:
        return None, note
    devices = jax.local_devices() if devices is None else devices
    grid = np.asarray(devices[:n], dtype=object)
    return MemberPlan(Mesh(grid, ("members",), axis_types=(AxisType.Auto,))), note


def describe(plan: MeshPlan | None) -> dict[str, Any]:
    """The ``devices`` and ``mesh`` fields of ``results.json``."""
    if plan is None:
        return {"devices": 1, "mesh": {"data": 1, "model": 1}}
    return {"devices": plan.devices, "mesh": plan.axes}
