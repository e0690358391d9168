"""Entry point: compose a config with Hydra, train, evaluate, write results.

    jaxrec train [overrides]          # or: python -m jaxrec.train [overrides]
    jaxrec train model=seed_concat
    jaxrec train --cfg job            # print the composed config

A thin shell over `jaxrec.runner.train`; nothing imports this module.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from jaxrec.config import register_configs
from jaxrec.paths import CONFIG_DIR

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU" notices on CPU


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from jaxrec.data.interactions import DataError
    from jaxrec.logging.writers import WandbLoginError
    from jaxrec.runner import train
    from jaxrec.training.loop import TrainingDiverged
    from jaxrec.training.resume import Preempted
    from jaxrec.training.signals import EXIT_CODES

    try:
        results = train(cfg)
    except Preempted as err:  # a checkpoint was written: the same command resumes
        print(f"stopped: {err}", file=sys.stderr)
        sys.exit(EXIT_CODES.get(getattr(err, "signum", None), 75))
    except (TrainingDiverged, DataError, WandbLoginError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    return results["metrics"].get(results["monitor"])


if __name__ == "__main__":
    main()
