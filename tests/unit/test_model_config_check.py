"""Unknown model keywords and wrong types fail with one line naming the key, before any model
is built (`jaxrec.models.config_check.check_model_config`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from jaxrec.models.config_check import check_model_config, model_class
from jaxrec.paths import CONFIG_DIR
from tests.helpers import compose_train

MODEL_YAMLS = sorted((CONFIG_DIR / "model").glob("*.yaml"))
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=[p.stem for p in MODEL_YAMLS])
def test_every_model_yaml_passes(path):
    check_model_config(OmegaConf.load(path))


@pytest.mark.parametrize(("override", "message"), [
    ("+model.foo=1", r"^model\.foo: MF has no option 'foo' \(options: dim, init_std, "),
    ("model.dim=abc", r"^model\.dim='abc': MF\.dim expects an int$"),
    ("model.dim=8.5", r"^model\.dim=8\.5: MF\.dim expects an int$"),
    ("model.use_bias=maybe", r"^model\.use_bias='maybe': MF\.use_bias expects true or false$"),
    ("model.init_std=[1]", r"^model\.init_std=\[1\]: MF\.init_std expects a number$"),
])
def test_composed_mistakes_fail_with_one_line(override, message, tmp_path):
    cfg = compose_train([override], tmp_path)
    with pytest.raises(ValueError, match=message) as err:
        check_model_config(cfg.model)
    assert "\n" not in str(err.value)


def test_right_values_pass_and_ints_count_as_numbers(tmp_path):
    check_model_config(compose_train(["model.dim=8", "model.init_std=1"], tmp_path).model)
    check_model_config(compose_train(["model=seed_concat", "model.hidden=[16,8]"],
                                     tmp_path).model)
    node = compose_train(["model=neumf", "model.pretrained_gmf=null"], tmp_path).model
    check_model_config(node)


def test_sequences_optionals_and_choices():
    dcn = OmegaConf.load(CONFIG_DIR / "model" / "dcn_v2.yaml")
    cls = model_class(dcn)
    for extra, message in [({"hidden": [1, "a"]}, "DCNv2.hidden expects a list of ints"),
                           ({"hidden": 5}, "DCNv2.hidden expects a list"),
                           ({"rank": "x"}, "DCNv2.rank expects an int or null")]:
        with pytest.raises(ValueError, match=message):
            check_model_config(OmegaConf.merge(dcn, extra), cls)
    check_model_config(OmegaConf.merge(dcn, {"rank": None, "hidden": []}), cls)

    from typing import Literal

    class Toy:
        def __init__(self, ctx, *, mode: Literal["a", "b"] = "a", rngs=None):
            pass

    check_model_config({"mode": "b"}, Toy)
    with pytest.raises(ValueError, match=r"^model\.mode='c': Toy\.mode expects one of a, b$"):
        check_model_config({"mode": "c"}, Toy)


def test_a_model_taking_any_keyword_and_a_bad_target():
    class Open:
        def __init__(self, ctx, *, rngs=None, **options):
            pass

    check_model_config({"anything": 1}, Open)
    with pytest.raises(ValueError, match=r"^model\._target_='nowhere\.Model': cannot import"):
        check_model_config({"_target_": "nowhere.Model"})


@pytest.mark.slow  # a jaxrec train subprocess
def test_jaxrec_train_rejects_an_unknown_model_key_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p), "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", "debug=fast",
                           "+model.foo=1", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: model.foo: MF has no option 'foo'")
    assert "Traceback" not in proc.stderr
