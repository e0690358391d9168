"""Every option of every config group composes, type-checks and instantiates.

New yaml files are picked up by globbing ``configs/<group>/``; a new group must be
added to ``GROUPS`` (a test fails until it is). Composition goes through the
same ``train_schema`` as ``jaxrec train``, so a misspelled key or a value of
the wrong type fails here, at compose time, before any data is loaded.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from jaxrec.config import (
    EvalConfig,
    LoggerConfig,
    OptimConfig,
    PathsConfig,
    PrivacyConfig,
    TrainerConfig,
    register_configs,
)
from jaxrec.models.base import ModelContext
from jaxrec.paths import CONFIG_DIR
from jaxrec.training.optimizer import validate_optim
from jaxrec.types import DataInfo

GROUPS = ("data", "model", "loss", "optim", "trainer", "eval", "logger", "paths", "experiment",
          "debug", "privacy")
NOT_COMPOSED = ("hydra", "hparams_search")  # Hydra's own settings and sweeper plugins
OPTIONS = [(group, p.stem) for group in GROUPS
           for p in sorted((CONFIG_DIR / group).glob("*.yaml"))]
INFO = DataInfo(num_users=7, num_items=11, num_train=40, rating_mean=3.5, rating_min=0.5,
                rating_max=5.0, implicit=False, name="tiny")
JAXREC = [sys.executable, "-m", "jaxrec.cli"]

register_configs()


def compose_train(*overrides: str, output_dir: str | os.PathLike = "/tmp/jaxrec-unused"):
    """``configs/train.yaml`` composed as ``jaxrec train`` would, without running anything."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}", *overrides])


def typed(cfg, node, schema):
    # resolved against the whole config first, as jaxrec.train.typed does (a section may
    # interpolate another: eval.negatives_file: ${paths.data_dir}/...)
    section = OmegaConf.to_container(cfg[node], resolve=True)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), section))


def test_config_dir_is_the_repository_or_packaged_one():
    assert (CONFIG_DIR / "train.yaml").is_file()
    assert CONFIG_DIR.name == "configs"


def test_every_config_group_is_covered():
    on_disk = {p.name for p in CONFIG_DIR.iterdir() if p.is_dir()}
    missing = on_disk - set(GROUPS) - set(NOT_COMPOSED)
    assert not missing, f"add {sorted(missing)} to GROUPS in {__file__}"
    for group in ("data", "model", "loss", "optim", "trainer", "eval", "logger", "paths"):
        assert any(g == group for g, _ in OPTIONS), f"configs/{group}/ has no option"


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group, option, tmp_path):
    cfg = compose_train(f"{group}={option}", output_dir=tmp_path)
    assert cfg.paths.output_dir == str(tmp_path)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves

    # Typed sections: the schema's dataclasses, with values the code accepts.
    for node, schema in (("trainer", TrainerConfig), ("eval", EvalConfig),
                         ("logger", LoggerConfig), ("paths", PathsConfig),
                         ("privacy", PrivacyConfig)):
        assert isinstance(typed(cfg, node, schema), schema)
    validate_optim(typed(cfg, "optim", OptimConfig))

    # data: the loader exists and accepts exactly the configured keywords.
    loader = get_method(cfg.data.dataset._target_)
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.data.dataset, resolve=True).items()
              if not k.startswith("_")}
    inspect.signature(loader).bind(**kwargs)

    # model: a partial that builds from a DataInfo and scores with the right shapes.
    model = instantiate(cfg.model)(ModelContext(INFO), rngs=nnx.Rngs(0))
    users_B = jnp.asarray([0, 6], jnp.int32)
    graphdef, state = nnx.split(model)  # traced for shapes only: no per-op compiles

    def scores(s):
        m = nnx.merge(graphdef, s)
        return m(users_B, jnp.asarray([1, 10], jnp.int32)), m.score_all(users_B)

    pair, every = jax.eval_shape(scores, state)
    assert pair.shape == (2,) and every.shape == (2, INFO.num_items)

    # loss: follows the loss contract (rows it iterates, objective, model check, monitor).
    from jaxrec.losses.base import Loss

    loss = instantiate(cfg.loss)
    assert isinstance(loss, Loss) and loss.rows in ("interactions", "users", "none")
    assert loss.default_monitor.startswith("valid/")


def test_debug_fast_builds_data_model_and_loss(tmp_path):
    from tests.helpers import build

    cfg = compose_train("debug=fast", "model.dim=4", output_dir=tmp_path)
    assert cfg.data.dataset._target_.endswith("make_synthetic")
    assert cfg.trainer.epochs == 2
    dataset, model, loss = build(cfg)
    assert dataset.info.num_users > 0 and len(dataset.train) > len(dataset.test) > 0
    assert model.score_all(jnp.asarray([0], jnp.int32)).shape == (1, dataset.info.num_items)
    assert loss.rows == "interactions"


def test_experiment_presets_state_how_to_run_them():
    for path in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        head = path.read_text().lstrip()
        assert head.startswith("#") and "jaxrec train" in head.split("\n\n")[0], (
            f"{path}: start with a comment giving the command, runtime and expected result")


def test_overrides_reach_the_composed_config(tmp_path):
    cfg = compose_train("model=seed_concat", "model.hidden=[16,8]", "loss=bpr",
                        "optim=sgd", "optim.lr=0.5", "trainer.epochs=3", "seed=7",
                        output_dir=tmp_path)
    assert list(cfg.model.hidden) == [16, 8]
    assert cfg.loss._target_.endswith("BPR")
    assert cfg.optim.name == "sgd" and cfg.optim.lr == 0.5
    assert cfg.trainer.epochs == 3
    assert cfg.data.split.seed == 7  # ${seed} interpolation


@pytest.mark.parametrize("override", ["trainer.epochs_x=3", "data.split.methd=random",
                                      "optim.lr_x=1.0", "logger.projct=x", "seeed=1"])
def test_misspelled_key_fails_at_compose_time(override):
    key = override.lstrip("+").split("=")[0].rsplit(".", 1)[-1]
    with pytest.raises(ConfigCompositionException) as err:
        compose_train(override)
    assert key in f"{err.value} {err.value.__cause__}"


def test_appended_unknown_key_is_rejected_before_training(tmp_path):
    # `+key=value` force-adds past the schema at compose time, so the typed view
    # of the section is the last line of defence against a silently ignored typo.
    from jaxrec.config import typed as train_typed

    cfg = compose_train("+trainer.epochs_x=3", output_dir=tmp_path)
    with pytest.raises(Exception, match="epochs_x"):
        train_typed(cfg, "trainer", TrainerConfig)


@pytest.mark.parametrize("override", ["trainer.epochs=abc", "trainer.batch_size=1.5",
                                      "optim.lr=fast", "eval.ks=[ten]", "logger.wandb=maybe"])
def test_wrong_type_fails_at_compose_time(override):
    key, value = override.split("=")
    with pytest.raises(ConfigCompositionException) as err:
        compose_train(override)
    message = f"{err.value} {err.value.__cause__}"
    assert key in message and value.strip("[]") in message


def test_model_keys_are_checked_by_the_class_signature(tmp_path):
    with pytest.raises(ConfigCompositionException, match="model.dimm"):
        compose_train("model.dimm=8")
    # model is a free _target_ node: a force-added key is caught by the class signature.
    cfg = compose_train("+model.dimm=8", output_dir=tmp_path)
    with pytest.raises(Exception, match="dimm"):
        instantiate(cfg.model)(ModelContext(INFO), rngs=nnx.Rngs(0))


def test_unknown_data_option_lists_the_choices():
    with pytest.raises(MissingConfigException) as err:
        compose_train("data=ml-nope")
    message = str(err.value)
    assert "data/ml-nope" in message
    for option in ("ml-latest-small", "synthetic"):
        assert option in message


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*JAXREC, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})


def test_cli_cfg_job_prints_the_composed_config(tmp_path):
    proc = _run("train", "--cfg", "job", "model.dim=8", "trainer.epochs=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = OmegaConf.create(proc.stdout)
    assert printed.model.dim == 8 and printed.trainer.epochs == 2
    assert printed.data.dataset.variant == "ml-latest-small"
    assert set(GROUPS) - {"experiment", "debug"} <= set(printed)
    assert not any(tmp_path.iterdir()), "--cfg job must not create a run directory"


def test_cli_bad_override_fails_before_running(tmp_path):
    proc = _run("train", "trainer.epochs_x=3", cwd=tmp_path)
    assert proc.returncode != 0
    assert "epochs_x" in proc.stderr and "TrainerConfig" in proc.stderr


@pytest.mark.parametrize(("group", "option", "schema"), [
    ("trainer", "default", "TrainerConfig"), ("eval", "default", "EvalConfig"),
    ("logger", "default", "LoggerConfig"), ("optim", "adam", "OptimConfig"),
    ("paths", "default", "PathsConfig"), ("privacy", "none", "PrivacyConfig")])
def test_schema_defaults_equal_the_default_yaml(group, option, schema):
    """One home for defaults: a typed section's dataclass default is the value its default
    yaml (the option configs/train.yaml picks) sets; interpolations are skipped."""
    import dataclasses

    from jaxrec import config

    cls = getattr(config, schema)
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING
                         else f.default_factory()) for f in dataclasses.fields(cls)}
    defaults = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
                for k, v in defaults.items()}  # nested sections (trainer.mesh)
    node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml"),
                                  resolve=False)
    literal = {k: v for k, v in node.items() if not (isinstance(v, str) and "${" in v)}
    assert set(node) <= set(defaults)
    assert {k: defaults[k] for k in literal} == literal
