"""What the benchmark scripts in ``scripts/`` share: the machine's CPU and the marked
sections of ``docs/benchmarks.md``.

Each script owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
and rewrites only that, atomically, so the scripts can refresh the file independently.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxrec.io import atomic_write_text

DOC_HEADER = ("# Benchmarks\n\nEach section is written by the script it names; rerun that "
              "script with `--write` to refresh it. A script replaces only the text between "
              "its own `<!-- NAME:start -->` / `<!-- NAME:end -->` markers.\n")


def cpu_model(default: str = "unknown") -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``default`` where it is not readable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(doc: str, section: str, name: str) -> str:
    """``doc`` with the section marked ``name`` replaced by ``section`` (appended when absent).

    ``section`` includes its own markers.
    """
    if not doc.strip():
        doc = DOC_HEADER
    start_mark, end_mark = markers(name)
    start, end = doc.find(start_mark), doc.find(end_mark)
    if start != -1 and end > start:
        return doc[:start] + section + doc[end + len(end_mark):]
    return doc.rstrip("\n") + "\n\n" + section + "\n"


def write_section(path: str | os.PathLike, section: str, name: str) -> None:
    """Replace the section marked ``name`` in the file at ``path``, atomically."""
    path = Path(path)
    doc = path.read_text() if path.exists() else ""
    atomic_write_text(path, replace_section(doc, section, name))


def peer_venv(venv: Path, imports: str, installs: list[list[str]], log=print
              ) -> tuple[Path | None, str]:
    """The python of the peer library's own venv (``imports`` importable there), creating
    the venv once; ``(None, why)`` when it cannot be built.

    Args:
      venv: the venv folder (``~/.cache/jaxrec/bench-venvs/<peer>``).
      imports: the modules a working venv imports, e.g. ``"implicit, scipy"``.
      installs: ``pip install`` argument lists tried in order until ``imports`` works,
        e.g. ``[["implicit", "scipy"]]``; the pip log is ``<venv>-install.log``.
    """
    import subprocess
    import sys

    python = venv / "bin" / "python"

    def importable() -> bool:
        return python.exists() and subprocess.run(
            [str(python), "-c", f"import {imports}"], capture_output=True).returncode == 0

    if importable():
        return python, "cached"
    log_path = venv.parent / f"{venv.name}-install.log"
    log(f"creating the peer venv {venv} (pip log: {log_path})")
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as out:
            if subprocess.run([sys.executable, "-m", "venv", str(venv)], stdout=out,
                              stderr=subprocess.STDOUT).returncode == 0:
                for args in installs:
                    subprocess.run([str(python), "-m", "pip", "install", *args], stdout=out,
                                   stderr=subprocess.STDOUT)
                    if importable():
                        return python, "installed"
    except OSError as err:
        return None, f"{imports} could not be installed in {venv}: {err}"
    return None, f"{imports} could not be installed in {venv} (see {log_path})"
