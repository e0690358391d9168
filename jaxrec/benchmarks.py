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
