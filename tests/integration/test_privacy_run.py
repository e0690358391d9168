"""Private runs end to end: settings that cannot reach the target fail before compiling, and
user-level DP-SGD on real ml-latest-small trains to a stated quality at epsilon 10."""

import math

import pytest

from tests.helpers import compose_train, run_train

pytest.importorskip("dp_accounting")


def test_unreachable_target_fails_before_compiling(tmp_path, monkeypatch):
    from jaxrec.assembly import assemble
    from jaxrec.training import loop

    def never(*args, **kwargs):
        raise AssertionError("compiled")

    monkeypatch.setattr(loop, "compile_programs", never)  # the loop's own binding
    cfg = compose_train(["data=synthetic", "privacy=dp_sgd", "privacy.epsilon=1",
                         "privacy.noise_multiplier=0.2", "trainer.epochs=5"], tmp_path)
    with pytest.raises(ValueError, match=r"^privacy.noise_multiplier=0.2: spends epsilon "
                                         r"[0-9.]+ over 50 steps, above privacy.epsilon=1;"):
        assemble(cfg)
    with pytest.raises(ValueError, match=r"^privacy.epsilon=0.001: unreachable"):
        run_train(["data=synthetic", "privacy=dp_sgd", "privacy.epsilon=0.001",
                   "privacy.sampling_rate=1"], tmp_path)


def test_privacy_off_builds_no_plan(tmp_path):
    from jaxrec.assembly import assemble

    run = assemble(compose_train(["data=synthetic"], tmp_path), evaluate=False)
    assert run.privacy is None


@pytest.mark.slow
def test_user_level_mf_at_epsilon_10(data_dir, tmp_path):
    # measured: test/rmse 0.950 (all parameters noised: 1.04, the global mean's level;
    # non-private MF at dim 16: 0.853; docs/benchmarks.md, scripts/bench_privacy.py)
    res = run_train(["privacy=dp_sgd", "privacy.unit=user", "privacy.epsilon=10",
                     "privacy.release_user_embeddings=false", "model.dim=16", "optim.lr=0.02",
                     "trainer.epochs=20", "trainer.save_checkpoint=false",
                     "eval.save_per_user=false"], tmp_path)
    p = res["privacy"]
    assert p["unit"] == "user" and p["epsilon"] <= 10 and p["epsilon_target"] == 10
    assert p["delta"] == pytest.approx(1 / 610) and p["steps"] == 200
    assert p["noise_multiplier"] > 0.5 and p["clip_norm"] == 1.0 and p["sampling_rate"] == 0.1
    assert p["unreleased_parameters"] == ["user_bias_U", "user_emb_UxD"]
    assert math.isfinite(res["metrics"]["test/rmse"])
    assert res["metrics"]["test/rmse"] <= 0.98, res["metrics"]["test/rmse"]


def test_private_run_records_its_guarantee(tmp_path):
    res = run_train(["data=synthetic", "model.dim=8", "trainer.epochs=2", "privacy=dp_sgd",
                     "privacy.epsilon=5", "privacy.sampling_rate=0.25",
                     "trainer.save_checkpoint=false", "eval.save_per_user=false"], tmp_path)
    p = res["privacy"]
    assert {"epsilon", "delta", "unit", "noise_multiplier", "clip_norm", "sampling_rate",
            "steps"} <= set(p)
    assert p["steps"] == 8 and p["steps_run"] == 8 and p["epsilon"] <= 5
    assert p["delta"] == pytest.approx(1 / res["data"]["users"])
    assert p["truncated_steps"] == 0 and p["noise_multiplier"] > 0


@pytest.mark.slow
def test_private_run_reaches_the_wandb_summary(tmp_path):
    import json

    from tests.integration.test_wandb import TINY_RUN, offline_run_dir, read_run, train, wandb_env

    run_dir = tmp_path / "run"
    proc = train(tmp_path, *TINY_RUN, "privacy=dp_sgd", "privacy.epsilon=5",
                 f"paths.output_dir={run_dir}", env=wandb_env(tmp_path, WANDB_MODE="offline"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    logged = read_run(offline_run_dir(tmp_path / "wandb"))
    for key in ("epsilon", "delta", "noise_multiplier", "clip_norm", "sampling_rate", "steps",
                "unit"):
        assert logged["summary"][f"privacy/{key}"] == results["privacy"][key], key
    assert logged["config"]["privacy"]["method"] == "dp_sgd"  # the config as composed
