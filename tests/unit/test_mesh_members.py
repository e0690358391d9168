"""Vectorised sweep members on a device mesh axis (jaxrec.training.mesh.MemberPlan).

The multi-device check runs in a subprocess with 8 forced host devices (``XLA_FLAGS``
must be set before jax is imported): a group of 8 members trained on 1 device, and the
same group stopped by a signal after epoch 2 on 8 devices and resumed on 4 (2 members
per device), give every member the same metrics, and the stacked state really is split
on its member axis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrec.config import MeshConfig
from tests.unit.test_mesh import TINY

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 8
CASES = {"1": "trainer.mesh.data=1", "4": "trainer.mesh.data=4"}
STOPPED_ON = "trainer.mesh.data=8"  # case 4 is first stopped after epoch 2 on 8 devices


def _member_overrides(k: int) -> list[str]:
    # two seeds (two batch orders), four learning rates, an L2 weight: vectorisable keys only
    return [f"seed={k % 2}", f"optim.lr={0.01 * (1 + k // 2)}", f"loss.l2={0.01 * (k % 3)}"]


def _worker(spec: dict) -> dict:
    import contextlib

    import jax

    from jaxrec.sweep.vectorized import train_group
    from jaxrec.training import loop, signals
    from jaxrec.training.mesh import path_name
    from tests.helpers import compose_train
    from tests.unit.test_mesh import _StopAfter

    assert jax.device_count() == 8, jax.devices()
    out = Path(spec["out"])
    placed: dict = {}
    finish = loop._finish

    def spy(program, chunks, k, *args):  # the chunk's stacked state after the last epoch
        if k == 0:
            state = chunks[0].state.params
            placed[spec_key] = {
                "width": len(chunks[0].indices), "chunks": len(chunks),
                "shards": {path_name(p): [list(s.data.shape) for s in x.addressable_shards]
                           for p, x in jax.tree_util.tree_flatten_with_path(state)[0]}}
        return finish(program, chunks, k, *args)

    loop._finish = spy
    results: dict = {"metrics": {}, "devices": {}, "placed": placed}
    def group(mesh: str, name: str) -> list:
        return [compose_train([*TINY, "loss=bpr", "data.preprocess.implicit=true", mesh,
                               *_member_overrides(k)], out / name / f"m{k}")
                for k in range(MEMBERS)]

    for spec_key, mesh in CASES.items():
        if spec_key != "1":  # stopped by a signal after epoch 2 on another member mesh
            original = signals.stop_on_signals
            signals.stop_on_signals = contextlib.contextmanager(lambda: (yield _StopAfter(2)))
            try:
                train_group(group(STOPPED_ON, spec_key))
            except Exception as err:  # Preempted
                results["stopped"] = type(err).__name__
            finally:
                signals.stop_on_signals = original
        outcomes = train_group(group(mesh, spec_key))
        for k, r in enumerate(outcomes):
            assert not isinstance(r, Exception), repr(r)
            results["metrics"][f"{spec_key}/{k}"] = r["metrics"]
            results["devices"][f"{spec_key}/{k}"] = [r["devices"], r["mesh"]]
    results["steps"] = [json.loads(line)["step"]
                        for line in (out / "4" / "m0" / "metrics.jsonl").open()]
    return results


def _run_worker(tmp_path, **spec) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JAXREC_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "tests.unit.test_mesh_members",
                           json.dumps({"out": str(tmp_path), **spec})],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # one subprocess, three 8-member groups (~30 s of CPU)
def test_members_on_a_mesh_axis_match_one_device(tmp_path):
    out = _run_worker(tmp_path)
    assert out["stopped"] == "Preempted"
    assert out["steps"] == [1, 2, 3]  # epochs 1-2 before the stop, 3 after the resume
    metrics = out["metrics"]
    for k in range(MEMBERS):
        ref = metrics[f"1/{k}"]
        for case in ("4",):
            got = metrics[f"{case}/{k}"]
            assert got.keys() == ref.keys()
            for key, value in got.items():
                assert value == pytest.approx(ref[key], rel=1e-4, abs=1e-5), (case, k, key)
    assert {tuple(map(json.dumps, v)) for k, v in out["devices"].items() if k.startswith("1/")} \
        == {("1", json.dumps({"data": 1, "model": 1}))}
    assert out["devices"]["4/0"] == [4, {"members": 4}]
    assert out["devices"]["4/7"] == [4, {"members": 4}]
    # the stacked state is split on its member axis: 8 members, 2 per device on 4 devices
    users = out["placed"]["4"]["shards"]["user_emb_UxD"][0][1]
    assert out["placed"]["4"]["shards"]["user_emb_UxD"] == [[2, users, 8]] * 4
    assert out["placed"]["1"]["shards"]["user_emb_UxD"] == [[8, users, 8]]
    assert [out["placed"][c]["width"] for c in CASES] == [8, 8]


def test_member_devices_divide_the_group(monkeypatch):
    import jax

    from jaxrec.training.mesh import member_devices, member_plan, requested_devices

    monkeypatch.setattr(jax, "local_device_count", lambda: 8)
    assert requested_devices(MeshConfig()) == 8
    assert requested_devices(MeshConfig(data=1)) == 1
    assert requested_devices(MeshConfig(data=3)) == 1  # does not fit: one device
    assert member_devices(MeshConfig(), 16) == (8, None)
    assert member_devices(MeshConfig(data=4), 8) == (4, None)
    assert member_devices(MeshConfig(data=1), 8) == (1, None)
    n, note = member_devices(MeshConfig(), 12)
    assert n == 6 and "placed on 6" in note
    n, note = member_devices(MeshConfig(), 7)
    assert n == 7 and "placed on 7" in note
    n, note = member_devices(MeshConfig(data=3), 8)
    assert n == 1 and "must divide" in note
    monkeypatch.undo()
    if jax.local_device_count() == 1:
        assert member_plan(MeshConfig(), 8) == (None, None)


def test_chunks_are_multiples_of_the_member_devices():
    from types import SimpleNamespace

    import numpy as np

    from jaxrec.training.chunks import make_chunks

    members = [SimpleNamespace(state={"w": np.zeros(2)}, hparams={}) for _ in range(16)]
    widths = lambda **kw: [len(c.indices) for c in make_chunks(members, **kw)]  # noqa: E731
    assert widths(lanes=6) == [6, 6, 4]
    assert widths(lanes=1, multiple=8) == [8, 8]
    assert widths(lanes=2, multiple=8) == [16]
    assert widths(lanes=1, multiple=4) == [4, 4, 4, 4]
    assert widths(lanes=3, multiple=4) == [8, 8]
    with pytest.raises(ValueError, match="do not split over 3 devices"):
        make_chunks(members, lanes=1, multiple=3)


def test_sweep_groups_are_sized_in_multiples_of_the_devices():
    from jaxrec.sweep.runner import group_chunk_size

    assert group_chunk_size(16, 6) == 6  # 6, 6, 4
    assert group_chunk_size(16, 16) == 16
    assert group_chunk_size(16, 16, devices=8) == 16
    assert group_chunk_size(16, 12, devices=8) == 8  # 8, 8 (1 per device)
    assert group_chunk_size(20, 16, devices=8) == 16  # 16 on 8 devices, then 4 on 4
    assert group_chunk_size(12, 64, devices=8) == 16  # one chunk of 12 (on 6 devices)
    assert group_chunk_size(16, 4, devices=8) == 4  # memory allows fewer than the devices


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
