"""Training rows kept on the host, each epoch's batches placed sharded over ``data``.

With ``trainer.mesh.rows=sharded`` (the default over several processes) no device holds
the training rows (``users``, ``items``, ``ratings`` of `jaxrec.data.device.TrainData`)
as a whole: each epoch the host gathers the rows of the shuffled order ``perm_NbxB``
and places them ``P(None, "data")``, and `jax.make_array_from_callback` asks each
process only for the batch columns of its own devices. The batches are exactly those
the replicated rows give (the same order, gathered on the host instead of on device),
so the metrics do not change; the cost is a host gather and a host-to-device copy of
``12 B x rows / data`` per device each epoch. The CSR, item counts and negative pool
stay replicated (a negative sampler may look up any user).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

ROW_FIELDS = ("users", "items", "ratings")


class ShardedRows:
    """The host copy of the training rows and the sharding each epoch's batches take."""

    def __init__(self, host: dict[str, np.ndarray], sharding):
        self.host, self.sharding = host, sharding
        self.held: dict[str, int] | None = None  # what this process placed (first epoch)

    @classmethod
    def split(cls, data, sharding):
        """``(ShardedRows, data without its rows)`` from a `TrainData`."""
        host = {k: np.asarray(data.arrays[k]) for k in ROW_FIELDS}
        rest = {k: v for k, v in data.arrays.items() if k not in ROW_FIELDS}
        return cls(host, sharding), dataclasses.replace(data, arrays=rest)

    def batches(self, perm_NbxB) -> dict[str, jax.Array]:
        """Each field's ``[Nb, B]`` rows of the order ``perm_NbxB``: this process gathers and
        places only its devices' columns."""
        perm = np.asarray(perm_NbxB)
        out = {name: jax.make_array_from_callback(perm.shape, self.sharding,
                                                  lambda index, h=h: h[perm[index]])
               for name, h in self.host.items()}
        if self.held is None:
            self.held = {"slots": held_slots(out["users"]), "of": int(perm.size),
                         "rows": len(self.host["users"])}
        return out


def held_slots(x: jax.Array) -> int:
    """Elements of ``x`` held by this process's devices, each distinct shard counted once."""
    seen = {}
    for shard in x.addressable_shards:
        key = tuple((s.start, s.stop) for s in shard.index)
        seen[key] = int(shard.data.size)
    return sum(seen.values())
