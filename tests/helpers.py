"""Compose and run configs from tests (no Hydra runtime needed)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from jaxrec.config import register_configs
from jaxrec.paths import CONFIG_DIR


def compose_train(overrides: list[str], output_dir) -> object:
    register_configs()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}",
                                           "logger.console=false", *overrides])


def run_train(overrides: list[str], output_dir) -> dict:
    from jaxrec.runner import train

    return train(compose_train(overrides, output_dir))
