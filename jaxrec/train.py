"""Entry point: compose a config with Hydra, train, evaluate, write results.

    jaxrec train [overrides]          # or: python -m jaxrec.train [overrides]
    jaxrec train model=seed_concat
    jaxrec train --cfg job            # print the composed config
    jaxrec train --dry-run [...]      # per-device memory plan, then exit (trainer.dry_run)

A thin shell over `jaxrec.runner.train`; nothing imports this module. Console lines go
through `logging` (``configs/hydra/job_logging/jaxrec.yaml``), so the run folder's
``train.log`` holds them. Ctrl-C stops the run with one line and exit status 130.
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

INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT (128 + 2)


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from jaxrec.logging.console import say

    run_dir = cfg.paths.output_dir
    try:
        say(f"run folder: {run_dir}")
        from jaxrec.data.interactions import DataError
        from jaxrec.logging.writers import WandbLoginError
        from jaxrec.models.config_check import check_model_config
        from jaxrec.runner import train
        from jaxrec.training.loop import TrainingDiverged
        from jaxrec.training.resume import Preempted
        from jaxrec.training.signals import EXIT_CODES

        try:
            check_model_config(cfg.model)  # a wrong model key or type: one line, before data
            if cfg.trainer.dry_run:  # the memory plan: nothing allocated, compiled or written
                from jaxrec.memory_plan import dry_run

                dry_run(cfg)
                return None
            results = train(cfg)
        except Preempted as err:  # a checkpoint was written: the same command resumes
            say(f"stopped: {err}", logging.WARNING)
            sys.exit(EXIT_CODES.get(getattr(err, "signum", None), 75))
        except (TrainingDiverged, DataError, WandbLoginError, ValueError) as err:
            say(f"error: {err}", logging.ERROR)
            sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        say(f"interrupted: stopped by Ctrl-C; no results written to {run_dir}", logging.WARNING)
        sys.exit(INTERRUPTED)
    return results["metrics"].get(results["monitor"])


if __name__ == "__main__":
    main()
