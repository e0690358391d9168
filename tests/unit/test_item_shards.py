"""Full ranking with the items split over the ``model`` axis (jaxrec.metrics.item_shards).

One subprocess with 8 forced host devices: on 4 x 2 and 2 x 4 meshes the item-sharded
evaluation gives exactly the one-device metrics and per-user values (ties included), and no
device's program holds a whole ``[block, N]`` score block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
NUM_USERS, NUM_ITEMS, DIM = 64, 48, 4
METRICS = ["ndcg", "recall", "precision", "hit", "mrr", "map", "recall_min", "coverage", "gini",
           "novelty", "avg_popularity"]


def _data():
    from jaxrec.data.interactions import Interactions

    rng = np.random.default_rng(0)

    def inter(n, name, users=NUM_USERS):
        u, i = rng.integers(0, users, n).astype(np.int32), rng.integers(0, NUM_ITEMS, n)
        return Interactions(u, i.astype(np.int32), np.ones(n, np.float32),
                            np.zeros(n, np.int64), np.arange(NUM_USERS), np.arange(NUM_ITEMS),
                            name=name)

    train, target = inter(600, "train"), inter(200, "valid", users=NUM_USERS - 5)
    # small integer factors: many equal scores, broken towards the lower item id
    params = (rng.integers(-1, 2, (NUM_USERS, DIM)).astype(np.float32),
              rng.integers(-1, 2, (NUM_ITEMS, DIM)).astype(np.float32))
    return train, target, params


def score_fn(params, users_U):
    user_UxD, item_NxD = params
    return user_UxD[users_U] @ item_NxD.T


def _worker() -> dict:
    import jax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxrec.metrics.evaluator import RankingEvaluator
    from jaxrec.training.mesh import MeshPlan

    assert jax.device_count() == 8
    train, target, params = _data()

    def evaluator():
        return RankingEvaluator("valid", target, [train], ks=[1, 5, 10], metrics=METRICS,
                                user_block=8, train=train)

    ref = evaluator()
    metrics, (users, per_user) = ref.evaluate(score_fn, params)
    out = {"ref": [metrics, {k: v.tolist() for k, v in per_user.items()}], "block": ref.block}
    for data, model in ((4, 2), (2, 4)):
        grid = np.asarray(jax.devices()).reshape(data, model)
        plan = MeshPlan(Mesh(grid, ("data", "model")), table_rows=(NUM_USERS, NUM_ITEMS))
        ev = evaluator()
        plan.place_evaluators([ev])
        placed = jax.device_put(params, NamedSharding(plan.mesh, P("model", None)))
        got, (got_users, got_per_user) = ev.evaluate(score_fn, placed)
        hlo = ev._program(score_fn).lower(placed, ev._blocks, ev.metric_set.ctx
                                          ).compile().as_text()
        out[f"{data}x{model}"] = {
            "sharded": ev.item_mesh is not None, "users": got_users.tolist() == users.tolist(),
            "metrics": got, "per_user": {k: v.tolist() for k, v in got_per_user.items()},
            "whole_block": f"f32[{ev.block},{NUM_ITEMS}]" in hlo,
            "tile": f"f32[{ev.block // data},{NUM_ITEMS // model}]" in hlo}
    return out


# one subprocess with 8 forced devices, ~6 s on 2 cores
def test_item_sharded_full_ranking_equals_one_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JAXREC_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "tests.unit.test_item_shards"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ref_metrics, ref_per_user = out["ref"]
    for mesh in ("4x2", "2x4"):
        got = out[mesh]
        assert got["sharded"] and got["users"], mesh
        assert got["metrics"].keys() == ref_metrics.keys()
        for key, value in ref_metrics.items():
            assert got["metrics"][key] == pytest.approx(value, abs=1e-6), (mesh, key)
        for key, values in ref_per_user.items():
            assert got["per_user"][key] == pytest.approx(values, abs=1e-6), (mesh, key)
        # each device scores its [block / data, N / model] tile, never the whole block
        assert got["tile"] and not got["whole_block"], mesh


def test_item_sharding_needs_even_tiles():
    import jax
    from jax.sharding import Mesh

    from jaxrec.metrics.item_shards import can_shard_items

    one = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
    assert not can_shard_items(None, 48, 16)
    assert not can_shard_items(one, 48, 16)  # model = 1: nothing to split


if __name__ == "__main__":
    print(json.dumps(_worker()))
