"""The model contract (`jaxrec.models.base`): every ``configs/model/*.yaml`` builds from a
``ModelContext`` and states its capabilities through the protocols; constructor defaults
equal their yaml (the one home of a default), for models and losses alike."""

import dataclasses
import inspect

import pytest
import yaml
from flax import nnx
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from jaxrec.data.datasets.synthetic import make_synthetic
from jaxrec.data.features import build_features
from jaxrec.data.pipeline import load_and_split
from jaxrec.models.base import (
    CandidateScorer,
    ClosedForm,
    FoldIn,
    ModelContext,
    NextItemLogits,
    RowRegularized,
    Scorer,
    UserLogits,
    check_scorer,
    scores_cold,
)
from jaxrec.paths import CONFIG_DIR

MODEL_YAMLS = sorted((CONFIG_DIR / "model").glob("*.yaml"))
LOSS_YAMLS = sorted((CONFIG_DIR / "loss").glob("*.yaml"))
PROTOCOLS = (Scorer, RowRegularized, CandidateScorer, FoldIn, ClosedForm, UserLogits,
             NextItemLogits)
ALL = {Scorer, RowRegularized}
# config name -> (protocols beyond Scorer and RowRegularized, cold sides scored with
# item features and no user features)
EXPECTED = {
    "bert4rec": (set(), set()),
    "content": ({CandidateScorer}, {"items"}),
    "dcn_v2": (set(), {"items"}),
    "deepfm": (set(), {"items"}),
    "ease": ({ClosedForm, FoldIn}, set()),
    "gmf": (set(), set()),
    "gru4rec": (set(), set()),
    "hybrid": ({CandidateScorer}, {"items"}),
    "ials": ({ClosedForm, FoldIn}, set()),
    "lightgcn": (set(), set()),
    "mf": (set(), set()),
    "mlp": (set(), set()),
    "multdae": ({UserLogits, FoldIn}, set()),
    "multvae": ({UserLogits, FoldIn}, set()),
    "neumf": (set(), set()),
    "popularity": ({ClosedForm}, {"items", "users"}),
    "random": ({ClosedForm}, {"items", "users"}),
    "sasrec": ({NextItemLogits}, set()),
    "hstu": ({NextItemLogits}, set()),
    "seed_concat": (set(), set()),
    "svdpp": (set(), set()),
    "tfidf": ({ClosedForm}, {"items"}),
    "two_tower": ({CandidateScorer}, {"items", "users"}),  # users: from the history profile
}


@pytest.fixture(scope="module")
def ctx():
    """A full context as the run assembly builds it: info, train split, item features."""
    inter = make_synthetic(num_users=12, num_items=15, interactions_per_user=5, num_genres=3,
                           seed=0)
    ds = load_and_split(inter, None, {"method": "cold_item", "test": 0.2, "valid": 0.0,
                                      "seed": 0})
    features = build_features(ds.full, ds.train, {"item": {"genres": {}}})
    return ModelContext(info=ds.info, train=ds.train, features=features)


def test_every_model_config_has_an_expectation():
    assert {p.stem for p in MODEL_YAMLS} == set(EXPECTED)


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=[p.stem for p in MODEL_YAMLS])
def test_model_builds_from_a_context_and_states_its_capabilities(ctx, path):
    extra, cold = EXPECTED[path.stem]
    model = instantiate(OmegaConf.load(path))(ctx, rngs=nnx.Rngs(0))
    check_scorer(model)
    assert {p for p in PROTOCOLS if isinstance(model, p)} == ALL | extra
    assert {side for side in ("items", "users") if scores_cold(model, side)} == cold


@pytest.mark.parametrize("path", MODEL_YAMLS, ids=[p.stem for p in MODEL_YAMLS])
def test_context_is_the_only_data_parameter(path):
    params = inspect.signature(get_method(yaml.safe_load(path.read_text())["_target_"])
                               .__init__).parameters
    first = list(params.values())[1]
    assert (first.name, first.kind) == ("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    assert not {"info", "train", "features"} & set(params)


def test_protocols_reject_plain_objects():
    assert not isinstance(object(), Scorer)
    assert not any(isinstance(object(), p) for p in PROTOCOLS)
    with pytest.raises(ValueError, match="Scorer"):
        check_scorer(object())
    with pytest.raises(ValueError, match="side"):
        scores_cold(object(), "both")


def test_neumf_pretraining_needs_a_run_loader(ctx):
    model_fn = instantiate(OmegaConf.load(CONFIG_DIR / "model" / "neumf.yaml"))
    with pytest.raises(ValueError, match="model.pretrained_gmf: no run loader"):
        model_fn(ctx, pretrained_gmf="gmf_run", pretrained_mlp="mlp_run", rngs=nnx.Rngs(0))
    calls = []

    def load_run(path):
        calls.append(path)
        raise FileNotFoundError(f"{path} is not a jaxrec run directory (no config.yaml)")

    with pytest.raises(ValueError, match="model.pretrained_gmf: gmf_run is not a jaxrec run"):
        model_fn(dataclasses.replace(ctx, load_run=load_run), pretrained_gmf="gmf_run",
                 pretrained_mlp="mlp_run", rngs=nnx.Rngs(0))
    assert calls == ["gmf_run"]


def _same(a, b) -> bool:
    """Equal, with lists and tuples (yaml vs Python) compared element-wise."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _homes(paths):
    """``[(path, settings, target)]`` of the yaml that is the home of each target's defaults.

    A target set by several yamls (``multvae`` / ``multdae``) has its home in the one named
    after its module; the others are presets of it.
    """
    by_target: dict[str, list] = {}
    for path in paths:
        node = yaml.safe_load(path.read_text())
        by_target.setdefault(node["_target_"], []).append((path, node))
    homes = []
    for target, found in sorted(by_target.items()):
        module = get_method(target).__module__.rsplit(".", 1)[-1]
        named = [f for f in found if f[0].stem == module]
        assert len(found) == 1 or len(named) == 1, f"{target}: no home yaml among {found}"
        path, node = found[0] if len(found) == 1 else named[0]
        homes.append(pytest.param(path, node, target, id=path.stem))
    return homes


@pytest.mark.parametrize(("path", "node", "target"), _homes(MODEL_YAMLS) + _homes(LOSS_YAMLS))
def test_constructor_defaults_equal_the_yaml(path, node, target):
    cls = get_method(target)
    params = inspect.signature(cls.__init__).parameters
    if dataclasses.is_dataclass(cls):  # losses: the dataclass fields are the home in Python
        defaults = {f.name: f.default for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING}
    else:
        defaults = {n: p.default for n, p in params.items()
                    if p.default is not inspect.Parameter.empty}
    for key, value in node.items():
        if key in ("_target_", "_partial_"):
            continue
        assert key in params, f"{path}: {key} is not a parameter of {target}"
        if key in defaults:
            assert _same(value, defaults[key]), (
                f"{path}: {key}={value!r}, but {target} defaults to {defaults[key]!r}")
