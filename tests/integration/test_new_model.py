"""Adding a model is one module and one yaml: no edit anywhere else.

A model written into a temporary package, with its yaml in a temporary config
folder (``hydra.searchpath``), trains from the CLI, runs in a vectorised sweep and
is re-evaluated; and ``jaxrec evaluate`` reports exactly the keys of the run's
own ``results.json``, slices included.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MODEL = '''
"""Plain dot-product MF: the smallest jaxrec model (a test plug-in)."""
import jax
import jax.numpy as jnp
from flax import nnx


class DotMF(nnx.Module):
    def __init__(self, ctx, *, dim: int = 8, init_std: float = 0.1, rngs: nnx.Rngs):
        init = jax.nn.initializers.normal(init_std)
        self.user_emb_UxD = nnx.Param(init(rngs.params(), (ctx.num_users, dim)))
        self.item_emb_NxD = nnx.Param(init(rngs.params(), (ctx.num_items, dim)))
        self.mean = ctx.info.rating_mean

    def __call__(self, users, items):
        p, q = self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]
        return self.mean + jnp.sum(p * q, axis=-1)

    def score_all(self, users_U):
        return self.mean + self.user_emb_UxD[...][users_U] @ self.item_emb_NxD[...].T

    def l2_rows(self, users, items):
        return [self.user_emb_UxD[...][users], self.item_emb_NxD[...][items]]
'''

YAML = """\
# Plain dot-product MF from a plug-in package (tests/integration/test_new_model.py).
_target_: myrec_plugin.dot_mf.DotMF
_partial_: true
dim: 8
init_std: 0.1
"""

SPEC = """\
# Two learning rates for the plug-in model (a test study).
method: grid
metric:
  name: valid/rmse
  goal: minimize
parameters:
  optim.lr:
    values: [0.01, 0.02]
command:
  - ${env}
  - ${interpreter}
  - -m
  - jaxrec.cli
  - train
  - model=dot_mf
  - trainer.epochs=2
  - eval.save_per_user=false
  - ${args_no_hyphens}
"""


def run_cli(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "jaxrec.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("plugin")
    (root / "pkg" / "myrec_plugin").mkdir(parents=True)
    (root / "pkg" / "myrec_plugin" / "__init__.py").write_text("")
    (root / "pkg" / "myrec_plugin" / "dot_mf.py").write_text(textwrap.dedent(MODEL))
    (root / "conf" / "model").mkdir(parents=True)
    (root / "conf" / "model" / "dot_mf.yaml").write_text(YAML)
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

    (root / "dot_mf.yaml").write_text(SPEC)
    study = root / "study"
    proc = run_cli("sweep", root / "dot_mf.yaml", searchpath, f"sweep.dir={study}", cwd=root,
                   env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((study / "results.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert {r["group_size"] for r in rows} == {"2"}  # one vectorised group
    member = Path(rows[0]["run_dir"])
    _same(_evaluated(member, env), _metrics(member))


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
