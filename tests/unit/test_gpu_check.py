"""``scripts/gpu_check.sh``'s CPU dry path (GPU_CHECK_CPU=1): its steps, timeouts and table
run end to end on a machine without a GPU (the tiniest subset: info and the scale step)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # two small subprocesses
def test_the_cpu_dry_path_runs_its_steps_and_prints_the_table(tmp_path):
    import sys

    env = {**os.environ, "GPU_CHECK_CPU": "1", "GPU_CHECK_STEPS": "info,scale",
           "PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    table = (tmp_path / "out" / "gpu_check.md").read_text().splitlines()
    assert table[0] == "| step | status | seconds | result |"
    assert [row.split(" | ")[0:2] for row in table[2:]] == [["| info", "ok"], ["| scale", "ok"]]
    assert "s/epoch, full ranking of" in table[3]
    assert "gpu check: 0 failed step(s)" in proc.stdout
    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert summary["scale"]["status"] == 0 and summary["scale"]["result"][0]["users"] > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "gpu_check.json", "gpu_check.log", "gpu_check.md"]  # what comes back from a device
