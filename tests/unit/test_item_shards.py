"""Full ranking with the items split over the ``model`` axis (jaxrec.metrics.item_shards).

One subprocess with 8 forced host devices: on 4 x 2 and 2 x 4 meshes (and a catalogue the
``model`` axis does not divide) the item-sharded evaluation gives the one-device metrics and
per-user values (ties included), and no device's program holds a whole ``[block, N]`` score
block.
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
NUM_USERS, DIM = 64, 4
CASES = {"4x2": (4, 2, 48), "2x4": (2, 4, 48), "2x4 uneven": (2, 4, 46)}  # data, model, items
METRICS = ["ndcg", "recall", "precision", "hit", "mrr", "map", "recall_min", "coverage", "gini",
           "novelty", "avg_popularity"]


def _data(num_items: int):
    from jaxrec.data.interactions import Interactions

    rng = np.random.default_rng(0)

    def inter(n, name, users=NUM_USERS):
        u, i = rng.integers(0, users, n).astype(np.int32), rng.integers(0, num_items, n)
        return Interactions(u, i.astype(np.int32), np.ones(n, np.float32),
                            np.zeros(n, np.int64), np.arange(NUM_USERS), np.arange(num_items),
                            name=name)

    train, target = inter(600, "train"), inter(200, "valid", users=NUM_USERS - 5)
    # small integer factors: many equal scores, broken towards the lower item id
    params = (rng.integers(-1, 2, (NUM_USERS, DIM)).astype(np.float32),
              rng.integers(-1, 2, (num_items, DIM)).astype(np.float32))
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
    out = {}
    for name, (data, model, num_items) in CASES.items():
        train, target, params = _data(num_items)

        def evaluator(target=target, train=train):
            return RankingEvaluator("valid", target, [train], ks=[1, 5, 10], metrics=METRICS,
                                    user_block=8, train=train)

        metrics, (users, per_user) = evaluator().evaluate(score_fn, params)
        grid = np.asarray(jax.devices()).reshape(data, model)
        plan = MeshPlan(Mesh(grid, ("data", "model")), table_rows=(NUM_USERS, num_items))
        ev = evaluator()
        plan.place_evaluators([ev])
        sharding = NamedSharding(plan.mesh, P("model", None))
        placed = tuple(jax.device_put(x, sharding if len(x) % model == 0 else
                                      NamedSharding(plan.mesh, P())) for x in params)
        got, (got_users, got_per_user) = ev.evaluate(score_fn, placed)
        hlo = ev._program(score_fn).lower(placed, ev._blocks, ev.metric_set.ctx
                                          ).compile().as_text()
        tile = -(-num_items // model)
        out[name] = {
            "ref": [metrics, {k: v.tolist() for k, v in per_user.items()}],
            "sharded": ev.item_mesh is not None, "users": got_users.tolist() == users.tolist(),
            "metrics": got, "per_user": {k: v.tolist() for k, v in got_per_user.items()},
            "whole_block": f"f32[{ev.block},{num_items}]" in hlo,
            "tile": f"f32[{ev.block // data},{tile}]" in hlo}
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
    for mesh in CASES:
        got = out[mesh]
        ref_metrics, ref_per_user = got["ref"]
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
    assert not can_shard_items(None, 16)
    assert not can_shard_items(one, 16)  # model = 1: nothing to split


if __name__ == "__main__":
    print(json.dumps(_worker()))
