"""Which study a sweep command belongs to: its spec plus its fixed (non-swept) overrides.

Trials of one study must differ only in the swept parameters, or the report ranks
incomparable runs together (a 20-epoch trial against 50-epoch ones). So a study records
its fixed overrides in ``study.json``; a command whose fixed overrides differ opens its
own folder ``<spec name>-<hash of the overrides>`` next to the default one, or, when
``sweep.dir`` names a folder holding another study, is refused with one line.
Overrides that change no result (``logger.*``, ``trainer.progress``, ``name``, ``hydra.*``)
do not count.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from jaxrec.sweep.expand import format_value
from jaxrec.sweep.spec import SpecError, SweepOptions, SweepSpec

COSMETIC = ("logger.", "trainer.progress", "hydra.", "name", "paths.output_dir")


def _key(word: str) -> str:
    return word.split("=", 1)[0].lstrip("+~")


def fixed_overrides(spec: SweepSpec, train_overrides: list[str]) -> list[str]:
    """The overrides every trial shares that can change a result, sorted: the spec's
    ``command`` words, its one-value parameters, then the command line's (later wins)."""
    merged: dict[str, str] = {}
    words = [*spec.fixed_overrides,
             *(f"{p.key}={format_value(p.values[0])}" for p in spec.parameters if p.is_fixed),
             *train_overrides]
    for word in words:
        key = _key(word)
        if key == "name" or key.startswith(COSMETIC):
            continue
        merged[key] = word
    return sorted(merged.values())


def fingerprint(fixed: list[str]) -> str:
    return hashlib.sha1(json.dumps(sorted(fixed)).encode()).hexdigest()[:8]


def _recorded(study_dir: Path) -> list[str] | None:
    """The fixed overrides recorded in ``study_dir`` (None: no study there, or one written
    before studies recorded them, which is adopted)."""
    meta = study_dir / "study.json"
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("fixed")


def study_dir(spec: SweepSpec, opts: SweepOptions, fixed: list[str]) -> Path:
    """The folder of the study of ``spec`` with ``fixed`` overrides (see the module doc).

    Raises:
      SpecError: ``sweep.dir`` holds a study with other fixed overrides.
    """
    base = Path(opts.dir or Path("outputs") / "sweeps" / spec.name).absolute()
    recorded = _recorded(base)
    if recorded is None or sorted(recorded) == sorted(fixed):
        return base
    if opts.dir:
        raise SpecError(f"sweep.dir={opts.dir}: holds a study with other fixed overrides "
                        f"({' '.join(recorded) or 'none'}; now: {' '.join(fixed) or 'none'}); "
                        "choose another sweep.dir")
    other = base.with_name(f"{base.name}-{fingerprint(fixed)}")
    again = _recorded(other)
    if again is not None and sorted(again) != sorted(fixed):
        raise SpecError(f"{other}: holds a study with other fixed overrides; set sweep.dir")
    print(f"study {spec.name}: fixed overrides differ from {base} "
          f"({' '.join(recorded) or 'none'}); this study is {other}", file=sys.stderr)
    return other
