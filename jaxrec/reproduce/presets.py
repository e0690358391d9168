"""Paper presets: find them, compose their configs, read and check the ``reproduce`` block,
and the overrides of each run."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

from jaxrec.config import ReproduceConfig

RUN_OVERRIDES = ("trainer.progress=false", "trainer.save_checkpoint=false")
"""Added to every run: no progress bar in logs, no checkpoint (EASE's is N x N floats)."""


class ReproduceError(ValueError):
    """A preset that cannot be reproduced as asked (one line naming the preset and key)."""


def config_dir() -> Path:
    from jaxrec.paths import CONFIG_DIR

    return CONFIG_DIR


def paper_presets() -> list[str]:
    """Names of ``configs/experiment/paper_*.yaml``, sorted."""
    return sorted(p.stem for p in (config_dir() / "experiment").glob("paper_*.yaml"))


def compose(preset: str, overrides: Sequence[str] = (), *, output_dir: str | os.PathLike = "."):
    """``(cfg, data_name)``: the composed config of ``experiment=<preset>`` + ``overrides``.

    ``data_name`` is the chosen ``configs/data`` option. Raises ReproduceError for an
    unknown preset or a bad override (one line).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from jaxrec.config import register_configs

    if not (config_dir() / "experiment" / f"{preset}.yaml").is_file():
        raise ReproduceError(f"unknown preset {preset!r}; paper presets: "
                             f"{', '.join(paper_presets()) or 'none'}")
    register_configs()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = hydra_compose("train", overrides=[f"experiment={preset}",
                                                    f"paths.output_dir={output_dir}",
                                                    *overrides], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
        raise ReproduceError(f"{preset}: {' '.join(str(err).split())}{cause}") from None
    data_name = str(cfg.hydra.runtime.choices.get("data"))
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, data_name


def reproduce_block(cfg, preset: str) -> ReproduceConfig:
    """The typed ``reproduce`` section; ReproduceError when the preset names no paper."""
    from jaxrec.config import typed

    block: ReproduceConfig = typed(cfg, "reproduce", ReproduceConfig)
    if not block.paper:
        raise ReproduceError(f"experiment={preset} has no reproduce.paper: it is not a paper "
                             f"preset (paper presets: {', '.join(paper_presets()) or 'none'})")
    for key in ("published", "tolerance"):
        value = getattr(block, key)
        if value is not None and not isinstance(value, dict):
            raise ReproduceError(f"{preset}: reproduce.{key} must map metric keys to numbers, "
                                 f"got {value!r}")
    published = dict(block.published or {})
    if not published:
        raise ReproduceError(f"{preset}: reproduce.published is empty (give the paper's "
                             "{metric key: value})")
    tolerance = dict(block.tolerance or {})
    for key, value in list(published.items()) + list(tolerance.items()):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ReproduceError(f"{preset}: reproduce value of {key!r} must be a number, "
                                 f"got {value!r}")
    unknown = sorted(set(tolerance) - set(published))
    if unknown:
        raise ReproduceError(f"{preset}: reproduce.tolerance has {unknown[0]!r}, which is not "
                             "in reproduce.published")
    if any(v < 0 for v in tolerance.values()):
        raise ReproduceError(f"{preset}: reproduce.tolerance values must be >= 0")
    if isinstance(block.folds, bool) or not isinstance(block.folds, int) or block.folds < 1:
        raise ReproduceError(f"{preset}: reproduce.folds={block.folds!r} must be an int >= 1")
    return dataclasses.replace(block, published=published, tolerance=tolerance)


def run_overrides(block: ReproduceConfig, preset: str, *, local: bool,
                  extra: Sequence[str] = (), fold: int | None = None) -> list[str]:
    """The Hydra overrides of one run: ``--local`` data swap, user ``--set``, the fold."""
    out = [*RUN_OVERRIDES]
    if local:
        if not block.local_data:
            raise ReproduceError(f"{preset}: reproduce.local_data is empty, so --local has no "
                                 "ml-latest-small version of its protocol to run")
        # a negatives file names the paper dataset's items; locally they are drawn once
        out += [f"data={block.local_data}", "eval.negatives_file=null"]
    out += list(extra)
    if fold is not None:
        out.append(f"data.split.fold={fold}")
    return out
