"""Training rows kept on the host, each epoch's batches placed sharded over ``data``.

With ``trainer.mesh.rows=sharded`` (the default over several processes) no device holds
the training rows (``users``, ``items``, ``ratings`` and a model's per-row inputs such as
``context``, the ``batch_fields`` of `jaxrec.data.device.TrainData`)
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
        fields = data.batch_fields  # ROW_FIELDS and the model's per-row inputs (context)
        host = {k: np.asarray(data.arrays[k]) for k in fields}
        rest = {k: v for k, v in data.arrays.items() if k not in fields}
        return cls(host, sharding), dataclasses.replace(data, arrays=rest)

    def batches(self, perm_NbxB) -> dict[str, jax.Array]:
        """Each field's ``[Nb, B]`` rows of the order ``perm_NbxB``: this process gathers and
        places only its devices' columns."""
        perm = np.asarray(perm_NbxB)

        def rows(h):  # trailing dims (a context row's fields) are whole on every device
            return lambda index: h[perm[index[:2]]][(slice(None),) * 2 + tuple(index[2:])]

        out = {name: jax.make_array_from_callback(perm.shape + h.shape[1:], self.sharding,
                                                  rows(h))
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
