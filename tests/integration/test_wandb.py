"""Weights & Biases logging: what an offline run records, and that nothing waits for a login.

An offline run's ``.wandb`` file is read back with ``wandb leet inspect --json``
(wandb >= 0.2x ships it) or, where that command is missing, with a small reader
of the file's log format and wandb's own protobuf messages; one test checks the
two readers agree.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from jaxrec.logging.writers import (
    WandbLoginError,
    WandbWriter,
    _has_credentials,
    resolve_wandb_mode,
)

TINY_RUN = ["data=synthetic", "trainer.epochs=2", "model.dim=8", "logger=wandb",
            "trainer.progress=false"]


def wandb_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment whose W&B state (dirs, settings, credentials) lives under ``tmp``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WANDB_") and k not in ("NETRC", "HYDRA_FULL_ERROR")}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), NETRC=str(home / ".netrc"), WANDB_SILENT="true",
               WANDB_DIR=str(tmp / "wandb"), WANDB_CONFIG_DIR=str(tmp / "wandb-config"),
               WANDB_CACHE_DIR=str(tmp / "wandb-cache"), WANDB_DATA_DIR=str(tmp / "wandb-data"))
    env.update(extra)
    return env


def train(tmp: Path, *overrides: str, env: dict[str, str], timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", *overrides],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- reading a run back


def _leet_records(run_dir: Path) -> list[dict] | None:
    """Records as ``wandb leet inspect --json`` prints them; None if the command is missing."""
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json",
                           str(run_dir)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0 and ("No such command" in proc.stderr or "Usage:" in proc.stderr):
        return None
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _file_records(run_dir: Path) -> list:
    """Protobuf records of the run's ``.wandb`` file (LevelDB log format: 32 KiB blocks of
    ``crc32c[4] length[2, little-endian] kind[1]`` chunks; kind 1 full, 2 first, 3 middle,
    4 last; the file starts with ``:W&B``, a 2-byte magic and a version byte)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    block, header = 32768, 7
    pos, chunks, records = 7, [], []
    while pos + header <= len(data):
        left = block - pos % block
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if left < header or kind == 0:  # block trailer padding
            pos += left
            continue
        chunks.append(data[pos + header:pos + header + length])
        pos += header + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(b"".join(chunks))
            records.append(record)
            chunks = []
    return records


def _items(items) -> dict:
    return {(it.key or ".".join(it.nested_key)): json.loads(it.value_json) for it in items}


def read_run(run_dir: Path, reader: str = "auto") -> dict:
    """``{name, project, config, history: [rows], summary, exit_code}`` of an offline run."""
    out = {"config": {}, "history": [], "summary": {}, "exit_code": None}
    records = _leet_records(run_dir) if reader in ("auto", "leet") else None
    if records is not None:
        for rec in records:
            kind = rec["type"]
            if kind == "run":
                out["name"] = rec["run"].get("display_name", "")
                out["project"] = rec["run"].get("project", "")
                out["config"].update(rec["run"].get("config", {}).get("update", {}))
            elif kind == "config":
                out["config"].update(rec["config"].get("update", {}))
            elif kind == "history":
                out["history"].append(rec["history"]["item"])
            elif kind == "summary":
                out["summary"].update(rec["summary"].get("update", {}))
            elif kind == "exit":
                out["exit_code"] = rec["exit"].get("exit_code", 0)
        return out
    assert reader != "leet", "`wandb leet inspect` is not available"
    for rec in _file_records(run_dir):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["project"] = rec.run.display_name, rec.run.project
            out["config"].update(_items(rec.run.config.update))
        elif kind == "config":
            out["config"].update(_items(rec.config.update))
        elif kind == "history":
            out["history"].append(_items(rec.history.item))
        elif kind == "summary":
            out["summary"].update(_items(rec.summary.update))
        elif kind == "exit":
            out["exit_code"] = rec.exit.exit_code
    return out


def offline_run_dir(wandb_dir: Path) -> Path:
    runs = sorted((wandb_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run under {wandb_dir}, found {runs}"
    return runs[0]


# ---------------------------------------------------------------- an offline run


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wandb-offline")
    run_dir = tmp / "run"
    proc = train(tmp, *TINY_RUN, f"paths.output_dir={run_dir}",
                 env=wandb_env(tmp, WANDB_MODE="offline"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, offline_run_dir(tmp / "wandb")


@pytest.mark.slow
def test_offline_run_logs_config_history_and_summary(offline_run):
    run_dir, wandb_run = offline_run
    logged = read_run(wandb_run)
    assert logged["project"] == "jaxrec" and logged["name"] == "mf-mse"
    assert logged["exit_code"] == 0

    # The resolved config, exactly as written to the run's config.yaml.
    config = {k: v for k, v in logged["config"].items() if k != "_wandb"}
    assert config == OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    assert config["model"]["dim"] == 8 and config["paths"]["output_dir"] == str(run_dir)

    # History: every metrics.jsonl line is a W&B row at the same epoch, same values.
    history = logged["history"]
    keys = set().union(*history)
    assert {"epoch", "train/loss", "valid/rmse", "valid/ndcg@10"} <= keys
    assert not any(k.startswith("test/") for k in keys), "test metrics belong in the summary"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "train/loss" in line] == [1, 2]
    for line in lines:
        step, metrics = line.pop("step"), line
        rows = [r for r in history if r["epoch"] == step and metrics.keys() <= r.keys()]
        assert len(rows) == 1, f"epoch {step}: {sorted(metrics)} not logged once"
        for key, value in metrics.items():
            assert math.isclose(rows[0][key], value, rel_tol=1e-9), key

    # Summary: the final test/* metrics (and best valid/*) from results.json.
    results = json.loads((run_dir / "results.json").read_text())
    tests = {k for k in results["metrics"] if k.startswith("test/")}
    assert {"test/rmse", "test/ndcg@10"} <= tests
    for key, value in results["metrics"].items():
        assert math.isclose(logged["summary"][key], value, rel_tol=1e-9), key
    assert logged["summary"]["best_epoch"] == results["best_epoch"]


@pytest.mark.slow
def test_file_reader_agrees_with_wandb_leet(offline_run):
    _, wandb_run = offline_run
    if _leet_records(wandb_run) is None:
        pytest.skip("this wandb has no `leet inspect`; the file reader is the only one")
    assert read_run(wandb_run, reader="file") == read_run(wandb_run, reader="leet")


@pytest.mark.slow
def test_run_that_raises_is_marked_failed(tmp_path, monkeypatch):
    for key, value in wandb_env(tmp_path, WANDB_MODE="offline").items():
        if key.startswith("WANDB_"):
            monkeypatch.setenv(key, value)
    writer = WandbWriter(project="jaxrec-test", config={"a": 1}, run_dir=tmp_path / "run")
    # child processes (trials, tests' subprocesses) must not join this process's W&B
    # service: a killed child would leave its run open there and its re-run be refused
    assert "WANDB_SERVICE" not in os.environ
    with pytest.raises(FloatingPointError):
        try:
            writer.write(1, {"train/loss": 1.0})
            raise FloatingPointError("diverged")
        finally:
            writer.close()
    logged = read_run(offline_run_dir(tmp_path / "wandb"))
    assert logged["exit_code"] == 1
    assert logged["config"]["a"] == 1 and logged["history"][0]["train/loss"] == 1.0


# ---------------------------------------------------------------- never wait for a login


@pytest.mark.parametrize(("env_mode", "cfg_mode", "hint"), [
    ("online", "offline", "WANDB_MODE=offline"),
    (None, "online", "logger.mode=offline"),
])
def test_online_without_credentials_fails_fast(tmp_path, monkeypatch, env_mode, cfg_mode, hint):
    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    if env_mode:
        monkeypatch.setenv("WANDB_MODE", env_mode)
    t0 = time.perf_counter()
    with pytest.raises(WandbLoginError) as err:
        WandbWriter(project="jaxrec", config={}, run_dir=tmp_path, mode=cfg_mode)
    assert time.perf_counter() - t0 < 5.0  # a guard against a login wait, not a benchmark
    message = str(err.value)
    assert isinstance(err.value, RuntimeError) and "\n" not in message
    assert "WANDB_API_KEY" in message and "wandb login" in message and hint in message
    assert not (tmp_path / "wandb").exists(), "no W&B run may start"


def test_wandb_mode_env_wins_over_logger_mode(tmp_path, monkeypatch):
    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_wandb_mode("online") == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("online") == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_wandb_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_wandb_mode("online") == "online"


def test_credentials_are_found_where_wandb_looks(tmp_path, monkeypatch):
    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not _has_credentials()
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert _has_credentials()
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")
    assert not _has_credentials(), "a login for api.wandb.ai does not cover another server"
    netrc.write_text("machine wandb.example.com login user password " + "k" * 40 + "\n")
    assert _has_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "missing"))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert _has_credentials()


@pytest.mark.slow
def test_cli_online_without_credentials_exits_with_a_clear_message(tmp_path):
    env = wandb_env(tmp_path, WANDB_MODE="online")
    t0 = time.perf_counter()
    proc = train(tmp_path, *TINY_RUN, f"paths.output_dir={tmp_path / 'run'}", env=env,
                 timeout=120)
    assert time.perf_counter() - t0 < 60  # the timeout would catch a login prompt
    assert proc.returncode != 0
    assert "WANDB_MODE=online needs W&B credentials" in proc.stderr
    assert not (tmp_path / "wandb").exists()
    assert not (tmp_path / "run" / "results.json").exists()


def test_importing_train_does_not_import_wandb():
    code = ("import sys, jaxrec.train, jaxrec.cli, jaxrec.logging; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'wandb'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
