"""Several processes, one run (jaxrec.multihost): two processes under ``jax.distributed`` on
127.0.0.1 (CPU collectives through gloo, two forced devices each) train what one process
with four devices trains, and only process 0 writes the run folder. Each process places only
its share of the training rows (``trainer.mesh.rows=auto``: sharded over processes)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["data=synthetic", "data.dataset.num_users=64", "data.dataset.num_items=48",
        "data.dataset.interactions_per_user=10", "model.dim=8", "loss=mse", "trainer.epochs=3",
        "trainer.batch_size=64", "trainer.patience=0", "trainer.progress=false",
        "eval.ks=[10]", "trainer.checkpoint_seconds=0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], out: Path, devices: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JAXREC_CACHE_DIR": str(out.parent / "cache")}
    cmd = [sys.executable, "-m", "jaxrec.cli", "train", *TINY, *args,
           f"hydra.run.dir={out}", f"paths.output_dir={out}"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def _wait_all(procs: list[subprocess.Popen], logs: list[Path], timeout: float) -> None:
    """Wait for every process; on a failure or the deadline, kill them all and show the logs."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs)
    assert codes == [0] * len(procs), f"exit codes {codes}\n{tails}"


@pytest.mark.slow  # three runs of ~10 s each on 2 cores
def test_two_processes_match_one_process_and_resume(tmp_path):
    port = _free_port()
    shared = tmp_path / "two"
    dist = [f"trainer.distributed.coordinator=127.0.0.1:{port}",
            "trainer.distributed.num_processes=2", "trainer.distributed.timeout_seconds=60",
            "trainer.mesh.model=2"]  # 2 x 2: the batch over the processes, rows within each
    logs = [tmp_path / f"process{i}.log" for i in range(2)] + [tmp_path / "one.log"]
    procs = [_launch([*dist, f"trainer.distributed.process_id={i}"], shared, 2, logs[i])
             for i in range(2)]
    procs.append(_launch([], tmp_path / "one", 4, logs[2]))  # the reference, meanwhile
    _wait_all(procs, logs, timeout=240)

    two = json.loads((shared / "results.json").read_text())
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    assert (two["processes"], two["devices"], two["mesh"]) == (2, 4, {"data": 2, "model": 2})
    assert (one["processes"], one["devices"]) == (1, 4)
    assert two["metrics"].keys() == one["metrics"].keys()
    for key, value in one["metrics"].items():
        assert two["metrics"][key] == pytest.approx(value, abs=2e-4, rel=2e-4), key
    # process 0 alone logged: every epoch once, one W&B-free metrics file, one status
    steps = [json.loads(line)["step"] for line in (shared / "metrics.jsonl").open()]
    assert steps == [1, 2, 3]
    assert (shared / "status").read_text() == "finished\n"
    assert (shared / "checkpoints" / "best").is_dir()
    assert sorted(p.name for p in (shared / "checkpoints" / "state").iterdir()) == ["1", "2"]
    assert not list(shared.glob("*.tmp*")) and not list(shared.glob("checkpoints/*.tmp*"))
    # trainer.mesh.rows=auto shards the rows over two processes: each placed only the batch
    # columns of its own devices (its data-axis share), half of every epoch's batch slots
    for log in logs[:2]:
        [line] = [x for x in log.read_text().splitlines() if "batch slots" in x]
        held, of = (int(w) for w in re.findall(r"held (\d+) of an epoch's (\d+)", line)[0])
        assert 2 * held == of, line

    # the same two commands again resume from the orbax checkpoint of epoch 2 (restored by
    # both processes) and recompute epoch 3 alone, to the same metrics
    port = _free_port()
    dist[0] = f"trainer.distributed.coordinator=127.0.0.1:{port}"
    logs = [tmp_path / f"resume{i}.log" for i in range(2)]
    procs = [_launch([*dist, f"trainer.distributed.process_id={i}"],
                     shared, 2, logs[i]) for i in range(2)]
    _wait_all(procs, logs, timeout=180)
    assert [line.split()[1] for line in logs[0].read_text().splitlines()
            if line.startswith("epoch ")] == ["3"]
    resumed = json.loads((shared / "results.json").read_text())
    assert resumed["metrics"] == pytest.approx(two["metrics"], abs=1e-6)
    assert [json.loads(line)["step"] for line in (shared / "metrics.jsonl").open()] == [1, 2, 3]


def _dist(**kw) -> SimpleNamespace:
    return SimpleNamespace(**{"coordinator": None, "num_processes": None, "process_id": None,
                              "timeout_seconds": 300, **kw})


def test_distributed_config_errors_are_one_line():
    from jaxrec.multihost import validate

    validate(_dist())
    validate(_dist(coordinator="10.0.0.1:1234", num_processes=2, process_id=1))
    for bad, match in ((_dist(num_processes=2), r"^trainer.distributed.coordinator: set it"),
                       (_dist(coordinator="nohost", num_processes=2, process_id=0),
                        r"^trainer.distributed.coordinator: expected host:port, got 'nohost'"),
                       (_dist(coordinator="h:1", num_processes=0, process_id=0),
                        r"^trainer.distributed.num_processes: must be >= 1"),
                       (_dist(coordinator="h:1", num_processes=2, process_id=2),
                        r"^trainer.distributed.process_id: must be in 0..1, got 2")):
        with pytest.raises(ValueError, match=match) as err:
            validate(bad)
        assert "\n" not in str(err.value)


def test_off_by_default_and_slurm_tasks_from_a_job_step(monkeypatch):
    from jaxrec.multihost import fetch, initialize, is_primary, slurm_tasks

    for name in ("SLURM_STEP_ID", "SLURM_STEPID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    assert slurm_tasks() == 1 and initialize(_dist()) is False and is_primary()
    monkeypatch.setenv("SLURM_NTASKS", "4")  # an sbatch script, not an srun step: one process
    assert slurm_tasks() == 1
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    assert slurm_tasks() == 4
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert slurm_tasks() == 1 and initialize(_dist()) is False
    assert fetch([1, 2]).tolist() == [1, 2]
