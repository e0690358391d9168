"""Data-parallel training over a device mesh (jaxrec.training.mesh).

The multi-device checks run in one subprocess with 8 forced host devices
(``XLA_FLAGS`` must be set before jax is imported): the same config on 1, 2, 8
devices and with row-sharded tables gives the same metrics to float tolerance, the
tables really are split, and a run checkpointed on one mesh resumes on another.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrec.config import MeshConfig, validate_mesh

ROOT = Path(__file__).resolve().parents[2]
TINY = ["data=synthetic", "data.dataset.num_users=64", "data.dataset.num_items=48",
        "data.dataset.interactions_per_user=10", "model.dim=8", "trainer.epochs=3",
        "trainer.batch_size=64", "trainer.patience=0", "eval.save_per_user=false",
        "trainer.save_checkpoint=false", "trainer.progress=false", "eval.ks=[10]",
        "trainer.checkpoint_seconds=0"]
CASES = {
    "mf_mse": ["loss=mse"],
    "mf_bpr": ["loss=bpr", "data.preprocess.implicit=true"],
    "mf_lazy": ["loss=bpr", "data.preprocess.implicit=true", "optim.sparse=true"],  # scatter
    "two_tower": ["model=two_tower", "loss=sampled_softmax", "data.preprocess.implicit=true",
                  "data.features=[genres]"],
}
MESHES = {"1": ["trainer.mesh.data=1"], "2": ["trainer.mesh.data=2"],
          "8": ["trainer.mesh.data=8"], "4x2": ["trainer.mesh.data=4", "trainer.mesh.model=2"],
          "2x4": ["trainer.mesh.data=2", "trainer.mesh.model=4"],
          "4x2s": ["trainer.mesh.data=4", "trainer.mesh.model=2", "trainer.mesh.rows=sharded"]}


# ---- the subprocess (8 forced host devices) -------------------------------------------------

class _StopAfter:
    """A stand-in for `jaxrec.training.signals.stop_on_signals`'s flag: true after ``n`` polls."""

    def __init__(self, n: int):
        self.n, self.calls, self.signum = n, 0, 15

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def _shards(case: str, mesh: str, out: Path) -> dict:
    """Train one config by the runner's own pieces; each parameter's shard shapes."""
    import jax
    import numpy as np

    from jaxrec.assembly import assemble
    from jaxrec.runner import member, mesh_plan, program
    from jaxrec.training.loop import fit
    from jaxrec.training.mesh import path_name
    from jaxrec.training.step import init_state
    from tests.helpers import compose_train

    run = assemble(compose_train([*TINY, *CASES[case], *MESHES[mesh]], out))
    plan = mesh_plan(run)
    graphdef, state = init_state(run.model, run.tx)
    placed = plan.place(state)  # as fit places it: parameters and optimiser moments
    opt = [(path_name(p), [list(s.data.shape) for s in x.addressable_shards])
           for p, x in jax.tree_util.tree_flatten_with_path(placed.opt_state)[0] if x.ndim == 2]
    mem = member(run, placed)
    prog = program(run, graphdef, mesh=plan)
    [result] = fit(prog, [mem])
    mem.checkpoints.close()
    flat = jax.tree_util.tree_flatten_with_path(result.state[0])[0]
    placed_data = plan.prepare(prog, [], [])  # what the epoch reads: no rows with rows=sharded
    batch = plan.batch_rows.batches(np.zeros((2, 64), np.int32))["users"]
    return {"sharded": plan.sharded(result.state[0]),
            "data_arrays": sorted(placed_data.data.arrays),
            "row_shards": [list(s.data.shape) for s in batch.addressable_shards],
            "opt_shards": dict(opt),
            "users": run.dataset.info.num_users, "items": run.dataset.info.num_items,
            "shards": {path_name(p): [list(s.data.shape) for s in x.addressable_shards]
                       for p, x in flat}}


def _worker(spec: dict) -> dict:
    import jax

    from jaxrec.training import signals
    from tests.helpers import run_train

    assert jax.device_count() == 8, jax.devices()
    out_dir = Path(spec["out"])
    results: dict = {"metrics": {}, "devices": {}}
    for case, meshes in spec["runs"].items():
        for mesh in meshes:
            r = run_train([*TINY, *CASES[case], *MESHES[mesh]], out_dir / f"{case}-{mesh}")
            results["metrics"][f"{case}/{mesh}"] = r["metrics"]
            results["devices"][f"{case}/{mesh}"] = [r["devices"], r["mesh"]]
    if spec.get("shards"):
        results["shards"] = _shards("mf_bpr", "4x2s", out_dir / "shards")
    if spec.get("resume"):  # stopped after epoch 2 on one mesh, resumed on another
        case, first, second = spec["resume"]
        run_dir = out_dir / "resume"
        original = signals.stop_on_signals
        signals.stop_on_signals = contextlib.contextmanager(lambda: (yield _StopAfter(2)))
        try:
            run_train([*TINY, *CASES[case], *MESHES[first]], run_dir)
        except Exception as err:  # Preempted
            results["stopped"] = type(err).__name__
        finally:
            signals.stop_on_signals = original
        r = run_train([*TINY, *CASES[case], *MESHES[second]], run_dir)
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
        results["resumed"] = {"metrics": r["metrics"], "devices": r["devices"], "steps": steps}
    return results


def _run_worker(tmp_path, **spec) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JAXREC_CACHE_DIR": str(tmp_path / "cache")}
    spec = {"out": str(tmp_path), **spec}
    proc = subprocess.run([sys.executable, "-m", "tests.unit.test_mesh", json.dumps(spec)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_same(metrics: dict, reference: str, *, tol: float = 2e-3) -> None:
    ref = metrics[reference]
    for name, got in metrics.items():
        assert got.keys() == ref.keys(), name
        for key, value in got.items():
            assert value == pytest.approx(ref[key], abs=tol, rel=tol), (name, key)


# ---- tests ---------------------------------------------------------------------------------

@pytest.mark.slow  # one subprocess, ~60 s on 2 cores
def test_data_parallel_and_row_sharded_runs_match_one_device(tmp_path):
    # 4x2s: the rows stay on the host, each epoch's batches placed over data (same batches)
    out = _run_worker(tmp_path, runs={"mf_bpr": ["1", "2", "4x2", "4x2s"]}, shards=True)
    _assert_same({k: v for k, v in out["metrics"].items()}, "mf_bpr/1")
    assert out["devices"] == {"mf_bpr/1": [1, {"data": 1, "model": 1}],
                              "mf_bpr/2": [2, {"data": 2, "model": 1}],
                              "mf_bpr/4x2": [8, {"data": 4, "model": 2}],
                              "mf_bpr/4x2s": [8, {"data": 4, "model": 2}]}
    shards = out["shards"]
    assert set(shards["sharded"]) == {"user_emb_UxD", "item_emb_NxD"}
    # mf's tables: 8 shards each (4 data x 2 model), every one half the rows
    users, items = shards["users"], shards["items"]
    assert shards["shards"]["user_emb_UxD"] == [[users // 2, 8]] * 8
    assert shards["shards"]["item_emb_NxD"] == ([[items // 2, 8]] * 8 if items % 2 == 0
                                                else [[items, 8]] * 8)
    assert shards["shards"]["user_bias_U"] == [[users]] * 8  # 1-D: replicated
    # rows=sharded: the epoch's data holds no rows; a [2, 64] order's batches reach each of
    # the 8 devices as its data shard's 16 columns (replicated over model)
    assert "users" not in shards["data_arrays"] and "indptr" in shards["data_arrays"]
    assert shards["row_shards"] == [[2, 16]] * 8
    # the optimiser's moments are sharded like their parameters
    moments = {k: v for k, v in shards["opt_shards"].items() if "user_emb_UxD" in k}
    assert len(moments) == 2 and all(v == [[users // 2, 8]] * 8 for v in moments.values())


@pytest.mark.slow
def test_every_case_on_1_2_8_devices_and_sharded_tables(tmp_path):
    runs = {"mf_mse": ["1", "8", "4x2"], "two_tower": ["1", "2", "2x4"],  # mf_bpr: above
            "mf_lazy": ["1", "2x4"]}  # lazy Adam's gather / scatter on row-sharded tables
    out = _run_worker(tmp_path, runs=runs)
    for case, meshes in runs.items():
        _assert_same({f"{case}/{m}": out["metrics"][f"{case}/{m}"] for m in meshes},
                     f"{case}/1")


@pytest.mark.slow
def test_resume_from_a_sharded_checkpoint_onto_another_device_count(tmp_path):
    out = _run_worker(tmp_path, runs={"mf_bpr": ["1"]}, resume=["mf_bpr", "4x2", "2"])
    assert out["stopped"] == "Preempted"
    resumed = out["resumed"]
    assert resumed["devices"] == 2
    assert resumed["steps"] == [1, 2, 3]  # every epoch logged once
    _assert_same({"ref": out["metrics"]["mf_bpr/1"], "resumed": resumed["metrics"]}, "ref")


def test_mesh_shape_and_one_line_errors():
    from jaxrec.training.mesh import mesh_shape

    assert mesh_shape(MeshConfig(), 8) == (8, 1)
    assert mesh_shape(MeshConfig(model=2), 8) == (4, 2)
    assert mesh_shape(MeshConfig(data=2, model=2), 8) == (2, 2)
    assert mesh_shape(MeshConfig(), 1) == (1, 1)
    with pytest.raises(ValueError, match=r"^trainer.mesh: data x model = 3 x 1 must divide"):
        mesh_shape(MeshConfig(data=3), 8)
    with pytest.raises(ValueError, match=r"^trainer.mesh.model: 3 does not divide the 8"):
        mesh_shape(MeshConfig(model=3), 8)
    for bad, match in ((MeshConfig(data=0), "trainer.mesh.data: must be"),
                       (MeshConfig(model=0), "trainer.mesh.model: must be"),
                       (MeshConfig(rules={"emb": "cols"}), "trainer.mesh.rules.emb: expected"),
                       (MeshConfig(rules={"(": "rows"}), "is not a regex"),
                       (MeshConfig(rows="cols"), "trainer.mesh.rows: expected auto, ")):
        with pytest.raises(ValueError, match=match) as err:
            validate_mesh(bad)
        assert "\n" not in str(err.value)


def test_batch_must_split_over_the_data_axis():
    import jax

    from jaxrec.training.mesh import make_plan

    devices = jax.local_devices() * 4  # a plan is built from a device list (never compiled)
    with pytest.raises(ValueError, match=r"^trainer.batch_size: 6 must be divisible by "
                                         r"trainer.mesh.data=4"):
        make_plan(MeshConfig(), batch_size=6, devices=devices)
    assert make_plan(MeshConfig(), batch_size=6, devices=devices[:1]) is None


def test_placement_rule_by_shape_and_overrides():
    import jax
    import numpy as np
    from jax.sharding import Mesh

    from jaxrec.training.mesh import MeshPlan, describe

    mesh = Mesh(np.asarray(jax.local_devices()[:1]).reshape(1, 1), ("data", "model"))
    plan = MeshPlan(mesh, table_rows=(10, 6), rules={"item_bias": "rows"})
    state = {"user_emb": np.zeros((10, 4)), "item_emb": np.zeros((6, 4)),
             "dense": np.zeros((4, 4)), "item_bias": np.zeros(6), "mu": {
                 "user_emb": np.zeros((10, 4))}}
    assert sorted(plan.sharded(state)) == ["item_bias", "item_emb", "mu/user_emb", "user_emb"]
    plan = MeshPlan(mesh, table_rows=(10, 6), rules={"^user_emb": "replicated"})
    assert sorted(plan.sharded(state)) == ["item_emb", "mu/user_emb"]
    assert describe(None) == {"devices": 1, "mesh": {"data": 1, "model": 1}}
    assert describe(plan) == {"devices": 1, "mesh": {"data": 1, "model": 1}}


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
