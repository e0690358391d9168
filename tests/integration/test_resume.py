"""Exact resume: a run killed (kill -9, or SIGTERM) at any point and run again with the same
command ends with bitwise-identical metrics, and logs every epoch once."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SYNTHETIC = ["data=synthetic", "data.dataset.num_users=60", "data.dataset.num_items=80",
             "data.dataset.interactions_per_user=15", "trainer.batch_size=128",
             "trainer.patience=0", "trainer.checkpoint_seconds=0", "trainer.progress=false",
             "eval.save_per_user=false"]
CASES = {
    "mf_mse": ["model.dim=8", "trainer.epochs=8"],
    "mf_bpr": ["model.dim=8", "loss=bpr", "data.preprocess.implicit=true", "trainer.epochs=8"],
    "two_tower": ["model=two_tower", "model.dim=8", "loss=sampled_softmax",
                  "data.preprocess.implicit=true", "data.features=[genres]", "trainer.epochs=6"],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    out = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    out.update(PYTHONUNBUFFERED="1", JAXREC_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    return out


def _train(run_dir: Path, overrides, env):
    return [sys.executable, "-m", "jaxrec.cli", "train", *overrides,
            f"paths.output_dir={run_dir}", f"hydra.run.dir={run_dir}"]


def _run(cmd, env, cwd):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _interrupt(cmd, env, cwd, *, after: str | None = None, ready=None, sig: int,
               delay: float) -> int:
    """Start ``cmd``; send ``sig`` ``delay`` seconds after a stdout line starting ``after``
    (or once ``ready()`` is true)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    if after is not None:
        for line in proc.stdout:
            if line.startswith(after) or time.monotonic() > deadline:
                break
    else:
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(sig)
    proc.stdout.read()
    return proc.wait(timeout=120)


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def _steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_kill_9_then_resume_gives_identical_metrics(case, tmp_path, env):
    overrides = [*SYNTHETIC, *CASES[case]]
    epochs = int(next(o for o in overrides if o.startswith("trainer.epochs=")).split("=")[1])
    reference = tmp_path / "reference"
    _run(_train(reference, overrides, env), env, tmp_path)

    rng = random.Random(case)  # a kill somewhere in an epoch or a checkpoint save
    killed = tmp_path / "killed"
    cmd = _train(killed, overrides, env)
    code = _interrupt(cmd, env, tmp_path, after=f"epoch {rng.randint(2, epochs - 2):4d}",
                      sig=signal.SIGKILL, delay=rng.uniform(0.0, 0.05))
    assert code == -signal.SIGKILL
    assert (killed / "status").read_text().strip() == "running"  # died without a word
    _run(cmd, env, tmp_path)

    got, want = _results(killed), _results(reference)
    assert got["metrics"] == want["metrics"]  # bitwise: the same floats
    assert (got["best_epoch"], got["epochs_run"]) == (want["best_epoch"], want["epochs_run"])
    assert _steps(killed) == list(range(1, epochs + 1))
    assert (killed / "status").read_text().strip() == "finished"


@pytest.mark.slow
def test_sigterm_checkpoints_exits_143_and_resumes(tmp_path, env):
    overrides = [*SYNTHETIC, *CASES["mf_mse"], "trainer.checkpoint_every=0"]  # signal saves only
    reference = tmp_path / "reference"
    _run(_train(reference, overrides, env), env, tmp_path)
    stopped = tmp_path / "stopped"
    cmd = _train(stopped, overrides, env)
    assert _interrupt(cmd, env, tmp_path, after="epoch    3", sig=signal.SIGTERM,
                      delay=0.0) == 143
    assert (stopped / "status").read_text().strip() == "preempted"
    assert list((stopped / "checkpoints" / "state").iterdir())
    _run(cmd, env, tmp_path)
    assert _results(stopped)["metrics"] == _results(reference)["metrics"]
    assert _steps(stopped) == list(range(1, 9))


@pytest.mark.slow
def test_a_changed_config_is_refused_with_the_differing_keys(tmp_path, env):
    overrides = [*SYNTHETIC, *CASES["mf_mse"], "trainer.checkpoint_every=0"]
    run_dir = tmp_path / "run"
    cmd = _train(run_dir, overrides, env)
    assert _interrupt(cmd, env, tmp_path, after="epoch    2", sig=signal.SIGTERM,
                      delay=0.0) == 143
    proc = subprocess.run([*cmd, "optim.lr=0.05"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: trainer.resume:") and "optim.lr" in last, proc.stderr[-2000:]
    fresh = subprocess.run([*cmd, "optim.lr=0.05", "trainer.resume=never"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-2000:]


SPEC = """\
# Two learning rates, trained as one vectorised group (tests/integration/test_resume.py).
method: grid
metric:
  name: valid/rmse
  goal: minimize
parameters:
  optim.lr:
    values: [0.005, 0.02]
command:
  - ${{env}}
  - ${{interpreter}}
  - -m
  - jaxrec.cli
  - train
{fixed}
  - ${{args_no_hyphens}}
"""


@pytest.mark.slow
def test_a_vectorised_group_killed_mid_group_resumes_mid_group(tmp_path, env):
    fixed = "\n".join(f"  - {o}" for o in [*SYNTHETIC, *CASES["mf_mse"]])
    spec = tmp_path / "group.yaml"
    spec.write_text(SPEC.format(fixed=fixed))

    def sweep(study):
        return [sys.executable, "-m", "jaxrec.cli", "sweep", str(spec), f"sweep.dir={study}"]

    _run(sweep(tmp_path / "reference"), env, tmp_path)
    killed = tmp_path / "killed"
    log = killed / "trials" / "t000" / "metrics.jsonl"

    def four_epochs():
        return log.is_file() and len(log.read_text().splitlines()) >= 4

    code = _interrupt(sweep(killed), env, tmp_path, ready=four_epochs, sig=signal.SIGKILL,
                      delay=0.02)
    assert code == -signal.SIGKILL
    states = list((killed / "trials").glob("*/checkpoints/state/*"))
    assert states, "no member had a checkpoint when killed"
    _run(sweep(killed), env, tmp_path)

    def rows(study):
        return {r["trial"]: r for r in csv.DictReader((study / "results.csv").open())}

    got, want = rows(killed), rows(tmp_path / "reference")
    assert sorted(got) == sorted(want)
    for trial, row in want.items():
        assert got[trial]["status"] == "ok" and got[trial]["group_size"] == "2"
        keys = [k for k in row if k.startswith(("valid/", "test/"))]
        assert {k: got[trial][k] for k in keys} == {k: row[k] for k in keys}
        assert _steps(Path(got[trial]["run_dir"])) == list(range(1, 9))


@pytest.mark.slow
def test_sigterm_stops_a_whole_sweep_which_then_resumes(tmp_path, env):
    fixed = "\n".join(f"  - {o}" for o in [*SYNTHETIC, *CASES["mf_mse"]])
    spec = tmp_path / "group.yaml"
    spec.write_text(SPEC.format(fixed=fixed))
    cmd = [sys.executable, "-m", "jaxrec.cli", "sweep", str(spec), f"sweep.dir={tmp_path / 's'}"]
    log = tmp_path / "s" / "trials" / "t000" / "metrics.jsonl"

    def two_epochs():
        return log.is_file() and len(log.read_text().splitlines()) >= 2

    assert _interrupt(cmd, env, tmp_path, ready=two_epochs, sig=signal.SIGTERM,
                      delay=0.0) == 143
    assert not (tmp_path / "s" / "trials" / "t000" / "results.json").exists()
    _run(cmd, env, tmp_path)
    rows = list(csv.DictReader((tmp_path / "s" / "results.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert _steps(log.parent) == list(range(1, 9))
