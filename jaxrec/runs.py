"""Reload a finished run from its directory: config, data, model and best parameters."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


@dataclasses.dataclass
class LoadedRun:
    cfg: DictConfig
    dataset: Any  # jaxrec.data.pipeline.Dataset
    graphdef: Any
    state: tuple[Any, Any]  # (params, rest)
    run_dir: Path


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the data split and model of ``run_dir`` and restore its best checkpoint."""
    from flax import nnx

    from jaxrec.train import build
    from jaxrec.training.checkpoint import restore_params

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.exists():
        raise FileNotFoundError(f"run dir: {config_path} not found; is {run_dir} a jaxrec run?")
    checkpoint = run_dir / "checkpoints" / "best"
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"run dir: {checkpoint} not found; was {run_dir} trained with "
                                "trainer.save_checkpoint=false, or did it stop before validating?")
    cfg = OmegaConf.load(config_path)
    dataset, model, _ = build(cfg)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = restore_params(checkpoint, params)
    return LoadedRun(cfg, dataset, graphdef, (params, rest), run_dir)


def load_model(run_dir: str | Path) -> tuple[Any, Any]:
    """``(model, DataInfo)``: the best-checkpoint model of a run and the data summary it was
    trained on (``ModelContext.load_run``, for pre-trained initialisation such as NeuMF's).

    ``run_dir`` is a run directory or its ``checkpoints/best``. Raises FileNotFoundError
    when it is not a finished jaxrec run.
    """
    from flax import nnx

    path = Path(run_dir).expanduser()
    if path.name == "best" and path.parent.name == "checkpoints":
        path = path.parent.parent
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"{path} is not a jaxrec run directory (no config.yaml)")
    run = load_run(path)
    return nnx.merge(run.graphdef, *run.state), run.dataset.info
