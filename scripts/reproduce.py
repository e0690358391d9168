"""Run paper presets and print a paper-vs-jaxrec table: an alias of ``jaxrec reproduce``
(logic: ``jaxrec/reproduce/``).

    python scripts/reproduce.py paper_ncf_neumf_ml-1m paper_ncf_mf_ml-1m      # paper datasets
    python scripts/reproduce.py --all --local --write     # every preset on ml-latest-small
    python scripts/reproduce.py paper_recbole_ease_ml-1m --set model.l2=300 --out runs/ease
    python scripts/reproduce.py --list

Each run is ``jaxrec train experiment=<preset> [--set ...]`` in its own process (per fold
when the preset cross-validates); the table, ``reproduce.{md,csv,json}`` in ``--out``,
and with ``--write`` this script's section of ``docs/benchmarks.md``.
"""

import sys
from pathlib import Path

from jaxrec.reproduce import main

if __name__ == "__main__":
    sys.exit(main(doc=Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md",
                  prog="python scripts/reproduce.py"))
