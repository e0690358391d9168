"""``jaxrec train`` explains itself: the run folder first, a final metrics table, a line when
early stopping fires, everything also in Hydra's ``train.log``; Ctrl-C stops with one line."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from jaxrec.logging.console import metrics_table
from jaxrec.runner import stop_message

REPO = Path(__file__).resolve().parents[2]
FAST = ["debug=fast", "data.dataset.num_users=40", "data.dataset.num_items=30",
        "model.dim=4", "eval.ks=[5]", "eval.metrics=[ndcg,recall]", "eval.save_per_user=false"]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline"}


# `jaxrec train ARGS`, with Python's Ctrl-C handler even where the test runner ignores SIGINT
# (an ignored signal is inherited; a preexec_fn would fork a multithreaded JAX process)
TRAIN = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from jaxrec.cli import main; main(['train', *sys.argv[1:]])")


def _train(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN, *args], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, **kwargs)


def test_metrics_table_is_split_by_metric():
    text = metrics_table({"valid/ndcg@10": 0.25, "test/ndcg@10": 0.5, "test/ndcg@5": 0.125,
                          "test/cold_item/ndcg@10": 0.1, "test/rmse": 0.85, "best_epoch": 3})
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "valid", "test", "test/cold_item"]
    assert lines[1].split() == ["ndcg@5", "-", "0.1250", "-"]  # k in numeric order
    assert lines[2].split() == ["ndcg@10", "0.2500", "0.5000", "0.1000"]
    assert lines[3].split() == ["rmse", "-", "0.8500", "-"]
    assert lines[4] == "best_epoch: 3"


def test_stop_message_only_when_patience_fired():
    result = SimpleNamespace(stop_reason="patience", monitor="valid/rmse", epochs_run=4,
                             best_epoch=2)
    assert stop_message(result, 2) == ("early stopping: valid/rmse did not improve for 2 "
                                       "validations; stopped after epoch 4, best epoch 2")
    assert stop_message(SimpleNamespace(stop_reason="max_epochs"), 2) is None


@pytest.mark.slow  # a jaxrec train subprocess
def test_jaxrec_train_prints_folder_table_and_early_stop_also_to_train_log(tmp_path):
    run_dir = tmp_path / "run"
    # mode=max on a falling RMSE: no validation after the first improves, so patience fires
    proc = _train(*FAST, "trainer.epochs=8", "trainer.patience=2", "trainer.mode=max",
                  f"hydra.run.dir={run_dir}", cwd=tmp_path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert lines[0] == f"run folder: {run_dir}"
    assert any(line.startswith("early stopping: valid/rmse did not improve for 2") for line in
               lines), err
    header = lines.index("final metrics (best state):")
    assert lines[header + 1].split() == ["metric", "valid", "test"]
    assert any(line.split()[0] == "ndcg@5" for line in lines[header + 2:])
    assert not any(line.startswith("final ") and "=" in line for line in lines)  # no long line
    log = (run_dir / "train.log").read_text()
    for text in ("run folder:", "epoch    1", "early stopping:", "final metrics", "ndcg@5"):
        assert text in log, text


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


@pytest.mark.slow  # a jaxrec train subprocess
def test_ctrl_c_checkpoints_and_stops_with_one_line_and_status_130(tmp_path):
    proc = _train(*FAST, "trainer.epochs=100000", "trainer.patience=0",
                  f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True).start()
    seen, deadline = [], time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "".join(seen)  # ended before its first epoch
            seen.append(line)
            if line.startswith("epoch "):
                break
        else:
            raise AssertionError("no epoch line within 180 s:\n" + "".join(seen))
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    err = "".join(seen)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    stopped = [line for line in seen if line.startswith(("stopped:", "interrupted:"))]
    assert len(stopped) == 1, err  # after the epoch in flight, with a checkpoint to resume from
    assert "checkpoint is saved" in stopped[0], err
    assert (tmp_path / "run" / "status").read_text().strip() == "preempted"
    assert not (tmp_path / "run" / "results.json").exists()
