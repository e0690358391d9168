"""The memory plan (``jaxrec train --dry-run``, jaxrec.memory_plan) against hand-computed bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
U, N, D = 60, 40, 8
TINY = ["data=synthetic", f"data.dataset.num_users={U}", f"data.dataset.num_items={N}",
        "data.dataset.interactions_per_user=10", f"model.dim={D}", "loss=mse",
        "trainer.batch_size=64", "eval.user_block=16", "eval.ks=[10]"]


def _plan(tmp_path, extra=()):
    from jaxrec.memory_plan import plan_memory
    from tests.helpers import compose_train

    return plan_memory(compose_train([*TINY, *extra], tmp_path))


def test_mf_bytes_by_hand_and_nothing_compiled_or_written(tmp_path):
    from jaxrec.training import compile_cache

    before = compile_cache.snapshot()
    plan = _plan(tmp_path)
    assert compile_cache.since(before)["programs"] == 0  # eval_shape: traced, never compiled
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no results.json, no config
    params = (U + N) * D * 4 + (U + N + 1) * 4  # two tables, two bias vectors, global bias
    assert plan.parts["parameters"] == params
    opt = plan.parts["optimizer state"]  # Adam: two moments, plus a few scalars
    assert 2 * params <= opt <= 2 * params + 64
    assert plan.parts["gradients"] == params
    assert plan.parts["evaluation block"] == 16 * N * 4 + 16 * 10 * 8
    assert plan.mesh == {"data": 1, "model": 1} and plan.fits
    assert plan.total == sum(plan.parts.values()) and plan.available > 0
    table = plan.table()
    assert "parameters" in table and "fits:" in table.splitlines()[-1]


def test_a_sharded_mesh_divides_tables_and_evaluation_blocks(tmp_path, monkeypatch):
    import jax

    devices = jax.local_devices() * 4  # a plan is built from a device list (never compiled)
    monkeypatch.setattr(jax, "devices", lambda *a: devices)
    plan = _plan(tmp_path, ["trainer.mesh.data=2", "trainer.mesh.model=2"])
    assert plan.mesh == {"data": 2, "model": 2}
    tables, biases = (U + N) * D * 4, (U + N + 1) * 4
    assert plan.parts["parameters"] == tables // 2 + biases  # 1-D biases stay whole
    # users over data, items over model (metrics.item_shards: candidates, then merged top-k)
    assert plan.parts["evaluation block"] == (16 * N * 4 // 2 + 16 * 10 * 8 * 2) // 2
    rows = _plan(tmp_path, ["trainer.mesh.data=2", "trainer.mesh.model=2",
                            "trainer.mesh.rows=sharded"])
    assert rows.parts["training data"] < plan.parts["training data"]
    assert "split over data=2 (trainer.mesh.rows)" in rows.notes["training data"]


def test_an_impossible_config_is_refused_with_one_line(tmp_path):
    from jaxrec.memory_plan import dry_run
    from tests.helpers import compose_train

    cfg = compose_train([*TINY, "model.dim=100000000"], tmp_path)  # 100 x 10^8 x 4 B tables
    with pytest.raises(ValueError, match=r"^--dry-run: the run needs .* per device but .* "
                                         r"available .*raise trainer.mesh.model \(now 1") as err:
        dry_run(cfg)
    assert "\n" not in str(err.value)


@pytest.mark.slow  # one CLI subprocess
def test_the_cli_flag_prints_the_plan_and_exits_0(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", "--dry-run", *TINY,
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "memory plan per device" in proc.stdout and "fits:" in proc.stdout
    assert not (tmp_path / "results.json").exists()
