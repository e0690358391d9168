"""JAX's persistent compilation cache, and a count of what a run compiled.

`enable` points JAX's compilation cache at ``<paths.cache_dir>/xla`` (``trainer.compile_cache``,
on by default), so a second run of a config, or the next trial of a sweep with the same
shapes, reads its executables from disk instead of compiling them (CPU, GPU and TPU alike).
`snapshot` / `since` count, from ``jax.monitoring`` events, the programs XLA compiled, the
seconds that took and the executables the cache supplied; a run records them in
``results.json`` (``compile``). JAX reads the folder once per process: the first run of
a process (a sweep's trials share it) fixes it.
"""

from __future__ import annotations

from pathlib import Path

import jax

_COUNTS = {"programs": 0, "seconds": 0.0, "cache_hits": 0}
_LISTENING = False


def _on_duration(event: str, seconds: float, **_) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COUNTS["programs"] += 1
        _COUNTS["seconds"] += seconds


def _on_event(event: str, **_) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _COUNTS["cache_hits"] += 1


def _listen() -> None:
    global _LISTENING
    if not _LISTENING:
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        jax.monitoring.register_event_listener(_on_event)
        _LISTENING = True


def enable(cache_dir: str | Path | None) -> Path | None:
    """Use ``<cache_dir>/xla`` as JAX's persistent compilation cache (every program, however
    quick to compile); None leaves JAX's setting alone, and so do several CPU devices.
    Returns the folder, or None when the cache is not used."""
    _listen()
    if cache_dir is None:
        return None
    if jax.default_backend() == "cpu" and jax.device_count() > 1:
        # several (forced) CPU devices: executables read back from the cache deadlock in
        # their cross-device collectives (XLA CPU rendezvous timeout); compile instead
        return None
    folder = Path(cache_dir).expanduser() / "xla"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def snapshot() -> dict[str, float]:
    """The counts so far in this process (compare two with `since`)."""
    _listen()
    return dict(_COUNTS)


def since(before: dict[str, float]) -> dict[str, float]:
    """Since ``before`` (`snapshot`): the programs the run needed, how many XLA compiled and
    how many the persistent cache supplied, and the seconds both took."""
    programs = int(_COUNTS["programs"] - before["programs"])
    hits = int(_COUNTS["cache_hits"] - before["cache_hits"])
    return {"programs": programs, "compiled": programs - hits, "cache_hits": hits,
            "seconds": round(_COUNTS["seconds"] - before["seconds"], 3)}
