"""Packaging: the wheel ships the Hydra configs and runs outside the repository.

The wheel is installed with ``--no-deps`` into a fresh venv whose dependencies
come from the test interpreter's site-packages through a ``.pth`` line. A
directory added that way is not scanned for ``.pth`` files itself, so the
editable install's ``_editable_impl_jaxrec.pth`` (which puts the repository on
``sys.path``) stays inactive and only the wheel's ``jaxrec`` is importable.
Every command runs from a folder outside the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
PROBE = ("import json, sys, jaxrec, jaxrec.paths; print(json.dumps({'file': jaxrec.__file__, "
         "'configs': str(jaxrec.paths.CONFIG_DIR), 'path': sys.path}))")


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    env = env if env is not None else clean_env()
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def clean_env(**extra: str) -> dict[str, str]:
    """The test environment without anything that points Python at the repository."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HYDRA_FULL_ERROR")}
    env.update(PYTHONNOUSERSITE="1", WANDB_MODE="offline", **extra)
    return env


def repo_configs() -> set[str]:
    return {p.relative_to(REPO / "configs").as_posix()
            for p in (REPO / "configs").rglob("*.yaml")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = run([sys.executable, "-m", "build", "--wheel", "--outdir", out, REPO], cwd=out)
    if proc.returncode != 0 and "hatchling" in proc.stdout + proc.stderr and (
            "Could not find a version" in proc.stderr or "No matching distribution" in proc.stderr):
        pytest.skip("the build backend (hatchling) cannot be installed here: " +
                    proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (path,) = out.glob("jaxrec-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory) -> Path:
    """A venv holding only the wheel's jaxrec; dependencies reused from this interpreter."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    proc = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    proc = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                "--no-index", "--quiet", wheel], cwd=venv.parent)
    assert proc.returncode == 0, proc.stderr
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=venv.parent).stdout.strip())
    deps = Path(sysconfig.get_paths()["purelib"])
    (site / "_jaxrec_test_deps.pth").write_text(f"{deps}\n")
    return venv


@pytest.fixture
def outside(tmp_path) -> Path:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    assert REPO not in cwd.parents
    return cwd


@pytest.mark.slow
def test_wheel_contains_package_and_every_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("jaxrec/configs/") for n in names
               if n.startswith("jaxrec/configs/")}
    assert shipped == repo_configs()
    specs = {n.removeprefix("jaxrec/sweeps/") for n in names if n.startswith("jaxrec/sweeps/")}
    assert specs == {p.name for p in (REPO / "sweeps").glob("*.yaml")}
    assert {"jaxrec/__init__.py", "jaxrec/cli.py", "jaxrec/train.py", "jaxrec/paths.py"} <= names
    assert not any(n.startswith(("configs/", "tests/", "outputs/")) or "__pycache__" in n
                   for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "jaxrec = jaxrec.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_wheel_install_uses_packaged_configs(wheel_venv, outside):
    proc = run([wheel_venv / "bin" / "python", "-c", PROBE], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    site = Path(probe["file"]).parents[1]
    assert site.is_relative_to(wheel_venv)
    assert Path(probe["configs"]) == site / "jaxrec" / "configs"
    assert str(REPO) not in probe["path"], "the editable install leaked into the wheel venv"
    assert not any(p == str(REPO) or p.startswith(f"{REPO}/jaxrec") for p in probe["path"])


@pytest.mark.slow
def test_wheel_jaxrec_train_cfg_job(wheel_venv, outside):
    jaxrec = wheel_venv / "bin" / "jaxrec"
    proc = run([jaxrec, "train", "--cfg", "job", "model.dim=8"], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    cfg = OmegaConf.create(proc.stdout)
    assert cfg.model.dim == 8 and cfg.data.dataset.variant == "ml-latest-small"
    proc = run([jaxrec, "train", "--info", "searchpath"], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert f"file://{wheel_venv}" in proc.stdout and f"file://{REPO}" not in proc.stdout


@pytest.mark.slow
def test_wheel_trains_one_synthetic_epoch(wheel_venv, outside):
    run_dir = outside / "run"
    proc = run([wheel_venv / "bin" / "jaxrec", "train", "data=synthetic", "trainer.epochs=1",
                "model.dim=4", "trainer.progress=false", f"paths.output_dir={run_dir}"],
               cwd=outside)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs_run"] == 1 and "test/rmse" in results["metrics"]


@pytest.mark.slow
def test_wheel_ships_the_sweep_specs_and_the_reproduction_runner(wheel_venv, outside):
    jaxrec = wheel_venv / "bin" / "jaxrec"
    proc = run([jaxrec, "sweep", "list"], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == sorted(
        p.stem for p in (REPO / "sweeps").glob("*.yaml"))
    proc = run([jaxrec, "reproduce", "--list"], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert "paper_ncf_neumf_ml-1m" in proc.stdout.split()
    # a packaged spec is found by name; the study goes under the working directory
    proc = run([jaxrec, "sweep", "mf_lr_l2", "sweep.run_cap=1", "data=synthetic",
                "trainer.epochs=1", "model.dim=4", "trainer.progress=false"], cwd=outside)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (outside / "outputs" / "sweeps" / "mf_lr_l2" / "results.csv").is_file()


def _is_editable_install() -> bool:
    try:
        direct_url = metadata.distribution("jaxrec").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return False
    return bool(direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"))


@pytest.mark.skipif(not _is_editable_install(), reason="jaxrec is not an editable install here")
def test_editable_install_reads_the_repository_configs(outside):
    # Hatchling's editable wheel also copies the force-included configs into
    # site-packages/jaxrec/configs; the repository's package and configs must win.
    proc = run([sys.executable, "-c", PROBE], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    assert Path(probe["file"]) == REPO / "jaxrec" / "__init__.py"
    assert Path(probe["configs"]) == REPO / "configs"
    proc = run([Path(sys.executable).parent / "jaxrec", "train", "--cfg", "job",
                "trainer.epochs=3"], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert OmegaConf.create(proc.stdout).trainer.epochs == 3
