"""Adding a model is one module and one yaml: no edit anywhere else.

The files of docs/tutorial-new-model.md (a model in a temporary package, its yaml in a
temporary config folder found through ``hydra.searchpath``, a study spec and the model's
own test) are written out: the model trains from the CLI, runs in a vectorised sweep, is
re-evaluated, its test passes and its mistakes are one line; and ``jaxrec evaluate``
reports exactly the keys of the run's own ``results.json``, slices included.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial-new-model.md"


def tutorial_files() -> dict[str, str]:
    """The code blocks of docs/tutorial-new-model.md that start with ``# file: <path>``."""
    blocks = re.findall(r"```(?:python|yaml)\n# file: (\S+)\n(.*?)```", TUTORIAL.read_text(),
                        flags=re.S)
    return dict(blocks)


def test_the_tutorial_has_every_file_this_test_runs():
    assert sorted(tutorial_files()) == ["conf/model/dot_mf.yaml", "dot_mf_sweep.yaml",
                                        "myrec_plugin/dot_mf.py", "test_dot_mf.py"]


def run_cli(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "jaxrec.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("plugin")
    for name, text in tutorial_files().items():
        path = root / ("pkg/" if name.startswith("myrec_plugin/") else "") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "pkg" / "myrec_plugin" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(JAXREC_DATA_DIR=data_dir, PYTHONPATH=str(root / "pkg"),
               JAXREC_TRUSTED_MODULES="myrec_plugin",  # evaluate builds the plug-in model
               JAXREC_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    return root, env, f"hydra.searchpath=[file://{root / 'conf'}]"


def _metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "results.json").read_text())["metrics"]


def _evaluated(run_dir: Path, env) -> dict[str, float]:
    proc = run_cli("evaluate", run_dir, cwd=run_dir.parent, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _same(got: dict[str, float], want: dict[str, float]) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert (math.isnan(value) and math.isnan(got[key])) or math.isclose(
            got[key], value, rel_tol=1e-5, abs_tol=1e-6), (key, got[key], value)


@pytest.mark.slow
def test_a_plugin_model_trains_sweeps_and_evaluates(plugin):
    root, env, searchpath = plugin
    run_dir = root / "run"
    proc = run_cli("train", "model=dot_mf", searchpath, "trainer.epochs=2",
                   "trainer.progress=false", f"paths.output_dir={run_dir}", cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = _metrics(run_dir)
    assert trained["test/rmse"] < 1.2  # two epochs of a real model, not noise
    _same(_evaluated(run_dir, env), trained)

    study = root / "study"
    proc = run_cli("sweep", root / "dot_mf_sweep.yaml", searchpath, f"sweep.dir={study}",
                   cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((study / "results.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert {r["group_size"] for r in rows} == {"2"}  # one vectorised group
    member = Path(rows[0]["run_dir"])
    _same(_evaluated(member, env), _metrics(member))


def test_the_tutorials_model_test_passes(plugin):
    root, env, _ = plugin
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "0", "test_dot_mf.py"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize(("override", "said"), [
    ("+model.dimm=8", "options: dim, init_std"), ("model.dim=abc", "model.dim"),
    ("loss=multinomial", "loss=mse")])
def test_the_tutorials_mistakes_are_one_line(plugin, override, said):
    root, env, searchpath = plugin
    proc = run_cli("train", "model=dot_mf", searchpath, override, "trainer.epochs=1",
                   f"paths.output_dir={root / 'mistake'}", cwd=root, env=env)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and said in errors[0], proc.stderr[-2000:]


@pytest.mark.slow
def test_evaluate_reports_exactly_the_keys_of_results_json(plugin, tmp_path):
    _, env, _ = plugin
    run_dir = tmp_path / "sliced"
    proc = run_cli("train", "data=ml-latest-small-cold-item", "model=mf", "loss=bpr",
                   "model.dim=8", "trainer.epochs=1", "eval.slices=[activity,warm_item]",
                   "trainer.progress=false", f"paths.output_dir={run_dir}", cwd=tmp_path,
                   env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = _metrics(run_dir)
    assert any(k.startswith("test/cold_item/") for k in trained)
    assert any(k.startswith("valid/activity_") for k in trained)
    _same(_evaluated(run_dir, env), trained)
