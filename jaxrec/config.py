"""Typed configuration schemas, registered in Hydra's ConfigStore.

``configs/train.yaml`` starts from the ``train_schema`` node below, so a
misspelled key or a value of the wrong type in the run, data, trainer, eval,
optimizer, logger or paths sections fails when Hydra composes the config,
before anything is loaded or compiled. ``model`` and ``loss`` are free-form
``_target_`` nodes: the class they name is the registry entry and its
signature is the schema (checked at instantiation, still before compiling).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclasses.dataclass
class PreprocessConfig:
    """Filtering applied to the raw interactions before splitting."""

    rating_threshold: float | None = None  # keep only ratings >= threshold
    implicit: bool = False  # every kept interaction becomes a positive with rating 1.0
    min_user_interactions: int = 0  # iterated k-core: users with fewer are dropped
    min_item_interactions: int = 0  # iterated k-core: items with fewer are dropped
    dedup: str = "last"  # repeated (user, item) pairs: last | first | mean | none


@dataclasses.dataclass
class SplitConfig:
    """How interactions are divided into train / valid / test."""

    method: str = "random"  # random | user_ratio | leave_last | temporal | strong
    #   | cold_item | cold_user (whole items / users held out) | kfold (K-fold CV)
    test: float = 0.2  # fraction held out (ignored by leave_last, which holds out one;
    #   strong: fraction of users held out as test users, or a number of users if >= 1)
    valid: float = 0.0  # fraction of train carved out as validation (leave_last: >0 = one more;
    #   strong: fraction (or number, if >= 1) of the remaining users held out as validation)
    seed: int = 0
    fold_in: float = 0.8  # strong: share of each held-out user's interactions given as history
    folds: int = 0  # kfold: number of folds K (>= 2); the other methods ignore it
    fold: int = 0  # kfold: which fold (0..K-1) is the test part


@dataclasses.dataclass
class DataConfig:
    dataset: Any = MISSING  # _target_ of a loader returning Interactions
    preprocess: PreprocessConfig = dataclasses.field(default_factory=PreprocessConfig)
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    features: Any = None  # item / user feature spec (jaxrec.data.features); null = none


@dataclasses.dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | adagrad | sgd
    lr: float = 0.005
    weight_decay: float = 0.0  # decoupled (adamw) or added to the gradient (others)
    momentum: float | None = None  # sgd only
    schedule: str = "constant"  # constant | cosine | exponential | warmup_cosine
    warmup_epochs: int = 0
    decay_rate: float = 0.5  # exponential: factor per `decay_epochs`
    decay_epochs: int = 10
    grad_clip: float | None = None  # global-norm clipping
    sparse: str = "auto"  # auto | true | false: row-sparse (lazy) updates of user/item
    #   tables (jaxrec.training.sparse); auto: on where the model and loss qualify


@dataclasses.dataclass
class MeshConfig:
    """The device mesh a single run trains on (`jaxrec.training.mesh`)."""

    data: int = -1  # devices the global batch is split over; -1: all devices / model
    model: int = 1  # devices embedding tables' rows are split over
    rules: dict[str, str] = dataclasses.field(default_factory=dict)  # {regex over a parameter
    #   path: rows | replicated}, overriding the rule (2-D tables of users / items: rows)
    rows: str = "auto"  # training rows on device: replicated (every device holds all) |
    #   sharded (each device holds only its epoch's batch columns) | auto (sharded over
    #   several processes, replicated on one)


@dataclasses.dataclass
class DistributedConfig:
    """Several processes, one run (`jaxrec.multihost`): null coordinator = one process, or
    Slurm's tasks when launched by ``srun`` with more than one."""

    coordinator: str | None = None  # host:port of process 0 (every process names the same)
    num_processes: int | None = None  # with a coordinator: how many processes join
    process_id: int | None = None  # with a coordinator: this process, 0..num_processes-1
    timeout_seconds: int = 300  # how long processes wait for each other to join


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = 50
    batch_size: int = 4096
    eval_every: int = 1  # validate every N epochs
    patience: int = 5  # validations without improvement before stopping; 0 = never stop early
    monitor: str = "auto"  # metric key, e.g. valid/ndcg@10; auto = the loss's default
    mode: str = "auto"  # min | max | auto (from the metric name)
    progress: bool = True  # progress bar (quiet when stderr is not a terminal)
    save_checkpoint: bool = True  # the best parameters, checkpoints/best
    divergence_factor: float = 1e4  # an epoch loss over this x the first step's: diverged
    resume: str = "auto"  # auto: continue from checkpoints/state if the run dir has one | never
    checkpoint_every: int = 1  # save the whole training state every N epochs (0: on signals only)
    checkpoint_seconds: float = 60.0  # ... but not sooner than this after the last save
    keep_checkpoints: int = 2  # complete state checkpoints kept
    compile_cache: bool = True  # JAX's persistent compilation cache in <paths.cache_dir>/xla
    negatives: str = "auto"  # pool sampled negatives come from: train_items (items with
    #   training interactions: held-out cold items are never negatives) | all_items | auto
    #   (train_items on a cold_item split, else all_items)
    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    dry_run: bool = False  # print the memory plan per device (parameters, optimiser, data,
    #   evaluation) and exit without training or allocating (`jaxrec train --dry-run`)


@dataclasses.dataclass
class EvalConfig:
    ks: list[int] = dataclasses.field(default_factory=lambda: [10, 20])
    metrics: list[str] = dataclasses.field(
        default_factory=lambda: ["ndcg", "recall", "hit", "mrr", "precision", "map"])
    rating_metrics: bool = True  # rmse / mae, when the data has explicit ratings
    user_block: int = 256  # users scored at once in full ranking (bounds memory)
    rating_batch: int = 65536  # pairs predicted at once for rmse / mae
    protocol: str = "full_ranking"  # full_ranking | sampled (fixed negatives) | strong (fold-in)
    mask: str = "train_valid"  # items masked out of the test ranking: train_valid (the user's
    #   train and valid items) | train (train only, as LightGCN-style papers' code does)
    test_input: str = "auto"  # what history models read to score test: train_valid | train |
    #   auto (train_valid on a time-ordered split, leave_last / temporal; jaxrec.metrics.inputs)
    num_negatives: int = 99  # sampled: fixed negatives per evaluated user (NCF: 99)
    negatives_file: str | None = None  # sampled: test negatives from an NCF test.negative file
    #   or a run's negatives_test.parquet; null = drawn once from the seed and saved with the run
    diversity_feature: str = "genres"  # item feature whose cosine the ild metric uses
    save_per_user: bool = True  # per_user_{valid,test}.parquet in the run dir
    slices: list[str] = dataclasses.field(default_factory=list)  # jaxrec.metrics.slices:
    #   cold_item | warm_item | cold_user | warm_user | activity (cold splits add their own)
    fold_in: str = "auto"  # streaming: how revealed events reach the model: sequence (the
    #   updated item sequence) | closed_form (score_history of the updated 0/1 history) | sgd
    #   (gradient steps on the user vector) | none (the trained state as is) | auto (sequence,
    #   else closed_form, else none)
    windows: int = 1  # streaming: metrics also over this many consecutive windows of the stream
    window_by: str = "count"  # streaming windows: count (equal events) | time (equal spans)
    sgd_steps: int = 10  # streaming eval.fold_in=sgd: gradient steps on the user's vector
    sgd_lr: float = 0.5  # ... and their step size


@dataclasses.dataclass
class LoggerConfig:
    console: bool = True
    jsonl: bool = True
    wandb: bool = False
    project: str = "jaxrec"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    mode: str = "offline"  # used unless WANDB_MODE is set in the environment


@dataclasses.dataclass
class PrivacyConfig:
    """Differentially private training (``privacy=dp_sgd``; docs/privacy.md)."""

    method: str = "none"  # none | dp_sgd | als (private iALS: model=ials loss=none)
    unit: str = "user"  # what the guarantee protects: user (all of a user's interactions) | example
    epsilon: float = 10.0  # target over the configured epochs; inf: no noise, no guarantee
    delta: float | None = None  # null: 1 / number of units (users for unit=user)
    clip_norm: float = 1.0  # each unit's gradient is clipped to this L2 norm
    noise_multiplier: float | None = None  # noise std / clip_norm; null: calibrated to epsilon
    sampling_rate: float = 0.1  # Poisson rate of units per step; an epoch is ceil(1 / rate) steps
    max_interactions: int = 64  # unit=user: a sampled user's interactions used per step (random)
    chunk_units: int = 16  # per-unit gradients computed this many units at a time (memory)
    release_user_embeddings: bool = True  # false: per-user rows are trained without noise and
    #   never released (joint DP, unit=user); only shared / item-side parameters carry noise
    accountant: str = "rdp"  # rdp | pld (dp-accounting)


@dataclasses.dataclass
class PathsConfig:
    data_dir: str | None = None  # folder holding extracted datasets; nothing is downloaded
    cache_dir: str = "~/.cache/jaxrec"  # downloads and parsed binary caches
    output_dir: str = "."  # the run directory (Hydra's output dir)


@dataclasses.dataclass
class ReproduceConfig:
    """What a paper preset reproduces (``configs/experiment/paper_*.yaml``; read by
    ``scripts/reproduce.py``, ignored by ``jaxrec train``)."""

    paper: str = ""  # citation: authors, year, title, where the table is ("" = not a preset)
    protocol: str = ""  # one line: split, candidates, metric definitions
    dataset: str = ""  # the paper's dataset, e.g. ml-1m
    published: Any = None  # {metric key: published value}, e.g. {test/rmse: 0.934}
    tolerance: Any = None  # {metric key: absolute tolerance} the reproduction must land in
    folds: int = 1  # > 1: run data.split.fold=0..folds-1 and average (cross-validation)
    local_data: str = ""  # data config (configs/data/<name>.yaml) of the same protocol on
    #   ml-latest-small: what `scripts/reproduce.py --local` runs on this machine
    note: str = ""  # deviations from the paper's setup


@dataclasses.dataclass
class TrainConfig:
    seed: int = 0
    name: str | None = None  # run name; None: <model class>-<loss class>
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: Any = MISSING
    loss: Any = MISSING
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    logger: LoggerConfig = dataclasses.field(default_factory=LoggerConfig)
    paths: PathsConfig = dataclasses.field(default_factory=PathsConfig)
    privacy: PrivacyConfig = dataclasses.field(default_factory=PrivacyConfig)
    reproduce: ReproduceConfig = dataclasses.field(default_factory=ReproduceConfig)
    #   filled by paper presets only (scripts/reproduce.py)


def register_configs() -> None:
    """Register the schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)


def typed(cfg: Any, node: str, schema):
    """A plain dataclass instance of one typed section (e.g. ``trainer``).

    Keys the schema does not know (added with ``+trainer.x=...``) are an error.
    Interpolations are resolved against the whole config first, so a section may
    name other sections (``eval.negatives_file: ${paths.data_dir}/...``).
    """
    from omegaconf import OmegaConf

    names = [f.name for f in dataclasses.fields(schema)]
    unknown = sorted(set(cfg[node]) - set(names))
    if unknown:
        raise ValueError(f"{node}.{unknown[0]}: unknown key (valid: {', '.join(names)})")
    section = OmegaConf.to_container(cfg[node], resolve=True)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), section))


def validate_trainer(trainer: TrainerConfig) -> None:
    """One-line ``ValueError`` for trainer values no run can use (before anything compiles)."""
    for name in ("epochs", "batch_size", "eval_every"):
        value = getattr(trainer, name)
        if isinstance(value, bool) or value < 1:
            raise ValueError(f"trainer.{name}: must be >= 1, got {value}")
    if trainer.patience < 0:
        raise ValueError(f"trainer.patience: must be >= 0 (0 = never stop early), got "
                         f"{trainer.patience}")
    if trainer.resume not in ("auto", "never"):
        raise ValueError(f"trainer.resume: expected auto or never, got {trainer.resume!r}")
    for name, low in (("checkpoint_every", 0), ("checkpoint_seconds", 0), ("keep_checkpoints", 1),
                      ("divergence_factor", 0)):
        if getattr(trainer, name) < low:
            raise ValueError(f"trainer.{name}: must be >= {low}, got {getattr(trainer, name)}")
    if trainer.mode not in ("auto", "min", "max"):
        raise ValueError(f"trainer.mode: expected min, max or auto, got {trainer.mode!r}")
    validate_mesh(trainer.mesh)


def validate_mesh(mesh: MeshConfig) -> None:
    """One-line ``ValueError`` for ``trainer.mesh`` values no machine can use."""
    import re

    if isinstance(mesh.data, bool) or not (mesh.data == -1 or mesh.data >= 1):
        raise ValueError(f"trainer.mesh.data: must be >= 1 or -1 (all devices), "
                         f"got {mesh.data}")
    if isinstance(mesh.model, bool) or mesh.model < 1:
        raise ValueError(f"trainer.mesh.model: must be >= 1, got {mesh.model}")
    if mesh.rows not in ("auto", "replicated", "sharded"):
        raise ValueError(f"trainer.mesh.rows: expected auto, replicated or sharded, got "
                         f"{mesh.rows!r}")
    for pattern, placement in dict(mesh.rules or {}).items():
        if placement not in ("rows", "replicated"):
            raise ValueError(f"trainer.mesh.rules.{pattern}: expected rows or replicated, "
                             f"got {placement!r}")
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"trainer.mesh.rules: {pattern!r} is not a regex ({err})") from None
