"""End-to-end sweeps on synthetic data: results.csv, W&B runs per trial, failures, resume,
vectorised members against separate runs, bayes, report plots."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import run_train
from tests.integration.test_wandb import read_run, wandb_env

FIXED = ["data=synthetic", "model.dim=4", "trainer.epochs=2", "trainer.batch_size=512"]


def spec_file(tmp: Path, name: str, body: str, fixed=FIXED) -> Path:
    command = "\n".join(f"  - {w}" for w in ["${env}", "${interpreter}", "-m", "jaxrec.cli",
                                              "train", *fixed, "${args_no_hyphens}"])
    path = tmp / f"{name}.yaml"
    path.write_text(f"# test study\n{body.strip()}\ncommand:\n{command}\n")
    return path


def sweep(tmp: Path, *args: str, env: dict[str, str], timeout: float = 600):
    return subprocess.run([sys.executable, "-m", "jaxrec.cli", "sweep", *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def rows(study: Path) -> dict[str, dict]:
    with open(study / "results.csv") as f:
        return {r["trial"]: r for r in csv.DictReader(f)}


GRID = """
method: grid
metric: {name: valid/rmse, goal: minimize}
parameters:
  optim.name: {value: sgd}
  optim.lr: {values: [0.05, 1.0e6]}
  loss.l2: {values: [0.0, 0.1]}
"""


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory):
    """A 2 x 2 grid whose lr=1e6 trials diverge; the four share one vectorised group."""
    tmp = tmp_path_factory.mktemp("sweep-grid")
    env = wandb_env(tmp, WANDB_MODE="offline")
    spec = spec_file(tmp, "grid", GRID)
    study = tmp / "study"
    proc = sweep(tmp, str(spec), f"sweep.dir={study}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, spec, study, env, proc


@pytest.mark.slow
def test_grid_writes_results_and_records_divergence(grid_study):
    _, _, study, _, proc = grid_study
    table = rows(study)
    assert sorted(table) == ["t000", "t001", "t002", "t003"]
    ok = [r for r in table.values() if r["status"] == "ok"]
    bad = [r for r in table.values() if r["status"] == "diverged"]
    assert len(ok) == 2 and len(bad) == 2
    for r in ok:
        assert float(r["optim.lr"]) == 0.05 and float(r["valid/rmse"]) > 0
        assert r["best_epoch"] in ("1", "2") and float(r["total_seconds"]) > 0
        assert r["group_size"] == "4", "continuous-only differences train as one group"
        assert r["overrides"].startswith("optim.name=sgd optim.lr=0.05 loss.l2=")
        assert json.loads((Path(r["run_dir"]) / "results.json").read_text())["metrics"]
    for r in bad:
        assert float(r["optim.lr"]) == 1e6
        assert "train/loss is" in r["error"] and "at epoch" in r["error"]
        assert not r["valid/rmse"]
    assert "valid/rmse" in proc.stdout and "t000" in proc.stdout  # the ranked table
    meta = json.loads((study / "study.json").read_text())
    assert meta["swept"] == ["optim.lr", "loss.l2"] and meta["goal"] == "minimize"


@pytest.mark.slow
def test_every_trial_is_its_own_wandb_run(grid_study):
    tmp, _, study, _, _ = grid_study
    meta = json.loads((study / "study.json").read_text())
    runs = {}
    for run_dir in sorted((tmp / "wandb" / "wandb").glob("offline-run-*")):
        logged = read_run(run_dir)
        runs[logged["name"]] = logged
    assert sorted(runs) == [f"grid-t00{i}" for i in range(4)]
    table = rows(study)
    for name, logged in runs.items():
        trial = table[name.removeprefix("grid-")]
        config = {k: v for k, v in logged["config"].items() if k != "_wandb"}
        on_disk = OmegaConf.to_container(OmegaConf.load(Path(trial["run_dir"]) / "config.yaml"))
        assert config == on_disk
        assert config["logger"]["group"] == f"grid-{meta['id']}"
        assert config["logger"]["tags"] == ["sweep", "grid"]
        assert config["optim"]["lr"] == float(trial["optim.lr"])
        if trial["status"] == "ok":
            assert logged["exit_code"] == 0
            assert math.isclose(logged["summary"]["valid/rmse"], float(trial["valid/rmse"]),
                                rel_tol=1e-6)
            assert "test/rmse" in logged["summary"] and "best_epoch" in logged["summary"]
            assert [h["epoch"] for h in logged["history"]] == [1, 2]
        else:
            assert logged["exit_code"] == 1


@pytest.mark.slow
def test_rerun_skips_completed_trials_and_resumes_interrupted_ones(grid_study):
    tmp, spec, study, env, _ = grid_study
    before = {t: r["run_dir"] for t, r in rows(study).items()}
    stamps = {t: json.loads((study / "trials" / t / "trial.json").read_text())["finished"]
              for t in before}
    # t001 was "interrupted": its record still says running
    record_path = study / "trials" / "t001" / "trial.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "status": "running"}))
    proc = sweep(tmp, str(spec), f"sweep.dir={study}", "sweep.wandb=false", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 trial(s) already done, 1 to run" in proc.stderr
    assert "[4/4, " in proc.stderr and "elapsed]" in proc.stderr  # progress of the study
    after = rows(study)
    assert {t: r["run_dir"] for t, r in after.items()} == before
    for t in ("t000", "t002", "t003"):
        assert json.loads((study / "trials" / t / "trial.json").read_text())["finished"] == \
            stamps[t]
    assert after["t001"]["status"] == "ok"


@pytest.mark.slow
def test_vectorised_members_match_separate_runs(tmp_path):
    """Seeds, learning rates, L2 and init scales differ; BPR samples negatives per member."""
    fixed = [*FIXED, "trainer.epochs=3", "data.split.seed=0", "data.preprocess.implicit=true",
             "loss=bpr", "logger.wandb=false"]
    spec = spec_file(tmp_path, "vec", """
method: grid
metric: {name: valid/ndcg@10, goal: maximize}
parameters:
  seed: {values: [0, 5]}
  optim.lr: {values: [0.01, 0.03]}
  loss.l2: {values: [0.0, 0.01]}
  model.init_std: {value: 0.05}
""", fixed=fixed)
    from jaxrec.sweep import run_sweep

    study = run_sweep(spec, [f"sweep.dir={tmp_path / 'study'}", "sweep.wandb=false",
                             "sweep.lanes=3"])
    table = rows(study.dir)
    assert {r["group_size"] for r in table.values()} == {"8"}
    for name in ("t000", "t003", "t006"):
        r = table[name]
        overrides = [w for w in fixed if not w.startswith("logger")] + r["overrides"].split()
        alone = run_train(overrides, tmp_path / f"alone-{name}")
        for key, value in alone["metrics"].items():
            assert math.isclose(float(r[key]), value, rel_tol=1e-4, abs_tol=1e-4), (name, key)
        assert int(r["best_epoch"]) == alone["best_epoch"]


@pytest.mark.slow
def test_bayes_is_seeded_and_resumes(tmp_path):
    spec = spec_file(tmp_path, "bayes", """
method: bayes
metric: {name: valid/rmse, goal: minimize}
run_cap: 3
parameters:
  optim.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
  model.dim: {values: [2, 4]}
""")
    from jaxrec.sweep import run_sweep

    opts = ["sweep.wandb=false", "sweep.startup_trials=2", "logger.jsonl=true"]
    a = run_sweep(spec, [f"sweep.dir={tmp_path / 'a'}", *opts])
    b = run_sweep(spec, [f"sweep.dir={tmp_path / 'b'}", *opts, "sweep.run_cap=2"])
    params = lambda s: [(r["optim.lr"], r["model.dim"]) for r in rows(s.dir).values()]
    assert len(params(a)) == 3 and params(b) == params(a)[:2], "same seed, same suggestions"
    b = run_sweep(spec, [f"sweep.dir={tmp_path / 'b'}", *opts])  # resumes: one more trial
    assert len(params(b)) == 3 and params(b)[:2] == params(a)[:2]
    assert all(r["status"] == "ok" for r in rows(b.dir).values())


@pytest.mark.slow
def test_random_study_and_report(tmp_path):
    spec = spec_file(tmp_path, "rand", """
method: random
metric: {name: valid/rmse, goal: minimize}
run_cap: 4
parameters:
  optim.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
  seed: {values: [0, 1]}
  model.dim: {values: [2, 4]}
""", fixed=[*FIXED, "data.split.seed=0"])
    from jaxrec.sweep import run_sweep
    from jaxrec.sweep.report import report

    study = run_sweep(spec, [f"sweep.dir={tmp_path / 'study'}", "sweep.wandb=false",
                             "sweep.seed=1"])
    again = run_sweep(spec, [f"sweep.dir={tmp_path / 'again'}", "sweep.wandb=false",
                             "sweep.seed=1"])
    pick = lambda s: [(r["optim.lr"], r["seed"], r["model.dim"]) for r in rows(s.dir).values()]
    assert pick(study) == pick(again)
    text = report(study.dir, curves=2)
    assert "valid/rmse, lower is better" in text and "t000" in text
    for png in ("metric_vs_params.png", "learning_curves.png"):
        data = (study.dir / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "sweep", "report",
                           str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode != 0 and "has no study.json" in proc.stderr


def launched(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """A 2-trial grid (two learning rates) swept with ``args`` (a launcher and its options)."""
    spec = spec_file(tmp, "par", """
method: grid
metric: {name: valid/rmse, goal: minimize}
parameters:
  optim.lr: {values: [0.01, 0.05]}
""")
    study = tmp / "study"
    proc = sweep(tmp, str(spec), f"sweep.dir={study}", *args,
                 env=wandb_env(tmp, WANDB_MODE="offline"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, study


@pytest.mark.slow
def test_local_launcher_runs_trials_as_processes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    proc, study = launched(tmp_path, "sweep.wandb=false", "hydra/launcher=local")
    assert "with JoblibLauncher" in proc.stderr
    table = rows(study)
    assert [r["status"] for r in table.values()] == ["ok", "ok"]
    assert {r["group_size"] for r in table.values()} == {"1"}
    assert sorted(p.name for p in (study / "launcher").iterdir()) == ["0", "1"]
