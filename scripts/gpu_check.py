"""Steps of ``scripts/gpu_check.sh`` (one per call, each bounded by the shell's ``timeout``).

    python scripts/gpu_check.py info|equivalence|table OUT_DIR [--tiny]

* ``info``: JAX's version, backend, devices and each device's memory limit;
* ``equivalence``: mf/bpr (tiny) trained on the default backend over every device
  (``trainer.mesh.data=-1``) and on the CPU (``JAX_PLATFORMS=cpu``): the same metrics to
  float tolerance (2e-3), as ``tests/unit/test_mesh.py`` asks of forced host devices;
* ``table``: the steps' status lines and measurements (``OUT_DIR/*.json``) as one
  markdown table, printed and written to ``OUT_DIR/gpu_check.md``, and all of them in
  ``OUT_DIR/gpu_check.json``.

Every step writes ``OUT_DIR/<step>.json``; the shell script records each step's exit
status and seconds in ``OUT_DIR/steps.tsv``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_RUN = ["data=synthetic", "data.dataset.num_users=64", "data.dataset.num_items=48",
            "data.dataset.interactions_per_user=10", "model.dim=8", "loss=bpr",
            "data.preprocess.implicit=true", "trainer.epochs=3", "trainer.batch_size=64",
            "trainer.patience=0", "trainer.progress=false", "eval.ks=[10]",
            "trainer.save_checkpoint=false", "eval.save_per_user=false",
            "logger.console=false", "trainer.mesh.data=-1"]


def info(out: Path) -> dict:
    import jax

    devices = []
    for d in jax.devices():
        try:
            limit = (d.memory_stats() or {}).get("bytes_limit")
        except Exception:
            limit = None
        devices.append({"kind": d.device_kind, "platform": d.platform, "bytes_limit": limit})
    record = {"jax": jax.__version__, "backend": jax.default_backend(), "devices": devices}
    for d in devices:
        limit = f"{d['bytes_limit'] / 2**30:.1f} GiB" if d["bytes_limit"] else "n/a"
        print(f"{d['platform']}: {d['kind']} (memory limit {limit})")
    print(f"jax {record['jax']}, backend {record['backend']}, {len(devices)} device(s)")
    return record


def _train(tmp: Path, name: str, env: dict) -> dict:
    out = tmp / name
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", *TINY_RUN,
                           f"hydra.run.dir={out}", f"paths.output_dir={out}"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{name} run failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "results.json").read_text())


def equivalence(out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        here = _train(Path(tmp), "default", env)
        cpu = _train(Path(tmp), "cpu", {**env, "JAX_PLATFORMS": "cpu"})
    worst = max(abs(here["metrics"][k] - v) for k, v in cpu["metrics"].items())
    record = {"devices": here["devices"], "mesh": here["mesh"],
              "platform": here["environment"].get("backend", ""), "max_abs_diff": worst,
              "ok": worst <= 2e-3}
    print(f"default backend ({here['devices']} device(s)) vs CPU: max |diff| {worst:.2e} "
          f"over {len(cpu['metrics'])} metrics -> {'ok' if record['ok'] else 'MISMATCH'}")
    if not record["ok"]:
        raise SystemExit(1)
    return record


def table(out: Path) -> dict:
    rows = ["| step | status | seconds | result |", "| --- | --- | ---: | --- |"]
    steps = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()
             if line.strip()] if (out / "steps.tsv").is_file() else []

    def load(name):
        path = out / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    for name, status, seconds in steps:
        data, result = load(name), ""
        if name == "info" and data:
            result = f"jax {data['jax']}, {len(data['devices'])} x {data['devices'][0]['kind']}"
        elif name == "equivalence" and data:
            result = f"max abs diff vs CPU {data['max_abs_diff']:.1e}"
        elif name == "scale" and data:
            r = data[0]
            result = (f"{r['users']:,} users x {r['items']:,} items, {r['train']:,} train: "
                      f"{r['seconds_per_epoch']:.2f} s/epoch, full ranking of "
                      f"{r['eval_users']:,} users {r['eval_seconds']:.2f} s")
        elif name == "sweep" and data:
            parts = [f"{m} {w:.1f} s" for m, (w, _) in data.items()]
            if "vectorised" in data and "single" in data:
                ratio = data["vectorised"][0] / data["single"][0]
                parts.append(f"16 trials / 1 trial = {ratio:.2f}")
            result = ", ".join(parts)
        state = "ok" if status == "0" else ("timeout" if status == "124" else f"exit {status}")
        rows.append(f"| {name} | {state} | {float(seconds):.0f} | {result} |")
    text = "\n".join(rows)
    print(text)
    (out / "gpu_check.md").write_text(text + "\n")
    (out / "gpu_check.json").write_text(json.dumps(
        {name: {"status": int(status), "seconds": float(seconds), "result": load(name)}
         for name, status, seconds in steps}, indent=2))
    return {"steps": len(steps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("info", "equivalence", "table"))
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"info": info, "equivalence": equivalence, "table": table}[args.step](args.out)
    if args.step != "table":
        (args.out / f"{args.step}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
