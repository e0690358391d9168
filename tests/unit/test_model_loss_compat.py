"""A model states the loss it is meant for: every ``configs/model`` yaml against every
``configs/loss`` yaml; compatible pairs pass the assembly's model check, the others fail
with one line naming the model, the loss and the compatible ones."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flax import nnx
from hydra.utils import instantiate
from omegaconf import OmegaConf

from jaxrec.models.base import ModelContext
from jaxrec.paths import CONFIG_DIR
from jaxrec.types import DataInfo
from tests.helpers import TINY_MODELS, build, compose_train

INFO = DataInfo(num_users=7, num_items=11, num_train=40, rating_mean=3.5, rating_min=0.5,
                rating_max=5.0, implicit=False, name="tiny")
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
LOSSES = sorted(p.stem for p in (CONFIG_DIR / "loss").glob("*.yaml"))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models():
    cfgs = {name: OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml"),
                                  TINY_MODELS.get(name, {})) for name in MODELS}
    return {name: instantiate(cfg)(ModelContext(INFO), rngs=nnx.Rngs(0))
            for name, cfg in cfgs.items()}


def _loss(name: str):
    return instantiate(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"))


def test_every_loss_is_named_by_its_file():
    for name in LOSSES:
        assert _loss(name).name == name


def test_every_model_declares_its_default_and_compatible_losses(models):
    for name, model in models.items():
        assert model.default_loss in model.compatible_losses, name
        assert set(model.compatible_losses) <= set(LOSSES), name


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("model_name", MODELS)
def test_model_loss_pair(models, model_name, loss_name):
    model, loss = models[model_name], _loss(loss_name)
    cls = type(model).__name__
    if loss_name in model.compatible_losses:
        if getattr(loss, "l2", 0) and not hasattr(model, "l2_rows"):
            # a compatible pair whose per-row penalty the model cannot name: its own one line
            with pytest.raises(ValueError, match=r"^loss\.l2=.*set loss\.l2=0"):
                loss.check_model(model)
            loss = dataclasses.replace(loss, l2=0.0)
        loss.check_model(model)
        return
    with pytest.raises(ValueError) as err:
        loss.check_model(model)
    message = str(err.value)
    assert "\n" not in message
    assert message == (f"loss={loss_name} does not suit model {cls}: it is meant for "
                       f"loss={model.default_loss} (compatible: "
                       f"{', '.join(model.compatible_losses)}); add loss={model.default_loss} "
                       "to the command line")


def test_the_examples_of_the_issue(models):
    assert models["gmf"].default_loss == "bce"
    assert models["gmf"].compatible_losses == ("bce", "bpr", "sampled_softmax")
    assert set(models["mf"].compatible_losses) == {"mse", "bce", "bpr", "sampled_softmax"}
    for name in ("ease", "ials", "popularity", "random", "tfidf"):
        assert models[name].compatible_losses == ("none",), name
    assert models["multvae"].compatible_losses == ("multinomial",)
    assert models["sasrec"].compatible_losses == ("sequence_bce", "softmax_ce",
                                                  "sequence_sampled_softmax", "gbce")


def test_assembly_rejects_gmf_with_the_default_mse_before_compiling(tmp_path):
    cfg = compose_train(["debug=fast", "model=gmf"], tmp_path)  # no loss=: mse by default
    with pytest.raises(ValueError, match=r"^loss=mse does not suit model GMF: .*add loss=bce"):
        build(cfg)
    build(compose_train(["debug=fast", "model=gmf", "loss=bce"], tmp_path))


@pytest.mark.slow  # a jaxrec train subprocess
def test_jaxrec_train_model_gmf_fails_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p), "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", "debug=fast",
                           "model=gmf", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: loss=mse does not suit model GMF: it is meant for loss=bce "
                      "(compatible: bce, bpr, sampled_softmax); add loss=bce to the command line"]
    assert "Traceback" not in proc.stderr
