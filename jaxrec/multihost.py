"""One run over several processes (hosts): JAX's distributed runtime.

`initialize` starts ``jax.distributed`` before anything touches a device, from
``trainer.distributed`` or from Slurm:

* ``trainer.distributed.coordinator=host:port`` (with ``num_processes`` and
  ``process_id``): by hand, one command per process;
* nothing configured and launched by Slurm with more than one task
  (``SLURM_NTASKS > 1`` inside a job step): ``jax.distributed.initialize()``, which
  reads the coordinator, process count and id from the ``SLURM_*`` variables;
* otherwise off: one process, exactly as before.

CPU collectives between processes go through gloo
(``jax_cpu_collectives_implementation``). Every process then builds the same run
(same data, seed, batch order) and the mesh spans all processes' devices
(``jax.devices()``); only the primary process (0) writes files and logs. `fetch`
brings a globally sharded array to every host (``process_allgather``).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np


def slurm_tasks() -> int:
    """Tasks of the Slurm job step this process belongs to (1 outside Slurm)."""
    if "SLURM_STEP_ID" not in os.environ and "SLURM_STEPID" not in os.environ:
        return 1  # an sbatch script itself (not srun) is not a multi-process launch
    try:
        return int(os.environ.get("SLURM_STEP_NUM_TASKS", os.environ.get("SLURM_NTASKS", "1")))
    except ValueError:
        return 1


def validate(dist: Any) -> None:
    """One-line ``ValueError`` for a ``trainer.distributed`` no launch can use."""
    if dist.coordinator is None:
        if dist.num_processes is not None or dist.process_id is not None:
            raise ValueError("trainer.distributed.coordinator: set it (host:port of process 0) "
                             "with num_processes and process_id, or leave all three null")
        return
    host, _, port = str(dist.coordinator).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"trainer.distributed.coordinator: expected host:port, got "
                         f"{dist.coordinator!r}")
    n, i = dist.num_processes, dist.process_id
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"trainer.distributed.num_processes: must be >= 1 with a coordinator, "
                         f"got {n}")
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
        raise ValueError(f"trainer.distributed.process_id: must be in 0..{n - 1}, got {i}")


def initialize(dist: Any) -> bool:
    """Start JAX's distributed runtime when ``dist`` (``trainer.distributed``) or Slurm asks
    for several processes; True when this process is one of several. Idempotent; call it
    before any device use (a one-line error otherwise)."""
    validate(dist)
    wanted = dist.coordinator is not None or slurm_tasks() > 1
    if not wanted or jax.distributed.is_initialized():
        return jax.process_count() > 1 if wanted else False
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise ValueError("trainer.distributed: JAX's devices were used before the "
                         "distributed runtime started; start one run per process")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if dist.coordinator is None:
        jax.distributed.initialize()  # Slurm: coordinator, count and id from SLURM_*
    else:
        jax.distributed.initialize(str(dist.coordinator), num_processes=dist.num_processes,
                                   process_id=dist.process_id,
                                   initialization_timeout=int(dist.timeout_seconds))
    return jax.process_count() > 1


def process_count() -> int:
    """Processes training this run (1 unless `initialize` joined several)."""
    return jax.process_count()


def process_index() -> int:
    """This process's index, 0..process_count() - 1."""
    return jax.process_index()


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0; always true on one)."""
    return jax.process_index() == 0


def fetch(x: Any) -> np.ndarray:
    """``x`` as a host array on every process: a globally sharded array is gathered
    (``multihost_utils.process_allgather``; every process must call it), anything else is
    ``np.asarray``."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def barrier(name: str) -> None:
    """Wait until every process got here (nothing on one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
