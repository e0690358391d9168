"""Print the bad-input corpus as a markdown table (case, command, the one-line message).

Runs every case of ``tests/unit/test_bad_input_corpus.py`` in a temporary folder, the
same way the test does, and prints the rows for ``docs/reliability.md``:

    python scripts/reliability_corpus.py > /tmp/corpus.md   # ~10 s on a 2-core CPU

Temporary paths are shown as ``<tmp>``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_bad_input_corpus import CASES, failure  # noqa: E402


def main() -> None:
    os.environ.pop("JAXREC_DATA_DIR", None)
    os.environ.setdefault("WANDB_MODE", "offline")
    print("| case | command | message |")
    print("| --- | --- | --- |")
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                message = failure(case, Path(tmp)).replace(tmp, "<tmp>")
            except AssertionError as err:
                message = f"NO ERROR ({err})"
        cell = message.replace("|", "\\|")
        print(f"| {case.name} | `{case.command}` | {cell} |")


if __name__ == "__main__":
    main()
