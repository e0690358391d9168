"""results.json records the environment; ``jaxrec --version`` works."""

from __future__ import annotations

import importlib.metadata
import subprocess
from types import SimpleNamespace

import pytest

from jaxrec import environment as env


def test_environment_names_versions_devices_and_host():
    out = env.environment()
    assert out["jaxrec"] == env.version()
    assert set(out["packages"]) == {"jax", "jaxlib", "flax", "optax"}
    assert all(out["packages"].values())
    assert out["backend"] in ("cpu", "gpu", "tpu") and out["device_count"] >= 1
    assert out["device_kinds"] and out["python"].count(".") == 2 and out["host"]


def test_git_commit_inside_and_outside_a_checkout(tmp_path):
    assert env.git_commit(tmp_path) is None  # never fails outside a checkout
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert env.git_commit(tmp_path) is None  # a checkout without commits
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "add", "f"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"],
                   cwd=tmp_path, check=True)
    commit = env.git_commit(tmp_path)
    assert commit and len(commit) == 40
    (tmp_path / "f").write_text("y")
    assert env.git_commit(tmp_path) == commit + "+dirty"


def test_version_falls_back_to_the_source_tree(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    from jaxrec import __version__

    assert env.version() == __version__


def test_jaxrec_version_prints_one_line(capsys):
    from jaxrec.cli import main

    main(["--version"])
    out = capsys.readouterr().out
    assert out.startswith(f"jaxrec {env.version()}") and "jax " in out and "flax " in out
    assert out.count("\n") == 1


def test_results_json_holds_the_environment():
    from jaxrec.runner import results_dict

    info = SimpleNamespace(name="d", num_users=2, num_items=3)
    full = SimpleNamespace(universe=None)
    run = SimpleNamespace(dataset=SimpleNamespace(info=info, train=[1], valid=None, test=[1],
                                                  full=full),
                          protocol=dict, notes=[], privacy=None, test_evals=[])
    result = SimpleNamespace(metrics={}, best_epoch=1, epochs_run=1, stop_reason="epochs",
                             monitor="valid/rmse", compile_seconds=0.0, seconds_per_epoch=0.0,
                             eval_seconds=0.0, loop_seconds=0.0)
    out = results_dict(run, result, total_seconds=1.0)
    assert out["environment"]["jaxrec"] == env.version()
    assert out["environment"]["packages"]["jax"] == pytest.importorskip("jax").__version__
