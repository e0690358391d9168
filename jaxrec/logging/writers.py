"""Metric writers: console, JSON lines (always on), Weights & Biases.

Each writer has ``write(step, metrics)``, ``summary(metrics)`` and ``close()``;
``MultiWriter`` fans out to several.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class ConsoleWriter:
    """One line per logged step on stderr (through tqdm so a progress bar stays intact)."""

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        from tqdm import tqdm

        line = f"epoch {step:4d}  " + "  ".join(f"{k}={_fmt(v)}" for k, v in metrics.items())
        tqdm.write(line, file=sys.stderr)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        from tqdm import tqdm

        tqdm.write("final  " + "  ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()),
                   file=sys.stderr)

    def close(self) -> None:
        pass


class JsonlWriter:
    """Appends ``{"step": ..., key: value}`` lines to ``metrics.jsonl``, flushed per line."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        record = {"step": step, **{k: _jsonable(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def summary(self, metrics: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        self._file.close()


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class WandbWriter:
    """One Weights & Biases run per training run.

    The mode is ``mode`` (offline by default) unless ``WANDB_MODE`` is set in the
    environment; offline runs never contact a server or wait for a login.
    ``wandb`` is imported here only, since importing it costs ~0.6 s.
    """

    def __init__(self, *, project: str, config: Mapping[str, Any], run_dir: str | os.PathLike,
                 name: str | None = None, entity: str | None = None, group: str | None = None,
                 tags: list[str] | None = None, mode: str = "offline"):
        import wandb

        mode = os.environ.get("WANDB_MODE", mode)
        if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _has_netrc_login()):
            raise RuntimeError("logger.wandb: online mode needs WANDB_API_KEY (or `wandb login`); "
                               "set logger.mode=offline to log locally")
        wandb_dir = os.environ.get("WANDB_DIR", str(run_dir))
        Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project, entity=entity, group=group, tags=list(tags or []), name=name,
            config=dict(config), dir=wandb_dir, mode=mode, reinit="create_new",
            settings=wandb.Settings(init_timeout=30, silent=True, console="off",
                                    x_disable_stats=True),
        )
        self.run.define_metric("epoch")
        self.run.define_metric("*", step_metric="epoch")

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.run.log({"epoch": step, **metrics})

    def summary(self, metrics: Mapping[str, Any]) -> None:
        for k, v in metrics.items():
            self.run.summary[k] = v

    def close(self) -> None:
        self.run.finish()


def _has_netrc_login() -> bool:
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


class MultiWriter:
    def __init__(self, writers):
        self.writers = list(writers)

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        for w in self.writers:
            w.write(step, metrics)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        for w in self.writers:
            w.summary(metrics)

    def close(self) -> None:
        for w in self.writers:
            w.close()
