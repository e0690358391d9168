"""Sweep specs: parsing, one-line errors, grid / random expansion, overrides, grouping keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from jaxrec.sweep.expand import expand, format_value, random_trials, trial_overrides
from jaxrec.sweep.spec import SpecError, load_spec, parse_options
from jaxrec.sweep.study import merge_overrides
from jaxrec.sweep.vectorized import group_key, group_limits

SWEEPS = sorted((Path(__file__).resolve().parents[2] / "sweeps").glob("*.yaml"))
COMMAND = """command:
  - ${env}
  - ${interpreter}
  - -m
  - jaxrec.cli
  - train
  - data=synthetic
  - ${args_no_hyphens}
"""


def write(tmp_path, body: str, name: str = "study") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    return path


def test_a_packaged_spec_is_found_by_name(tmp_path, monkeypatch):
    from jaxrec.paths import SWEEPS_DIR
    from jaxrec.sweep.spec import packaged_specs, resolve_spec

    monkeypatch.chdir(tmp_path)
    assert "mf_lr_l2" in packaged_specs()
    assert resolve_spec("mf_lr_l2") == resolve_spec("mf_lr_l2.yaml") == SWEEPS_DIR / "mf_lr_l2.yaml"
    assert load_spec("mf_lr_l2").method == "grid"
    (tmp_path / "mf_lr_l2.yaml").write_text("method: random\n")  # a local file wins
    assert resolve_spec("mf_lr_l2.yaml") == Path("mf_lr_l2.yaml")
    with pytest.raises(SpecError, match=r"^nope: no such sweep file \(packaged specs: .*mf_lr_l2"):
        resolve_spec("nope")
    with pytest.raises(SpecError, match="no such sweep file"):
        resolve_spec("elsewhere/mf_lr_l2.yaml")


def test_shipped_sweeps_parse_and_state_their_purpose():
    assert {"mf_lr_l2", "mf_bpr", "seed_concat", "mf_bayes"} <= {p.stem for p in SWEEPS}
    methods = set()
    for path in SWEEPS:
        spec = load_spec(path)
        methods.add(spec.method)
        header = path.read_text().split("\nmethod:")[0]
        for word in ("command:", "runtime:", "expected:"):
            assert word in header, f"{path.name}: header comment lacks {word}"
        assert f"jaxrec sweep sweeps/{path.name}" in header
        assert spec.fixed_overrides, f"{path.name}: command names no experiment"
        assert spec.metric.startswith("valid/")
    assert {"grid", "bayes"} <= methods


def test_grid_spec_expands_in_order(tmp_path):
    path = write(tmp_path, """
method: grid
metric: {name: valid/rmse, goal: minimize}
parameters:
  optim.lr: {values: [1e-3, 3e-3]}
  loss:
    parameters:
      l2: {values: [0.0, 0.1, 1]}
  model.dim: {value: 8}
""" + COMMAND)
    spec = load_spec(path)
    assert spec.name == "study" and spec.mode == "min"
    assert spec.fixed_overrides == ("data=synthetic",)
    assert [p.key for p in spec.swept] == ["optim.lr", "loss.l2"]
    trials = expand(spec, run_cap=None, seed=0)
    assert len(trials) == 6
    assert trials[0] == {"optim.lr": 0.001, "loss.l2": 0.0, "model.dim": 8}  # 1e-3 is a float
    assert trials[1]["loss.l2"] == 0.1 and trials[3]["optim.lr"] == 0.003
    assert len(expand(spec, run_cap=4, seed=0)) == 4


def test_random_draws_are_seeded_and_in_bounds(tmp_path):
    path = write(tmp_path, """
method: random
metric: {name: valid/ndcg@10, goal: maximize}
run_cap: 50
parameters:
  optim.lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-1}
  loss.l2: {distribution: uniform, min: 0.0, max: 0.5}
  model.dim: {distribution: int_uniform, min: 4, max: 16}
  trainer.batch_size: {distribution: q_log_uniform_values, min: 256, max: 4096, q: 256}
  model.init_std: {distribution: log_uniform, min: -5, max: -1}
  loss: {values: [mse, bce]}
""" + COMMAND)
    spec = load_spec(path)
    trials = expand(spec, run_cap=None, seed=3)
    assert len(trials) == 50 and trials == random_trials(spec, run_cap=50, seed=3)
    assert trials != random_trials(spec, run_cap=50, seed=4)
    for t in trials:
        assert 1e-4 <= t["optim.lr"] <= 1e-1 and 0 <= t["loss.l2"] <= 0.5
        assert isinstance(t["model.dim"], int) and 4 <= t["model.dim"] <= 16
        assert t["trainer.batch_size"] % 256 == 0
        assert math.exp(-5) * 0.999 <= t["model.init_std"] <= math.exp(-1) * 1.001
    lrs = sorted(t["optim.lr"] for t in trials)
    assert lrs[10] < 3e-3 < lrs[40], "log-uniform draws cover the decades"
    assert {t["loss"] for t in trials} == {"mse", "bce"}


@pytest.mark.parametrize(("body", "message"), [
    ("method: hyperband\nmetric: {name: valid/rmse}\nparameters: {a: {values: [1]}}",
     "method: expected one of grid, random, bayes, got 'hyperband'"),
    ("method: grid\nmetric: {name: valid/rmse, goal: lower}\nparameters: {a: {values: [1]}}",
     "metric.goal: expected minimize or maximize, got 'lower'"),
    ("method: grid\nmetric: {name: valid/rmse}\nparameters: {optim.lr: {values: []}}",
     "parameters.optim.lr.values: expected a non-empty list, got []"),
    ("method: grid\nmetric: {name: valid/rmse}\nparameters: {optim.lr: {min: 0.1, max: 1.0}}",
     "parameters.optim.lr: grid search needs values, got distribution uniform"),
    ("method: random\nmetric: {name: valid/rmse}\nparameters:\n  lr: {distribution: "
     "log_uniform_values, min: 0, max: 1}", "parameters.lr.min: log_uniform_values needs min"),
    ("method: random\nmetric: {name: valid/rmse}\nparameters: {lr: {min: 1.0, max: 0.1}}",
     "parameters.lr.max: must exceed min (1.0), got 0.1"),
    ("method: grid\nmetric: {name: valid/rmse}\nparameters: {lr: {valeus: [1]}}",
     "parameters.lr.valeus: unknown key"),
    ("method: grid\nmetric: {name: valid/rmse}\nrun_cap: 0\nparameters: {a: {values: [1]}}",
     "run_cap: expected a positive integer, got 0"),
    ("method: grid\nmetric: {name: valid/rmse}\nparameters: {a: {values: [1]}}\nseed: 3",
     "seed: unknown key"),
    ("method: grid\nmetric: {name: valid/rmse}\nparameters: {a: {values: [1]}}\n"
     "command: [python, train.py]", "command: must pass ${args_no_hyphens}"),
    ("method: grid\nmetric: valid/rmse\nparameters: {a: {values: [1]}}", "metric: expected"),
    ("method: grid\nmetric: {name: valid/ndcg@10, goal: minimize}\nparameters: {a: {values: "
     "[1]}}", "metric.goal: minimize contradicts valid/ndcg@10, which is higher is better"),
    ("method: grid\nmetric: {name: valid/rmse, goal: maximize}\nparameters: {a: {values: [1]}}",
     "metric.goal: maximize contradicts valid/rmse, which is lower is better"),
    ("method: grid\nmetric: {name: valid/nDCG@10}\nparameters: {a: {values: [1]}}",
     "metric.name: metric key 'valid/nDCG@10': unknown metric 'nDCG'"),
])
def test_bad_specs_fail_with_one_line_naming_file_and_field(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text


def test_random_without_run_cap_fails(tmp_path):
    spec = load_spec(write(tmp_path, "method: random\nmetric: {name: valid/rmse}\n"
                                     "parameters: {lr: {min: 0.1, max: 1.0}}"))
    with pytest.raises(SpecError, match="run_cap: random search needs a trial count"):
        expand(spec, run_cap=None, seed=0)
    assert len(expand(spec, run_cap=3, seed=0)) == 3


@pytest.mark.parametrize("value", [1e-05, 0.003, 3, True, None, [64, 32], [], "mse",
                                   "valid/ndcg@10", 2.5e10])
def test_formatted_values_read_back_through_hydra(value):
    (override,) = OverridesParser.create().parse_overrides([f"key={format_value(value)}"])
    assert override.value() == value


def test_merge_overrides_later_wins():
    merged = merge_overrides(["a=1", "b=2", "+c=3"], ["a=5", "c=4"])
    assert merged == ["b=2", "a=5", "c=4"]
    assert trial_overrides({"optim.lr": 0.001, "model.hidden": [8]}) == [
        "optim.lr=0.001", "model.hidden=[8]"]


def test_command_line_options_split():
    opts, launcher, train = parse_options(["sweep.seed=3", "sweep.vectorize=false",
                                           "sweep.run_cap=5", "trainer.epochs=2",
                                           "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                           "sweep.group_memory_mb=64"])
    assert (opts.seed, opts.vectorize, opts.run_cap, opts.group_memory_mb) == (3, False, 5, 64.0)
    assert launcher == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    assert train == ["trainer.epochs=2"]
    with pytest.raises(SpecError, match=r"sweep.vectorise=1: unknown sweep option"):
        parse_options(["sweep.vectorise=1"])
    with pytest.raises(SpecError, match="sweep.vectorize=maybe: expected true or false"):
        parse_options(["sweep.vectorize=maybe"])


def test_group_key_ignores_only_vectorisable_keys():
    base = {"seed": 0, "name": "a", "optim": {"lr": 0.01, "weight_decay": 0.0, "name": "adam"},
            "loss": {"l2": 0.1, "_target_": "MSE"}, "model": {"dim": 8, "init_std": 0.1},
            "paths": {"output_dir": "/x/t000"}, "logger": {"group": "g", "wandb": True}}
    other = {**base, "seed": 1, "name": "b", "optim": {**base["optim"], "lr": 0.1},
             "loss": {**base["loss"], "l2": 0.0}, "model": {"dim": 8, "init_std": 0.5},
             "paths": {"output_dir": "/x/t001"}}
    assert group_key(base) == group_key(other)
    assert group_key(base) != group_key({**base, "model": {"dim": 16, "init_std": 0.1}})
    assert group_key(base) != group_key({**base, "optim": {**base["optim"], "name": "sgd"}})
    assert group_key(base) != group_key({**base, "logger": {"group": "g", "wandb": False}})


def test_group_limits_follow_memory_and_cache():
    mb = 2**20
    # an accelerator: every member side by side, as many as the budget holds
    assert group_limits(mb, cap=16, budget_mb=64, platform="gpu") == (16, 16)
    assert group_limits(8 * mb, cap=16, budget_mb=64, platform="gpu") == (2, 2)
    # a CPU: the group still compiles once, but large states step one at a time
    size, lanes = group_limits(8 * mb, cap=16, budget_mb=1024, platform="cpu")
    assert size == 16 and lanes == 1
    size, lanes = group_limits(1024, cap=16, budget_mb=1024, platform="cpu")
    assert size == 16 and lanes > 1
    assert group_limits(10**12, cap=16, budget_mb=1, platform="cpu") == (1, 1)


def test_bad_shared_override_fails_before_any_trial(tmp_path):
    from jaxrec.sweep import run_sweep

    path = write(tmp_path, "method: grid\nmetric: {name: valid/rmse}\n"
                           "parameters: {optim.lr: {values: [0.1]}}\n" + COMMAND)
    with pytest.raises(SpecError, match=r"Could not override 'trainer.epoch'") as err:
        run_sweep(path, [f"sweep.dir={tmp_path / 'study'}", "trainer.epoch=2"])
    assert "\n" not in str(err.value)
    assert not (tmp_path / "study").exists(), "no study is started"


@pytest.mark.parametrize(("name", "goal"), [
    ("valid/ndcg@10", "maximize"), ("valid/cold_item/recall@20", "maximize"),
    ("valid/rmse", "minimize"), ("valid/gini@10", "minimize")])
def test_missing_goal_is_the_metric_direction(tmp_path, name, goal):
    spec = load_spec(write(tmp_path, f"method: grid\nmetric: {{name: {name}}}\n"
                           "parameters: {optim.lr: {values: [0.1]}}\n" + COMMAND))
    assert spec.goal == goal and spec.mode == goal[:3]


def test_progress_counts_and_estimates_from_this_sessions_jobs():
    from jaxrec.logging.progress import Progress, clock_text

    now = [100.0]
    progress = Progress(5, done=1, clock=lambda: now[0])
    assert progress.note() == "[1/5, 0:00 elapsed]"
    now[0] += 30.0
    assert progress.step() == "[2/5, 0:30 elapsed, ~1:30 left]"  # 30 s a job, 3 left
    now[0] += 90.0
    assert progress.step(2) == "[4/5, 2:00 elapsed, ~0:40 left]"
    now[0] += 40.0
    assert progress.step() == "[5/5, 2:40 elapsed]"
    assert clock_text(3725) == "1:02:05" and clock_text(59.6) == "1:00"
