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
