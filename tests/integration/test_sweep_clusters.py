"""Sweeps through cluster launchers: a real local Ray cluster (hydra/launcher=ray_cluster),
submitit's local executor (hydra/launcher=slurm_local, the Slurm path without Slurm), and the
Slurm preset's submission (hydra/launcher=slurm) down to the sbatch script submitit writes.

Each sweep checks the study's results.csv and one offline W&B run per trial. The launchers
are in the dev extra; without them the tests skip.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.integration.test_sweep_study import launched, rows, spec_file, sweep
from tests.integration.test_wandb import read_run, wandb_env

GRID = """
method: grid
metric: {name: valid/rmse, goal: minimize}
parameters:
  optim.lr: {values: [0.01, 0.05]}
  loss.l2: {values: [0.0, 0.1]}
"""


def _check_study(tmp: Path, study: Path, trials: int) -> None:
    """``trials`` complete rows in results.csv, each its own offline W&B run with its metrics."""
    table = rows(study)
    assert len(table) == trials
    assert [r["status"] for r in table.values()] == ["ok"] * trials
    for r in table.values():
        assert math.isfinite(float(r["valid/rmse"])) and math.isfinite(float(r["test/rmse"]))
    runs = {}
    for run_dir in sorted((tmp / "wandb" / "wandb").glob("offline-run-*")):
        logged = read_run(run_dir)
        runs[logged["name"].rsplit("-", 1)[-1]] = logged
    assert sorted(runs) == sorted(table)
    for name, logged in runs.items():
        assert logged["exit_code"] == 0
        assert logged["summary"]["valid/rmse"] == pytest.approx(float(table[name]["valid/rmse"]),
                                                                rel=1e-6)
        assert [h["epoch"] for h in logged["history"]] == [1, 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path):
    """A Ray head on 127.0.0.1 (2 CPUs) in its own process group, killed at the end."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    ray_cli = Path(sys.executable).parent / "ray"
    if not ray_cli.exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    env = wandb_env(tmp_path, WANDB_MODE="offline")  # the trials run in Ray's workers
    env.pop("RAY_ADDRESS", None)
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    port = _free_port()
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
         f"--temp-dir={temp}", "--disable-usage-stats", "--object-store-memory=78643200"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in head.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not ready.wait(0.5):
            assert head.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
        yield f"127.0.0.1:{port}", env
    finally:
        head.send_signal(signal.SIGTERM)  # the head drains and stops its processes (~2 s)
        try:
            head.wait(timeout=45)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # anything left in its process group
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow  # a Ray head (~5 s) and 4 trials as Ray tasks, two at a time
def test_ray_cluster_runs_a_sweep(tmp_path, ray_cluster):
    address, env = ray_cluster
    spec = spec_file(tmp_path, "ray", GRID)
    study = tmp_path / "study"
    proc = sweep(tmp_path, str(spec), f"sweep.dir={study}", "hydra/launcher=ray_cluster",
                 "hydra.launcher.ray.remote.num_cpus=1", "hydra.launcher.ray.remote.num_gpus=0",
                 env={**env, "RAY_ADDRESS": address}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with RayLauncher" in proc.stderr
    assert "Connecting to existing Ray cluster" in proc.stderr
    _check_study(tmp_path, study, 4)


@pytest.mark.slow  # 2 trials as submitit local jobs (processes)
def test_submitit_local_runs_a_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc, study = launched(tmp_path, "hydra/launcher=slurm_local")
    assert "with LocalLauncher" in proc.stderr
    _check_study(tmp_path, study, 2)
    logs = list((study / "launcher" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2  # one submitit job per trial


def test_slurm_preset_submits_with_its_parameters(tmp_path, monkeypatch, request):
    """hydra/launcher=slurm through the plugin's own launch, up to the sbatch script."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    import submitit

    from jaxrec.sweep.launch import make_launcher

    fake = tmp_path / "bin"  # submitit's Slurm executor wants srun on PATH
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    executors = []

    def capture(self, fn, *args):
        executors.append(self)
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    from hydra.core.global_hydra import GlobalHydra

    launcher = make_launcher(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                             tmp_path / "launcher")
    request.addfinalizer(GlobalHydra.instance().clear)  # later tests compose their own
    assert type(launcher).__name__ == "SlurmLauncher"
    assert launcher.launch([["optim.lr=0.1"]], initial_job_idx=0) == []
    slurm = executors[0]._executor
    assert slurm.max_num_timeout == 3  # a timed-out trial is requeued (and resumes) 3 times
    assert {k: slurm.parameters[k] for k in ("time", "gpus_per_node", "cpus_per_task", "mem",
                                             "signal_delay_s", "partition",
                                             "array_parallelism")} == {
        "time": 60, "gpus_per_node": 1, "cpus_per_task": 4, "mem": "16GB",
        "signal_delay_s": 120, "partition": "gpu", "array_parallelism": 64}
    script = slurm._make_submission_file_text("python -m x", "uid")
    for line in ("--time=60", "--gpus-per-node=1", "--signal=USR2@120", "--partition=gpu",
                 f"--output={tmp_path / 'launcher' / '.submitit'}/%j/%j_0_log.out"):
        assert f"#SBATCH {line}\n" in script, line
