"""A run folder is data: a tampered config.yaml cannot run code, a changed data file cannot
leak training rows into `evaluate`, and a re-run into a used folder starts clean."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from jaxrec.assembly import load_config, load_run
from jaxrec.trust import check_targets
from tests.helpers import run_train

FAST = ["data=synthetic", "model.dim=4", "trainer.epochs=1", "trainer.progress=false",
        "eval.save_per_user=false", "eval.metrics=[ndcg]"]


@pytest.mark.parametrize(("path", "target"), [
    ("model", "builtins.open"), ("model", "os.system"), ("loss", "shutil.copyfile"),
    ("data.dataset", "jaxrec.io.atomic_write_text"), ("eval.thing", "jaxrec.models.mf.MF"),
    ("model", "jaxrec.losses.MSE")])
def test_targets_outside_the_allow_list_are_refused(path, target):
    node: dict = {}
    cursor = node
    for part in path.split("."):
        cursor = cursor.setdefault(part, {})
    cursor["_target_"] = target
    with pytest.raises(ValueError, match=r"is not allowed: a run folder may only name"):
        check_targets(node, "run/config.yaml")


def test_trusted_plugin_prefix_is_allowed(monkeypatch):
    config = {"model": {"_target_": "myrec_plugin.dot_mf.DotMF"}}
    with pytest.raises(ValueError):
        check_targets(config, "c")
    monkeypatch.setenv("JAXREC_TRUSTED_MODULES", "myrec_plugin")
    check_targets(config, "c")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    run_train(FAST, run_dir)
    return run_dir


def test_a_tampered_config_is_refused_before_anything_runs(trained, tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    cfg = OmegaConf.load(trained / "config.yaml")
    cfg.model = {"_target_": "builtins.open", "file": str(tmp_path / "pwned"), "mode": "w"}
    (evil / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(ValueError, match="model._target_='builtins.open' is not allowed"):
        load_run(evil)
    assert not (tmp_path / "pwned").exists()
    (evil / "config.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="not a readable config"):
        load_config(evil)


def test_changed_data_is_refused(trained, tmp_path):
    loaded = load_run(trained)  # unchanged data: fine
    assert loaded.state is not None
    saved = json.loads((trained / "data.json").read_text())
    changed = tmp_path / "changed"
    changed.mkdir()
    for name in ("config.yaml", "data.json"):
        (changed / name).write_text((trained / name).read_text())
    (changed / "checkpoints").symlink_to(trained / "checkpoints")
    cfg = OmegaConf.load(changed / "config.yaml")
    cfg.data.dataset.num_users = int(cfg.data.dataset.num_users) + 1  # "one row appended"
    (changed / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(ValueError, match=r"the data differs from what the run was trained on"):
        load_run(changed)
    assert saved["fingerprint"]


def test_a_rerun_into_a_used_folder_leaves_no_stale_checkpoint(tmp_path):
    run_train(FAST, tmp_path)
    assert (tmp_path / "checkpoints" / "best").is_dir()
    run_train([*FAST, "trainer.save_checkpoint=false", "trainer.resume=never"], tmp_path)
    assert not (tmp_path / "checkpoints" / "best").exists()
    with pytest.raises(FileNotFoundError, match="checkpoints/best not found"):
        load_run(tmp_path)
