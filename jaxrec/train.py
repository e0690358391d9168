"""Entry point: compose a config with Hydra, train, evaluate, write results.

    jaxrec train [overrides]          # or: python -m jaxrec.train [overrides]
    jaxrec train model=seed_concat
    jaxrec train --cfg job            # print the composed config
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from jaxrec.config import OptimConfig, register_configs
from jaxrec.paths import CONFIG_DIR

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU" notices on CPU


def typed(cfg: DictConfig, node: str, schema):
    """A plain dataclass instance of one typed section (e.g. ``trainer``).

    Keys the schema does not know (added with ``+trainer.x=...``) are an error.
    Interpolations are resolved against the whole config first, so a section may
    name other sections (``eval.negatives_file: ${paths.data_dir}/...``).
    """
    names = [f.name for f in dataclasses.fields(schema)]
    unknown = sorted(set(cfg[node]) - set(names))
    if unknown:
        raise ValueError(f"{node}.{unknown[0]}: unknown key (valid: {', '.join(names)})")
    section = OmegaConf.to_container(cfg[node], resolve=True)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), section))


def build(cfg: DictConfig):
    """Data, model and loss for a composed config: everything but the training loop.

    Bad input (missing files, unknown ids, invalid values) fails here, before
    anything is compiled.
    """
    from flax import nnx

    from jaxrec.data.pipeline import build_dataset
    from jaxrec.training.optimizer import validate_optim

    validate_optim(typed(cfg, "optim", OptimConfig))
    dataset = build_dataset(cfg.data)
    loss = _instantiate("loss", cfg.loss)
    model_fn = _instantiate("model", cfg.model)
    ctx = model_context(dataset, cfg.data.features)
    model = model_fn(ctx, rngs=nnx.Rngs(params=cfg.seed, default=cfg.seed))
    return dataset, model, loss


def model_context(dataset, features_spec):
    """The `jaxrec.models.base.ModelContext` of a dataset: its summary, training split,
    the features of ``data.features`` (None when unset) and a loader of other runs."""
    from jaxrec.data.features import build_features
    from jaxrec.models.base import ModelContext
    from jaxrec.runs import load_model

    features = (build_features(dataset.full, dataset.train, features_spec)
                if features_spec is not None else None)
    return ModelContext(info=dataset.info, train=dataset.train, features=features,
                        load_run=load_model)


def _instantiate(section: str, node):
    """``hydra.utils.instantiate`` with Hydra's multi-line wrapper reduced to one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ValueError(f"{section} ({node.get('_target_')}): {cause}") from None


def run_name(cfg: DictConfig) -> str:
    """The configured name, or ``<model>-<loss>`` from the class names."""
    if cfg.name:
        return cfg.name
    return "-".join(str(cfg[k]._target_).rsplit(".", 1)[-1].lower() for k in ("model", "loss"))


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate one configuration; returns the contents of ``results.json``."""
    from jaxrec.config import EvalConfig, LoggerConfig, TrainerConfig
    from jaxrec.io import atomic_write_json, atomic_write_text
    from jaxrec.metrics.per_user import write_per_user
    from jaxrec.metrics.protocols import build_evaluators, check_protocol, describe, split_config
    from jaxrec.training.fit import fit, resolve_monitor
    from jaxrec.training.optimizer import make_optimizer
    from jaxrec.training.sampling import resolve_negatives

    t_start = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(resolved))

    trainer: TrainerConfig = typed(cfg, "trainer", TrainerConfig)
    eval_cfg: EvalConfig = typed(cfg, "eval", EvalConfig)
    log_cfg: LoggerConfig = typed(cfg, "logger", LoggerConfig)
    optim: OptimConfig = typed(cfg, "optim", OptimConfig)
    if log_cfg.wandb:
        from jaxrec.logging.writers import resolve_wandb_mode

        resolve_wandb_mode(log_cfg.mode)  # fail before loading data, never at a login prompt

    dataset, model, loss = build(cfg)
    split_cfg = split_config(cfg.data)
    check_protocol(eval_cfg, split_cfg, model)  # before anything is compiled
    trainer = dataclasses.replace(
        trainer, negatives=resolve_negatives(trainer.negatives, split_cfg.method))
    evaluators = build_evaluators(dataset, eval_cfg, seed=cfg.seed, split_cfg=split_cfg,
                                  run_dir=run_dir)
    from jaxrec.metrics.slices import add_slices  # cold / warm / activity slices

    evaluators, notes = add_slices(evaluators, dataset, eval_cfg, split_cfg=split_cfg,
                                   model=model, monitor=resolve_monitor(trainer, loss))
    steps_per_epoch = -(-len(dataset.train) // trainer.batch_size)
    tx = make_optimizer(optim, steps_per_epoch=steps_per_epoch, total_epochs=trainer.epochs)

    writer = make_writer(cfg, log_cfg, monitor=resolve_monitor(trainer, loss), resolved=resolved,
                         run_dir=run_dir)
    try:
        result = fit(model=model, loss=loss, tx=tx, dataset=dataset, trainer=trainer,
                     eval_cfg=eval_cfg, writer=writer, seed=cfg.seed, run_dir=run_dir,
                     evaluators=evaluators)
        results = results_dict(result, dataset, total_seconds=time.perf_counter() - t_start)
        results.update(protocol=eval_cfg.protocol, protocol_details=describe(eval_cfg, split_cfg))
        if notes:
            results["notes"] = notes
        if eval_cfg.save_per_user:  # per-user metric vectors of the best state, for compare
            results["per_user_files"] = write_per_user(
                run_dir, dict(zip(("valid", "test"), evaluators, strict=True)), result.graphdef,
                result.params, dataset.full.user_ids)
        writer.summary({**result.metrics, "best_epoch": result.best_epoch})
        atomic_write_json(run_dir / "results.json", results)
    finally:
        writer.close()
    return results


def make_writer(cfg: DictConfig, log_cfg, *, monitor: str, resolved: dict, run_dir: Path):
    """The run's writers (console, ``metrics.jsonl``, W&B) as one ``MultiWriter``."""
    from jaxrec.logging import ConsoleWriter, JsonlWriter, MultiWriter, WandbWriter

    writers = []
    if log_cfg.console:
        writers.append(ConsoleWriter(keys=("train/loss", monitor)))
    if log_cfg.jsonl:
        writers.append(JsonlWriter(run_dir / "metrics.jsonl"))
    if log_cfg.wandb:
        writers.append(WandbWriter(project=log_cfg.project, entity=log_cfg.entity,
                                   group=log_cfg.group, tags=log_cfg.tags, mode=log_cfg.mode,
                                   name=run_name(cfg), config=resolved, run_dir=run_dir))
    return MultiWriter(writers)


def results_dict(result, dataset, *, total_seconds: float) -> dict[str, Any]:
    """The contents of ``results.json`` for a :class:`~jaxrec.training.fit.FitResult`."""
    return {
        "metrics": result.metrics,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "monitor": result.monitor,
        "protocol": "full_ranking",
        "compile_seconds": result.compile_seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "eval_seconds": result.eval_seconds,
        "total_seconds": total_seconds,
        "data": {"name": dataset.info.name, "users": dataset.info.num_users,
                 "items": dataset.info.num_items, "train": len(dataset.train),
                 "valid": 0 if dataset.valid is None else len(dataset.valid),
                 "test": len(dataset.test)},
    }


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from jaxrec.data.interactions import DataError
    from jaxrec.logging.writers import WandbLoginError
    from jaxrec.training.fit import TrainingDiverged

    try:
        results = run(cfg)
    except (TrainingDiverged, DataError, WandbLoginError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    return results["metrics"].get(results["monitor"])


if __name__ == "__main__":
    main()
