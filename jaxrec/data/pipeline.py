"""From a ``data`` config to a split :class:`Dataset`: load -> preprocess -> split.

The split runs once, here: the :class:`Dataset` carries every part the rest of a
run needs (train / valid / test, strong generalisation's fold-in histories, the
features and the evaluation targets of `Dataset.eval_parts`), so evaluators
never re-split.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from jaxrec.config import PreprocessConfig, SplitConfig
from jaxrec.data.interactions import DataError, Interactions
from jaxrec.data.preprocess import preprocess
from jaxrec.data.splits import split_parts
from jaxrec.types import DataInfo

if TYPE_CHECKING:
    from jaxrec.data.features import Features


EVAL_MASKS = ("train_valid", "train")
"""``eval.mask``: what the test ranking masks (`Dataset.eval_parts`)."""


class EvalPart(NamedTuple):
    """One evaluated part of a :class:`Dataset` (see `Dataset.eval_parts`).

    Attributes:
      name: ``valid`` or ``test``, the metric key prefix.
      target: the held-out interactions; their items are the relevant ones.
      exclude: interactions masked out of the ranking: the training part, and
        the validation part too for ``test`` (unless ``eval.mask=train``); for a
        strong split, the held-out users' fold-in history (``Dataset.fold_in[name]``)
        instead.
    """

    name: str
    target: Interactions
    exclude: tuple[Interactions, ...]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A preprocessed dataset and its split; every part shares one vocabulary.

    Attributes:
      full: all interactions after preprocessing, before splitting.
      train: training rows.
      valid: validation rows, or None when ``split.valid == 0``.
      test: test rows.
      info: sizes and training-rating statistics the model is built from.
      split: the resolved split settings the parts were made with.
      fold_in: strong generalisation (``split.method=strong``): the held-out
        users' fold-in histories, ``{"valid": ..., "test": ...}`` (``valid`` only
        with a validation part); ``{}`` for the other methods.
      features: item / user features built from ``data.features``
        (`jaxrec.data.features.build_features` on ``full`` and ``train``), or None.
    """

    full: Interactions
    train: Interactions
    valid: Interactions | None
    test: Interactions
    info: DataInfo
    split: SplitConfig
    fold_in: dict[str, Interactions] = dataclasses.field(default_factory=dict)
    features: Features | None = None

    @property
    def has_valid(self) -> bool:
        """Whether there is a non-empty validation part."""
        return self.valid is not None and len(self.valid) > 0

    def eval_parts(self, mask: str = "train_valid") -> list[EvalPart]:
        """The evaluated parts in order: ``valid`` (when `has_valid`), then ``test``.

        Full ranking and the sampled protocol mask ``train`` for valid and, for test,
        ``train`` + ``valid`` (``mask="train_valid"``, `EVAL_MASKS`) or ``train`` only
        (``mask="train"``, as LightGCN-style papers' code does: a test item the user
        also has in valid is then a relevant item, a valid-only item a candidate). A
        strong split masks each held-out user's fold-in history (its train / valid rows
        are other users'), whatever ``mask`` says.
        """
        if mask not in EVAL_MASKS:
            raise DataError(f"eval.mask={mask!r} is not one of {', '.join(EVAL_MASKS)}")
        names = ("valid", "test") if self.has_valid else ("test",)
        targets = {"valid": self.valid, "test": self.test}
        if self.fold_in:
            return [EvalPart(n, targets[n], (self.fold_in[n],)) for n in names]
        seen = (self.train, self.valid) if self.has_valid and mask == "train_valid" else (
            self.train,)
        return [EvalPart(n, targets[n], seen[:1] if n == "valid" else seen) for n in names]


def _as_config(node: Any, schema: type, section: str):
    """A typed config dataclass from a dataclass, DictConfig, dict or None."""
    if node is None:
        return schema()
    if isinstance(node, schema):
        return node
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, dict):
        raise DataError(f"data.{section} must be a mapping, got {type(node).__name__}")
    names = {f.name for f in dataclasses.fields(schema)}
    unknown = sorted(set(node) - names)
    if unknown:
        raise DataError(f"data.{section}: unknown key {unknown[0]!r} "
                        f"(valid: {', '.join(sorted(names))})")
    return schema(**node)


def load_and_split(interactions: Interactions, preprocess_cfg: Any = None,
                   split_cfg: Any = None, features_spec: Any = None) -> Dataset:
    """Preprocess and split already loaded interactions (no Hydra needed).

    Args:
      interactions: the raw table from a loader.
      preprocess_cfg: :class:`~jaxrec.config.PreprocessConfig`, a mapping with its
        keys, or None for the defaults.
      split_cfg: :class:`~jaxrec.config.SplitConfig`, a mapping, or None.
      features_spec: a ``data.features`` spec (`jaxrec.data.features`), or None.

    Returns:
      The :class:`Dataset`; ``info.rating_*`` are computed on ``train``.
    """
    pre = _as_config(preprocess_cfg, PreprocessConfig, "preprocess")
    spl = _as_config(split_cfg, SplitConfig, "split")
    full = preprocess(interactions, pre)
    train, valid, test, fold_in = split_parts(full, spl)
    ratings = train.ratings.astype(np.float64)
    info = DataInfo(num_users=full.num_users, num_items=full.num_items, num_train=len(train),
                    rating_mean=float(ratings.mean()), rating_min=float(ratings.min()),
                    rating_max=float(ratings.max()), implicit=bool(pre.implicit), name=full.name)
    features = None
    if features_spec is not None:
        from jaxrec.data.features import build_features

        features = build_features(full, train, features_spec)
    return Dataset(full=full, train=train, valid=valid, test=test, info=info, split=spl,
                   fold_in=fold_in, features=features)


def build_dataset(data_cfg: Any, *, seed: int | None = None) -> Dataset:
    """Instantiate ``data_cfg.dataset`` (a Hydra ``_target_`` node), then preprocess and split.

    Args:
      data_cfg: the composed ``data`` node (see :class:`~jaxrec.config.DataConfig`).
      seed: only a fallback for a missing ``split.seed``; ``split.seed`` (the yaml
        sets ``${seed}``) is the one seed source, so a different value is an error.

    Returns:
      The :class:`Dataset`, deterministic given the config, with the features of
      ``data_cfg.features``.
    """
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(data_cfg, DictConfig):
        data_cfg = OmegaConf.create(data_cfg)
    split_cfg = _resolve_split(data_cfg, seed)
    inter = load_dataset(data_cfg)
    return load_and_split(inter, data_cfg.get("preprocess"), split_cfg, data_cfg.get("features"))


def load_preprocessed(data_cfg: Any) -> tuple[Interactions, Interactions]:
    """``(raw, preprocessed)``: the loader's table and it after ``data_cfg.preprocess``
    (what a run splits; ``jaxrec data info`` shows it, with its overrides applied)."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(data_cfg, DictConfig):
        data_cfg = OmegaConf.create(data_cfg)
    raw = load_dataset(data_cfg)
    return raw, preprocess(raw, _as_config(data_cfg.get("preprocess"), PreprocessConfig,
                                           "preprocess"))


def split_config(data_cfg: Any, *, seed: int | None = None) -> SplitConfig | None:
    """The resolved ``split`` section of a composed (or saved) ``data`` config, or None.

    A built :class:`Dataset` carries the same settings as ``dataset.split``.
    ``seed`` is a fallback for a missing ``split.seed`` (see `build_dataset`).
    """
    from omegaconf import DictConfig, OmegaConf

    if data_cfg is None:
        return None
    if not isinstance(data_cfg, DictConfig):
        data_cfg = OmegaConf.create(data_cfg)
    return None if data_cfg.get("split") is None else _resolve_split(data_cfg, seed)


def load_dataset(data_cfg: Any) -> Interactions:
    """Instantiate ``data_cfg.dataset`` to the raw :class:`Interactions` (no filtering).

    A DataError raised by the loader comes out as itself (one line), not wrapped
    in Hydra's InstantiationException.
    """
    import hydra.utils
    from hydra.errors import InstantiationException
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(data_cfg, DictConfig):
        data_cfg = OmegaConf.create(data_cfg)
    if data_cfg.get("dataset") is None:
        raise DataError("data.dataset is missing: it must be a _target_ node naming a loader")
    try:
        inter = hydra.utils.instantiate(data_cfg.dataset)
    except InstantiationException as e:
        if isinstance(e.__cause__, DataError):
            raise e.__cause__ from None
        raise
    if not isinstance(inter, Interactions):
        raise DataError(f"data.dataset._target_={data_cfg.dataset.get('_target_')} returned "
                        f"{type(inter).__name__}, expected Interactions")
    return inter


def _resolve_split(data_cfg, seed: int | None) -> SplitConfig:
    """The resolved ``split`` section, with ``seed`` falling back to the argument."""
    from omegaconf import OmegaConf

    node = data_cfg.get("split")
    keys = [] if node is None else list(node.keys())
    settings = {k: OmegaConf.select(data_cfg, f"split.{k}") for k in keys if k != "seed"}
    cfg_seed = None
    if "seed" in keys:
        cfg_seed = OmegaConf.select(data_cfg, "split.seed", throw_on_resolution_failure=False,
                                    throw_on_missing=False)
    if cfg_seed is None:
        if seed is None and "seed" in keys:
            raw = OmegaConf.to_container(node, resolve=False)["seed"]
            raise DataError(f"data.split.seed={raw} cannot be resolved; set it (the yaml "
                            "uses ${seed}) or pass seed=")
        if seed is not None:
            settings["seed"] = seed
    elif seed is not None and seed != cfg_seed:
        raise DataError(f"build_dataset(seed={seed}) disagrees with data.split.seed={cfg_seed}; "
                        "split.seed is the only seed source")
    else:
        settings["seed"] = cfg_seed
    return _as_config(settings, SplitConfig, "split")
