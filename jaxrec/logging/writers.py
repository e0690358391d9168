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

from jaxrec.logging.console import fmt, metrics_table, say


class ConsoleWriter:
    """One line per logged step (through `logging` under ``jaxrec train``, so ``train.log``
    holds it; a progress bar stays intact), and a final metrics table.

    Args:
      keys: the metric keys shown per step (all when None); the summary shows all.
    """

    def __init__(self, keys: tuple[str, ...] | None = None):
        self.keys = keys

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self.keys is not None:
            metrics = {k: v for k, v in metrics.items() if k in self.keys}
            if not metrics:
                return
        say(f"epoch {step:4d}  " + "  ".join(f"{k}={fmt(v)}" for k, v in metrics.items()))

    def summary(self, metrics: Mapping[str, Any]) -> None:
        say("final metrics (best state):\n" + metrics_table(metrics))

    def position(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class JsonlWriter:
    """Writes ``{"step": ..., key: value}`` lines to ``metrics.jsonl``, flushed per line.

    A new run starts the file afresh (a re-run into a used folder never mixes old
    lines in); a resumed run passes ``offset``, the file's length at the checkpoint,
    and continues from there, so every epoch is logged once.
    """

    def __init__(self, path: str | os.PathLike, *, offset: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if offset is None or not self.path.exists():
            self._file = open(self.path, "w")
        else:
            self._file = open(self.path, "r+")
            self._file.truncate(offset)
            self._file.seek(offset)

    def position(self) -> dict[str, Any]:
        self._file.flush()
        return {"jsonl_offset": self._file.tell()}

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


class WandbLoginError(RuntimeError):
    """Online W&B logging was asked for, but no credentials are configured."""


ONLINE_MODES = ("online", "run", "shared")  # wandb's names for modes that talk to a server


class WandbWriter:
    """One Weights & Biases run per training run.

    The mode is ``mode`` (offline by default) unless ``WANDB_MODE`` is set in the
    environment; offline runs never contact a server or wait for a login. An
    online run without credentials fails here, in well under a second, with
    :class:`WandbLoginError` instead of reaching wandb's interactive login prompt.
    The run's files go under ``$WANDB_DIR/wandb`` when set, else ``run_dir/wandb``.
    ``wandb`` is imported here only, since importing it costs ~0.6 s.
    """

    def __init__(self, *, project: str, config: Mapping[str, Any], run_dir: str | os.PathLike,
                 name: str | None = None, entity: str | None = None, group: str | None = None,
                 tags: list[str] | None = None, mode: str = "offline", run_id: str | None = None):
        mode = resolve_wandb_mode(mode)
        import wandb

        wandb_dir = os.environ.get("WANDB_DIR") or str(run_dir)
        Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project, entity=entity, group=group, tags=list(tags or []), name=name,
            config=dict(config), dir=wandb_dir, mode=mode, reinit="create_new",
            id=run_id, resume="allow" if run_id else None,
            settings=wandb.Settings(init_timeout=30, silent=True, console="off",
                                    x_disable_stats=True),
        )
        # wandb exports its service's address (WANDB_SERVICE) so that child processes
        # share it; a trial process killed with -9 would then leave its run open in this
        # process's service, and the re-run of the trial would be refused ("run ID is in
        # use"). Every jaxrec process starts its own service instead.
        os.environ.pop("WANDB_SERVICE", None)
        self.run.define_metric("epoch")
        self.run.define_metric("*", step_metric="epoch")

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.run.log({"epoch": step, **metrics})

    def position(self) -> dict[str, Any]:
        """The run id: a resumed training run continues this W&B run."""
        return {"wandb_id": self.run.id}

    def summary(self, metrics: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(metrics))

    def close(self, exit_code: int | None = None) -> None:
        """Finish the run; it is marked failed when closed while an exception propagates."""
        if exit_code is None:
            exit_code = 0 if sys.exc_info()[0] is None else 1
        self.run.finish(exit_code=exit_code)


def resolve_wandb_mode(mode: str) -> str:
    """The W&B mode a run will use: ``$WANDB_MODE`` if set, else ``mode`` (``logger.mode``).

    Cheap (wandb is not imported), so a run can call it before loading data.

    Raises:
      WandbLoginError: the mode is online and wandb would have to ask for a login
        (no ``WANDB_API_KEY``, identity token, or netrc entry for the server).
    """
    env_mode = os.environ.get("WANDB_MODE")
    source = f"WANDB_MODE={env_mode}" if env_mode else f"logger.mode={mode}"
    mode = env_mode or mode
    if mode in ONLINE_MODES and not _has_credentials():
        fix = ("unset WANDB_MODE or set WANDB_MODE=offline" if env_mode
               else "set logger.mode=offline")
        raise WandbLoginError(
            f"logger.wandb: {source} needs W&B credentials, and none are configured "
            f"(WANDB_API_KEY, or a `wandb login` entry for {_wandb_host()} in "
            f"{_netrc_path()}); {fix} to log locally")
    return mode


def _wandb_host() -> str:
    from urllib.parse import urlparse

    url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    return urlparse(url).hostname or url


def _netrc_path() -> Path:
    """The netrc file wandb reads: ``$NETRC``, else ``~/.netrc`` (or ``~/_netrc``)."""
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"]).expanduser()
    home = Path.home()
    if not (home / ".netrc").exists() and (home / "_netrc").exists():
        return home / "_netrc"
    return home / ".netrc"


def _has_credentials() -> bool:
    """Whether wandb can log in without prompting: an API key, identity token or netrc entry."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    import netrc

    path = _netrc_path()
    if not path.is_file():
        return False
    try:
        entry = netrc.netrc(str(path)).authenticators(_wandb_host())
    except (netrc.NetrcParseError, OSError):
        return False
    return bool(entry and entry[2])


class MultiWriter:
    def __init__(self, writers):
        self.writers = list(writers)

    def position(self) -> dict[str, Any]:
        """Where each writer is (metrics.jsonl offset, W&B run id), for a checkpoint."""
        out: dict[str, Any] = {}
        for w in self.writers:
            out.update(w.position())
        return out

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        for w in self.writers:
            w.write(step, metrics)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        for w in self.writers:
            w.summary(metrics)

    def close(self, *, failed: bool | None = None) -> None:
        """Close every writer, even if one fails; the first failure is re-raised.

        ``failed`` marks the W&B run failed (None: failed while an exception propagates).
        """
        error = None
        for w in self.writers:
            try:
                if failed is not None and isinstance(w, WandbWriter):
                    w.close(exit_code=int(failed))
                else:
                    w.close()
            except Exception as e:  # close the rest before re-raising
                error = error or e
        if error is not None:
            raise error
