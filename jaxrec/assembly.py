"""The run assembly: a composed config becomes one :class:`Run`, with every check done.

Everything that trains, sweeps, evaluates, recommends or reproduces starts here:
``assemble(cfg)`` builds the dataset (split once, features included), the model
(through a `jaxrec.models.base.ModelContext`), the loss, the optimiser and the
evaluators (protocol and slices), and runs every host-side check -- bad input,
invalid values, model/loss compatibility, the negative pool, the monitored key,
W&B credentials -- before anything is compiled. `jaxrec.runner` writes what a
trained run produces; `jaxrec.training.loop.fit` trains.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jaxrec.config import EvalConfig, LoggerConfig, OptimConfig, TrainerConfig, typed


@dataclasses.dataclass
class Run:
    """One assembled configuration: everything a fit needs, checked.

    Attributes:
      cfg: the composed config; ``resolved`` its plain resolved form.
      trainer, eval_cfg, log_cfg, optim: the typed sections.
      dataset: the split `jaxrec.data.pipeline.Dataset`.
      model, loss, tx: the model (before ``nnx.split``), loss and optimiser.
      monitor, higher_is_better: the early-stopping key and its direction.
      negatives: the resolved negative pool (``train_items`` or ``all_items``).
      valid_evals, test_evals: the evaluators; ``notes`` say why a slice is NaN.
    """

    cfg: DictConfig
    resolved: dict
    trainer: TrainerConfig
    eval_cfg: EvalConfig
    log_cfg: LoggerConfig
    optim: OptimConfig
    dataset: Any
    model: Any
    loss: Any
    tx: Any
    monitor: str
    higher_is_better: bool
    negatives: str
    valid_evals: list
    test_evals: list
    notes: list[str]
    privacy: Any = None  # jaxrec.privacy.PrivacyPlan of a private run (privacy=dp_sgd)

    @property
    def seed(self) -> int:
        return int(self.cfg.seed)

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.paths.output_dir)

    @property
    def name(self) -> str:
        """The configured name, or ``<model>-<loss>`` from the class names."""
        if self.cfg.name:
            return str(self.cfg.name)
        return "-".join(type(x).__name__.lower() for x in (self.model, self.loss))

    def protocol(self) -> dict[str, Any]:
        """The ``protocol`` and ``protocol_details`` fields of ``results.json``."""
        from jaxrec.metrics.protocols import describe

        return {"protocol": self.eval_cfg.protocol,
                "protocol_details": describe(self.eval_cfg, self.dataset.split)}

    def train_data(self, *, on_host: bool = False):
        """The device-resident training arrays for this run's loss (``on_host``: numpy, for a
        device mesh to place)."""
        from jaxrec.data.device import train_data
        from jaxrec.data.sampling import negative_pool
        from jaxrec.models.base import row_inputs

        train = self.dataset.train
        return train_data(train, negative_pool(train.items, train.num_items, self.negatives),
                          rows=self.loss.rows, extra=row_inputs(self.model, train), on_host=on_host)


def instantiate(section: str, node):
    """``hydra.utils.instantiate`` with Hydra's multi-line wrapper reduced to one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(node)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ValueError(f"{section} ({node.get('_target_')}): {cause}") from None


def build_model(cfg: DictConfig, dataset, seed: int, *, abstract: bool = False):
    """The model of ``cfg`` for ``dataset``, initialised from ``seed``; ``abstract``: built
    by ``nnx.eval_shape`` (parameter shapes only, nothing allocated: the memory plan)."""
    from flax import nnx

    from jaxrec.models.base import build_model as build
    from jaxrec.models.base import check_scorer
    from jaxrec.models.config_check import check_model_config

    check_model_config(cfg.model)  # unknown keys, wrong types: one line, before building
    make = instantiate("model", cfg.model)
    model = (nnx.eval_shape if abstract else lambda f: f())(
        lambda: build(make, dataset.info, seed, train=dataset.train, features=dataset.features,
                      load_run=load_model))
    check_scorer(model)
    return model


def assemble(cfg: DictConfig, *, dataset=None, evaluators: tuple[list, list] | None = None,
             evaluate: bool = True, training: bool = True, abstract: bool = False) -> Run:
    """Build and check everything of one run; nothing is compiled.

    Args:
      cfg: a composed train config.
      dataset: the dataset, when the caller already built it (sweep members share one).
      evaluators: ``(valid, test)`` to reuse (members of one vectorised group).
      evaluate: build the evaluators (``recommend`` needs none).
      training: also check what only training needs (W&B credentials, negatives) and
        save the sampled protocol's negatives into the run dir.
      abstract: the model's parameters as shapes only (`build_model`).

    Raises:
      ValueError, jaxrec.data.interactions.DataError: one line naming the bad value.
    """
    from jaxrec.config import validate_trainer
    from jaxrec.data.pipeline import build_dataset
    from jaxrec.data.sampling import check_negatives, negative_pool, resolve_negatives
    from jaxrec.metrics.protocols import check_protocol
    from jaxrec.training.optimizer import make_optimizer, sparse_tables, validate_optim

    trainer: TrainerConfig = typed(cfg, "trainer", TrainerConfig)
    eval_cfg: EvalConfig = typed(cfg, "eval", EvalConfig)
    log_cfg: LoggerConfig = typed(cfg, "logger", LoggerConfig)
    optim: OptimConfig = typed(cfg, "optim", OptimConfig)
    validate_trainer(trainer)
    validate_optim(optim)
    if training and trainer.compile_cache and cfg.get("paths", {}).get("cache_dir"):
        from jaxrec.training import compile_cache

        compile_cache.enable(cfg.paths.cache_dir)  # a rerun reads its programs from disk
    if training and log_cfg.wandb:
        from jaxrec.logging.writers import resolve_wandb_mode

        resolve_wandb_mode(log_cfg.mode)  # fail before loading data, never at a login prompt

    if dataset is None:
        dataset = build_dataset(cfg.data)
    loss = instantiate("loss", cfg.loss)
    model = build_model(cfg, dataset, int(cfg.seed), abstract=abstract)
    loss.check_model(model)
    check_protocol(eval_cfg, dataset.split, model)
    negatives = resolve_negatives(trainer.negatives, dataset.split.method)
    if training and loss.samples_unseen:  # the rejection samplers need an unseen item
        train = dataset.train
        check_negatives(train, negative_pool(train.items, train.num_items, negatives), negatives)

    monitor = loss.default_monitor if trainer.monitor == "auto" else trainer.monitor
    valid_evals, test_evals, notes = [], [], []
    if evaluate:
        valid_evals, test_evals, notes = _evaluators(cfg, dataset, eval_cfg, model, monitor,
                                                     evaluators, save=training)
    if dataset.has_valid and evaluate:
        _check_monitor(monitor, trainer, eval_cfg, dataset, valid_evals, loss)
    higher = _direction(monitor, trainer.mode)

    rows = dataset.train.num_users if loss.rows == "users" else len(dataset.train)
    privacy = _privacy(cfg, dataset, trainer, loss, model) if training else None
    steps_per_epoch = privacy.steps_per_epoch if privacy else -(-rows // trainer.batch_size)
    if loss.rows == "none":
        import optax

        tx = optax.identity()  # no optimiser state next to closed-form parameters
    else:
        tx = make_optimizer(optim, steps_per_epoch=steps_per_epoch, total_epochs=trainer.epochs,
                            sparse_rows=sparse_tables(optim, dataset.train, model, loss, privacy))
    return Run(cfg=cfg, resolved=OmegaConf.to_container(cfg, resolve=True), trainer=trainer,
               eval_cfg=eval_cfg, log_cfg=log_cfg, optim=optim, dataset=dataset, model=model,
               loss=loss, tx=tx, monitor=monitor, higher_is_better=higher, negatives=negatives,
               valid_evals=valid_evals, test_evals=test_evals, notes=notes, privacy=privacy)


def _privacy(cfg, dataset, trainer, loss, model):
    """The checked `jaxrec.privacy.PrivacyPlan` (noise calibrated), or None when off."""
    from jaxrec.config import PrivacyConfig
    from jaxrec.privacy import build_plan

    # configs saved before the privacy group existed have no section: not private
    privacy = typed(cfg, "privacy", PrivacyConfig) if "privacy" in cfg else PrivacyConfig()
    return build_plan(privacy, dataset.train, epochs=trainer.epochs, loss=loss, model=model)


def _evaluators(cfg, dataset, eval_cfg, model, monitor, reuse, *, save: bool):
    from jaxrec.metrics.inputs import attach_inputs
    from jaxrec.metrics.protocols import build_evaluators
    from jaxrec.metrics.slices import add_slices, slice_notes

    if reuse is not None:
        return list(reuse[0]), list(reuse[1]), slice_notes(dataset, eval_cfg, model=model)
    run_dir = Path(cfg.paths.output_dir) if save else None
    evaluators = build_evaluators(dataset, eval_cfg, seed=int(cfg.seed), run_dir=run_dir)
    (valid, test), notes = add_slices(evaluators, dataset, eval_cfg, model=model,
                                      monitor=monitor)
    attach_inputs(valid, test, model, dataset, eval_cfg)  # histories, request contexts
    return valid, test, notes


def _check_monitor(monitor, trainer, eval_cfg, dataset, valid_evals, loss) -> None:
    explicit = not dataset.info.implicit
    available = expected_metric_keys("valid", eval_cfg, explicit=explicit)
    available += [k for ev in valid_evals for k in getattr(ev, "keys", ()) if k not in available]
    if monitor not in available:
        hint = ""
        if trainer.monitor == "auto" and not explicit and loss.default_monitor == "valid/rmse":
            hint = (f" ({type(loss).__name__} monitors {monitor}, which implicit data lacks;"
                    " use loss=bce or loss=bpr, or set trainer.monitor)")
        raise ValueError(f"trainer.monitor: {monitor!r} is not computed{hint}; available: "
                         f"{', '.join(available)}")


def _direction(monitor: str, mode: str) -> bool:
    """Whether a larger monitored value is better: ``trainer.mode``, or the metric's own."""
    from jaxrec.metrics import higher_is_better

    return mode == "max" if mode != "auto" else higher_is_better(monitor)


def expected_metric_keys(split: str, eval_cfg: EvalConfig, *, explicit: bool) -> list[str]:
    """The ``split/metric@k`` keys (and rmse / mae on explicit data) an eval config asks for."""
    keys = [f"{split}/{m}@{k}" for m in eval_cfg.metrics for k in eval_cfg.ks]
    if explicit and eval_cfg.rating_metrics:
        keys += [f"{split}/rmse", f"{split}/mae"]
    return keys


def load_config(run_dir: str | Path) -> DictConfig:
    """The saved ``config.yaml`` of a run directory (one-line errors when it is not a run)."""
    from jaxrec.trust import check_targets

    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"run dir: {path} not found; {run_dir} is not a jaxrec run")
    try:
        cfg = OmegaConf.load(path)
        plain = OmegaConf.to_container(cfg, resolve=False)
    except Exception as err:  # garbled yaml
        raise ValueError(f"{path}: not a readable config ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:160]})") from None
    if not isinstance(plain, dict) or "model" not in plain:
        raise ValueError(f"{path}: not a jaxrec run config (no model section)")
    check_targets(plain, str(path))  # a run folder is data: nothing outside jaxrec is built
    return cfg


@dataclasses.dataclass
class LoadedRun:
    """A finished run reassembled from its folder: the config, the assembled run and the
    restored best state ``(params, rest)``."""

    cfg: DictConfig
    run: Run
    graphdef: Any
    state: tuple[Any, Any]
    run_dir: Path

    @property
    def dataset(self):
        return self.run.dataset


def load_run(run_dir: str | Path, *, evaluate: bool = True,
             eval_overrides: list[str] = ()) -> LoadedRun:
    """Reassemble the run of ``run_dir`` and restore its best checkpoint onto the device;
    ``eval_overrides`` (`eval_override`) change how it is evaluated, nothing else."""
    from flax import nnx

    from jaxrec.training.checkpoint import restore_params

    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    for override in sorted(eval_overrides, key=lambda o: not o.startswith("eval=")):
        eval_override(cfg, override)  # as in Hydra: the group first, then its keys
    checkpoint = run_dir / "checkpoints" / "best"
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"run dir: {checkpoint} not found; was {run_dir} trained with "
                                "trainer.save_checkpoint=false, or did it stop before validating?")
    saved = run_dir / "negatives_test.parquet"
    if cfg.eval.get("protocol") == "sampled" and saved.is_file():
        OmegaConf.update(cfg, "eval.negatives_file", str(saved))  # never re-drawn
    run = assemble(cfg, evaluate=evaluate, training=False)
    _check_data(run_dir, run.dataset)
    graphdef, params, rest = nnx.split(run.model, nnx.Param, ...)
    params = restore_params(checkpoint, params)
    return LoadedRun(cfg, run, graphdef, (params, rest), run_dir)


def eval_override(cfg: DictConfig, override: str) -> None:
    """Apply one evaluation override to a saved run's config: ``eval=<name>`` (a file of
    ``configs/eval``) or ``eval.<key>=<yaml value>``. The data, model, loss and trainer
    are the run's own; anything else is refused with one line."""
    import yaml

    from jaxrec.paths import CONFIG_DIR

    key, sep, value = override.partition("=")
    if not sep or not (key == "eval" or key.startswith("eval.")):
        raise ValueError(f"evaluate: {override!r} is not an evaluation override (eval=<name> "
                         "or eval.<key>=<value>); the data, model and training are the run's")
    if key == "eval":
        names = sorted(p.stem for p in (CONFIG_DIR / "eval").glob("*.yaml"))
        if value not in names:
            raise ValueError(f"evaluate: eval={value} is not one of {', '.join(names)}")
        group = OmegaConf.load(CONFIG_DIR / "eval" / f"{value}.yaml")
        cfg.eval = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "eval" / "default.yaml"), group)
        return
    try:
        parsed = yaml.safe_load(value) if value else None
    except yaml.YAMLError:
        parsed = value
    if key.count(".") == 1 and key.split(".")[1] not in cfg.eval:
        raise ValueError(f"evaluate: {key} is not an eval option "
                         f"(options: {', '.join(str(k) for k in cfg.eval)})")
    OmegaConf.update(cfg, key, parsed, force_add=True)


def _check_data(run_dir: Path, dataset) -> None:
    """Refuse a run whose data changed since training (its ``data.json`` fingerprint)."""
    import json

    from jaxrec.data.fingerprint import check_same, fingerprint

    path = run_dir / "data.json"
    if not path.is_file():
        raise FileNotFoundError(f"run dir: {path} not found; the run predates data fingerprints "
                                "or never started training: retrain it")
    check_same(json.loads(path.read_text()), fingerprint(dataset), str(run_dir))


def load_model(run_dir: str | Path):
    """``(model, DataInfo)``: the best checkpoint of another run (pre-trained initialisation).

    ``run_dir`` may also name the run's ``checkpoints/best`` folder.
    """
    from flax import nnx

    path = Path(run_dir).expanduser()
    if path.name == "best" and path.parent.name == "checkpoints":
        path = path.parent.parent
    loaded = load_run(path, evaluate=False)
    return nnx.merge(loaded.graphdef, *loaded.state), loaded.dataset.info
