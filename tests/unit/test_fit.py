"""The training loop on synthetic data: determinism, early stopping, divergence, outputs."""

import json

import pytest

from jaxrec.training.loop import TrainingDiverged
from tests.helpers import run_train

FAST = ["data=synthetic", "model.dim=8", "trainer.batch_size=512"]


def test_same_seed_same_metrics_twice(tmp_path):
    quick = [*FAST, "trainer.epochs=2", "eval.save_per_user=false", "eval.metrics=[ndcg]",
             "trainer.save_checkpoint=false"]
    a = run_train(quick, tmp_path / "a")
    b = run_train(quick, tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    c = run_train([*quick, "seed=1"], tmp_path / "c")
    assert c["metrics"] != a["metrics"]


def test_outputs_written(tmp_path):
    res = run_train([*FAST, "trainer.epochs=2"], tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["metrics"] == pytest.approx(res["metrics"])
    assert on_disk["monitor"] == "valid/rmse" and on_disk["best_epoch"] in (1, 2)
    for key in ("compile_seconds", "seconds_per_epoch", "eval_seconds"):
        assert on_disk[key] > 0
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert {"train/loss", "valid/rmse", "valid/ndcg@10"} <= set(lines[0])
    assert (tmp_path / "config.yaml").exists()
    assert (tmp_path / "checkpoints" / "best").is_dir()
    assert {"test/rmse", "test/ndcg@10", "valid/rmse"} <= set(res["metrics"])


def test_patience_stops_early(tmp_path):
    # a huge learning rate makes validation worse after the first epoch
    res = run_train([*FAST, "trainer.epochs=30", "trainer.patience=2", "optim.lr=0.5",
                     "loss.l2=0"], tmp_path)
    assert res["stop_reason"] == "patience"
    assert res["epochs_run"] == res["best_epoch"] + 2


def test_nan_loss_stops_with_epoch_in_message(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"train/loss is (nan|inf) at epoch \d+"):
        run_train([*FAST, "trainer.epochs=5", "optim=sgd", "optim.lr=1e6"], tmp_path)


@pytest.mark.slow  # a second full run; bpr quality runs are in tests/integration
def test_bpr_run_monitors_ndcg(tmp_path):
    res = run_train([*FAST, "trainer.epochs=2", "loss=bpr", "data.preprocess.implicit=true"],
                    tmp_path)
    assert res["monitor"] == "valid/ndcg@10"
    assert "test/rmse" not in res["metrics"] and "test/recall@20" in res["metrics"]


def test_unknown_monitor_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="trainer.monitor: 'valid/ndcg@7'"):
        run_train([*FAST, "trainer.monitor=valid/ndcg@7"], tmp_path)


def test_monitor_direction_comes_from_the_metric_or_trainer_mode(tmp_path):
    from jaxrec.assembly import assemble
    from tests.helpers import compose_train

    def direction(*overrides):
        return assemble(compose_train([*FAST, *overrides], tmp_path),
                        evaluate=False, training=False).higher_is_better

    assert direction() is False  # valid/rmse
    assert direction("trainer.monitor=valid/ndcg@10") is True
    assert direction("trainer.monitor=valid/ndcg@10", "trainer.mode=min") is False
    with pytest.raises(ValueError, match="trainer.mode"):
        direction("trainer.mode=up")


@pytest.mark.parametrize("override,message", [
    ("trainer.batch_size=0", "trainer.batch_size: must be >= 1, got 0"),
    ("trainer.epochs=0", "trainer.epochs: must be >= 1, got 0"),
    ("trainer.patience=-1", "trainer.patience: must be >= 0"),
])
def test_invalid_trainer_values_fail_at_assembly(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        run_train([*FAST, override], tmp_path)
