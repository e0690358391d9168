"""Chunks of trial members stepped together by one compiled epoch program.

A chunk of several members holds their states stacked on a leading axis and
steps them with ``jax.jit(jax.vmap(epoch))``, a stopped member frozen by an
``active`` mask; a chunk of one holds a plain state and steps it with the
jitted epoch a single run uses. Chunks of the same width share one program.
With a member mesh (`jaxrec.training.mesh.MemberPlan`) chunk widths are multiples
of its devices and each stacked chunk is sharded on its member axis.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.training.step import epoch_program, make_solver_epoch_fn, make_train_step


@jax.jit
def _copy(tree):
    """A copy of every array of ``tree`` (one program, not one per array)."""
    return jax.tree.map(jnp.copy, tree)


@jax.jit
def _member(tree, pos):
    """Member ``pos`` of a stacked ``tree`` (``pos`` traced: one program for every member)."""
    return jax.tree.map(lambda x: x[pos], tree)


class Chunk:
    """Members ``indices`` of a fit, stacked (``len > 1``) or alone."""

    def __init__(self, indices: list[int], states: list, hparams: list[dict[str, float]]):
        self.indices = indices
        self.stacked = len(indices) > 1
        if self.stacked:
            self.state = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
            self.hparams = {k: jnp.asarray([h[k] for h in hparams], jnp.float32)
                            for k in hparams[0]}
        else:
            self.state = states[0]
            self.hparams = {k: jnp.asarray(v, jnp.float32) for k, v in hparams[0].items()}
        self.program = None
        self.home = None  # with a member mesh: the device members are gathered to

    def _member(self, tree, pos: int):
        """Member ``pos`` of a stacked tree: one program on one device; with a member mesh,
        each array's row from the shard that holds it (no cross-device program), moved to
        ``home``."""
        if self.home is None:
            return _member(tree, pos)
        return jax.tree.map(lambda x: self._row(x, pos), tree)

    def _row(self, x, pos: int):
        for shard in x.addressable_shards:
            rows = shard.index[0] if shard.index else slice(None)
            start = rows.start or 0
            stop = x.shape[0] if rows.stop is None else rows.stop
            if start <= pos < stop:
                return jax.device_put(shard.data[pos - start], self.home)
        raise IndexError(pos)

    def member_state(self, pos: int, *, copy: bool = False):
        """``(params, rest)`` of the member at ``pos``; ``copy`` for a state that must
        outlive the next (donating) epoch."""
        if self.stacked:
            return self._member((self.state.params, self.state.rest), pos)
        state = (self.state.params, self.state.rest)
        return _copy(state) if copy else state

    def member_train_state(self, pos: int):
        """The whole `TrainState` of the member at ``pos`` (a copy for a stacked chunk)."""
        if self.stacked:
            return self._member(self.state, pos)
        return self.state

    def args(self, data, trackers, epoch: int, shared_order: bool) -> tuple:
        ts = [trackers[k] for k in self.indices]
        if not self.stacked:
            t = ts[0]
            return (self.state, data, self.hparams, t.perm, t.mask,
                    jax.random.fold_in(t.key, epoch))
        order = (ts[0].perm, ts[0].mask) if shared_order else (
            np.stack([t.perm for t in ts]), np.stack([t.mask for t in ts]))
        keys = jnp.stack([jax.random.fold_in(t.key, epoch) for t in ts])
        return (self.state, data, self.hparams, jnp.asarray([t.active for t in ts]), *order,
                keys)

    def step(self, program, trackers, epoch: int, shared_order: bool) -> jax.Array:
        """Dispatch one epoch (asynchronously); returns the losses, ``[2]`` or ``[K_chunk, 2]``:
        the epoch's mean and its first step's."""
        self.state, loss = self.program(*self.args(program.data, trackers, epoch, shared_order))
        return loss


def make_chunks(members: list, *, lanes: int, multiple: int = 1) -> list[Chunk]:
    """Balanced chunks of at most ``lanes`` members (16 members in lanes of 6: 6, 6, 4).

    With ``multiple`` > 1 (a member mesh's devices, which must divide the members)
    ``lanes`` counts members per device and every chunk's width is a multiple of it
    (16 members on 8 devices in lanes of 1: 8, 8)."""
    K = len(members)
    if K % multiple:
        raise ValueError(f"{K} members do not split over {multiple} devices")
    rows = K // multiple
    lanes = max(1, min(lanes, rows))
    n_chunks = -(-rows // lanes)
    size = -(-rows // n_chunks) * multiple
    return [Chunk(list(range(i, min(i + size, K))), [m.state for m in members[i:i + size]],
                  [m.hparams for m in members[i:i + size]]) for i in range(0, K, size)]


def epoch_programs(program, *, shared_order: bool, state=None) -> tuple[Any, Any]:
    """``(single, stacked)`` jitted epoch programs of a fit (the state is donated).

    ``single(state, data, hparams, perm, mask, key) -> (state, [mean loss, first step's])``;
    ``stacked`` is its vmap over
    a leading member axis, with an ``active`` mask after ``hparams`` and the batch
    order shared by all members when ``shared_order``. With a device mesh
    (``program.mesh``) ``single`` is jitted with the shardings of ``state``.
    """
    if program.loss.rows == "none":  # closed form: one solve per epoch, never stacked
        plan = getattr(program, "privacy", None)
        if plan is not None:  # private iALS (privacy.method=als)
            from jaxrec.training.dp_als import make_private_als_epoch_fn

            return make_private_als_epoch_fn(program.graphdef, plan), None
        return make_solver_epoch_fn(program.graphdef, with_first=True), None
    epoch = epoch_program(train_step(program), with_first=True)

    def member(state, data, hparams, active, perm, mask, key):
        new_state, loss = epoch(state, data, hparams, perm, mask, key)
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new_state, state), loss

    order_axis = None if shared_order else 0
    vmapped = jax.vmap(member, in_axes=(0, None, 0, 0, order_axis, order_axis, 0))
    mesh = getattr(program, "mesh", None)  # jaxrec.training.mesh.MeshPlan or MemberPlan
    if hasattr(mesh, "jit_stacked"):  # the member axis on the devices
        return jax.jit(epoch, donate_argnums=0), mesh.jit_stacked(vmapped,
                                                                  shared_order=shared_order)
    stacked = jax.jit(vmapped, donate_argnums=0)
    if mesh is not None:
        return mesh.jit_epoch(epoch, state), stacked
    return jax.jit(epoch, donate_argnums=0), stacked


def train_step(program):
    """The program's train step: the ordinary one, or DP-SGD's when it has a privacy plan."""
    plan = getattr(program, "privacy", None)
    if plan is None:
        return make_train_step(program.graphdef, program.loss, program.tx)
    from jaxrec.training.dp import make_dp_train_step

    return make_dp_train_step(program.graphdef, program.loss, program.tx,
                              clip_norm=plan.clip_norm, noise_multiplier=plan.noise_multiplier,
                              denominator=plan.denominator, chunk=plan.chunk,
                              private_names=plan.private_names)


def compile_programs(program, chunks: list[Chunk], trackers, *, shared_order: bool) -> None:
    """Compile (ahead of time) one executable per chunk width and give each chunk its own."""
    single, stacked = epoch_programs(program, shared_order=shared_order, state=chunks[0].state)
    if stacked is None and any(c.stacked for c in chunks):
        raise ValueError("closed-form models (loss=none) train one member at a time")
    place = getattr(getattr(program, "mesh", None), "place_chunk", None)
    for chunk in chunks:
        if place is not None and chunk.stacked:
            place(chunk)
    compiled: dict[int, Any] = {}
    for chunk in chunks:
        width = len(chunk.indices) if chunk.stacked else 1
        if width not in compiled:
            fn = stacked if chunk.stacked else single
            compiled[width] = fn.lower(*chunk.args(program.data, trackers, 1,
                                                   shared_order)).compile()
        chunk.program = compiled[width]
