"""The environment a run was made in, for ``results.json``: versions, git commit, devices, host.

Never fails: what cannot be found (no git checkout, a package that is not installed) is None.
"""

from __future__ import annotations

import copy
import functools
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = ("jax", "jaxlib", "flax", "optax")


def version() -> str:
    """jaxrec's version: the installed distribution's, else the source tree's ``__version__``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("jaxrec")
    except PackageNotFoundError:
        from jaxrec import __version__

        return __version__


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(name)
    except PackageNotFoundError:
        return None


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the checkout holding ``path`` (default: this package), ``+dirty`` when it
    has uncommitted changes; None outside a checkout or without git."""
    if path is None:  # an installed wheel inside some other repository is not a checkout
        source = Path(__file__).resolve().parent.parent
        if not (source / "pyproject.toml").is_file():
            return None
        path = source
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=path, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def environment() -> dict[str, Any]:
    """``{"jaxrec", "git_commit", "packages", "backend", "device_kinds", "device_count",
    "python", "host", ...}`` (looked up once per process)."""
    return copy.deepcopy(_environment())


@functools.cache
def _environment() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {
        "jaxrec": version(),
        "git_commit": git_commit(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "backend": jax.default_backend(),
        "device_kinds": sorted({d.device_kind for d in devices}),
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
    }
