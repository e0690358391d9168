"""Train / valid / test splits; seeded, deterministic, sharing one vocabulary.

Methods (``SplitConfig.method``):
  random      a random fraction ``test`` of all interactions.
  user_ratio  per user, ``round(test * n_u)`` interactions (at most ``n_u - 1``,
              so a user keeps at least one in train; a single one stays in train).
  leave_last  per user, the latest interaction (ties: larger item index, then
              later row) is the test one; users with a single interaction stay in train.
  temporal    a global time cut: the latest ``test`` fraction of interactions by
              timestamp quantile; equal timestamps fall on the same side.
  cold_item   item cold start: a random fraction ``test`` of the items (with at least
              one interaction) are test items and every row of theirs is test; then a
              fraction ``valid`` of the remaining items are validation items. No
              held-out item has a training row.
  cold_user   the same with users: held-out users have no training row.
  kfold       K-fold cross-validation over interactions (sklearn ``KFold(shuffle=True)``,
              Surprise ``KFold``): the rows are shuffled with ``seed`` and cut into
              ``folds`` consecutive folds, the first ``E % K`` of size ``E // K + 1``,
              the rest ``E // K``; fold ``fold`` is test, the others train (``test`` is
              ignored). Running ``fold = 0..K-1`` with one seed tests every row once.
  predefined  the split the dataset ships with (``Interactions.parts``; NCF's
              ``.train.rating`` / ``.test.rating`` files): ``test`` is ignored; with
              ``valid > 0`` and no shipped validation rows, each user's latest training
              row is validation (users with >= 2 training rows), as in leave_last;
              shipped validation rows are train when ``valid == 0``.
  strong      strong generalisation (Liang et al. 2018, Mult-VAE): users, not rows,
              are held out. A random fraction ``test`` of the users (with at least
              one interaction) become test users, then a fraction ``valid`` of the
              rest validation users; every row of the remaining users is train.
              ``test`` / ``valid`` >= 1 are numbers of users instead (the paper
              holds out 10,000 each on ml-20m: ``test=10000 valid=10000``).
              Rows of held-out users whose item has no train row are dropped (as
              in the paper's preprocessing). Of each held-out user's remaining
              ``n`` rows, ``floor((1 - fold_in) * n)`` random ones are the target
              (so users with ``n < 5`` keep all as history at ``fold_in=0.8``); the
              rest are the fold-in history the model scores from. `split_parts`
              returns the targets as valid / test and the histories as
              ``fold_in``; `strong_split` returns all five parts.

With ``valid > 0`` the validation part is carved out of train by the same method
(``valid`` is a fraction of the train part; for leave_last it is each user's
second-to-last interaction, for users with at least three). Each part keeps the
original row order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxrec.config import SplitConfig
from jaxrec.data.interactions import DataError, Interactions

SPLIT_METHODS = ("random", "user_ratio", "leave_last", "temporal", "cold_item", "cold_user",
                 "kfold")
"""Methods that partition the rows: train, valid and test together are the whole table."""
SHIPPED_SPLIT_METHODS = ("predefined",)
"""Methods that keep the split a dataset ships with (``Interactions.parts``); they too
partition the rows, but only data from a loader that sets ``parts`` (NCF) has one."""
USER_SPLIT_METHODS = ("strong",)
"""Methods that hold out users: their fold-in rows are in none of train, valid and test."""
_TEST_FRACTION_METHODS = ("random", "user_ratio", "temporal", "cold_item", "cold_user", "strong")
"""Methods whose ``test`` is the held-out fraction (the others ignore it)."""
PART_NAMES = ("train", "valid", "test", "valid_fold_in", "test_fold_in", "dropped")
"""The part codes of `assign_parts`, by value."""


class SplitParts(NamedTuple):
    """Every part of one split (`split_parts`); ``fold_in`` is ``{}`` unless ``strong``."""

    train: Interactions
    valid: Interactions | None
    test: Interactions
    fold_in: dict[str, Interactions]


def split_parts(inter: Interactions, cfg: SplitConfig) -> SplitParts:
    """Split ``inter`` once into its train / valid / test parts and fold-in histories.

    Args:
      inter: preprocessed interactions.
      cfg: a :class:`~jaxrec.config.SplitConfig` (or a node with its fields).

    Returns:
      ``train``, ``valid`` (None when ``cfg.valid == 0``) and ``test``: disjoint
      rows whose union is ``inter`` (for ``strong``: without the held-out users'
      fold-in and dropped rows); ``fold_in``: for ``strong``, ``{"valid": ...,
      "test": ...}``, the held-out users' fold-in histories (``valid`` only when
      ``cfg.valid > 0``), else ``{}``.

    Raises:
      DataError: unknown method, a fraction outside [0, 1), or an empty train part.
    """
    part = assign_parts(inter, cfg)
    train = inter.select(part == 0)
    if len(train) == 0:
        raise DataError(f"{inter.name}: split.method={cfg.method} with test={cfg.test}, "
                        f"valid={cfg.valid} left no training interactions")
    with_valid = cfg.valid > 0
    valid = inter.select(part == 1) if with_valid else None
    fold_in = {}
    if cfg.method in USER_SPLIT_METHODS:
        names = ("valid", "test") if with_valid else ("test",)
        fold_in = {name: inter.select(part == PART_NAMES.index(f"{name}_fold_in"))
                   for name in names}
    return SplitParts(train, valid, inter.select(part == 2), fold_in)


def split(inter: Interactions, cfg: SplitConfig
          ) -> tuple[Interactions, Interactions | None, Interactions]:
    """``(train, valid, test)`` of `split_parts` (``valid`` is None when ``cfg.valid == 0``)."""
    train, valid, test, _ = split_parts(inter, cfg)
    return train, valid, test


def assign_parts(inter: Interactions, cfg: SplitConfig) -> np.ndarray:
    """int8 ``[E]`` part of each row: 0 train, 1 valid, 2 test.

    ``strong`` also uses 3 (valid fold-in), 4 (test fold-in) and 5 (dropped);
    see `PART_NAMES`.
    """
    _check(cfg)
    rng = np.random.default_rng(cfg.seed)
    part = np.zeros(len(inter), dtype=np.int8)
    if cfg.method in ("cold_item", "cold_user"):
        _cold(inter.items if cfg.method == "cold_item" else inter.users, rng, part, cfg.test,
              cfg.valid)
    elif cfg.method == "strong":
        _strong(inter, rng, part, cfg.test, cfg.valid, cfg.fold_in)
    elif cfg.method == "leave_last":
        _leave_last(inter, part, cfg.valid > 0)
    elif cfg.method == "random":
        _random(rng, part, cfg.test, cfg.valid)
    elif cfg.method == "predefined":
        _predefined(inter, part, cfg.valid > 0)
    elif cfg.method == "kfold":
        _kfold(rng, part, cfg.folds, cfg.fold, cfg.valid)
    elif cfg.method == "user_ratio":
        _user_ratio(inter, rng, part, cfg.test, cfg.valid)
    else:
        _temporal(inter.timestamps, part, cfg.test, cfg.valid)
    return part


def _check(cfg: SplitConfig) -> None:
    methods = SPLIT_METHODS + USER_SPLIT_METHODS + SHIPPED_SPLIT_METHODS
    if cfg.method not in methods:
        raise DataError(f"split.method={cfg.method!r} is not one of {', '.join(methods)}")
    for key in ("test", "valid", "fold_in"):
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise DataError(f"data.split.{key}={value!r}: expected a number")
    for key in ("test", "valid"):
        value = getattr(cfg, key)
        if cfg.method == "strong" and value >= 1.0:  # strong: a number of users
            if value != int(value):
                raise DataError(f"split.{key}={value}: a number of held-out users must be whole")
            continue
        if not 0.0 <= value < 1.0:
            raise DataError(f"split.{key}={value} must be in [0, 1)")
        if key == "test" and value == 0 and cfg.method in _TEST_FRACTION_METHODS:
            raise DataError(f"split.test={value} leaves nothing to test: must be in (0, 1) "
                            f"for split.method={cfg.method} (the held-out fraction)")
    if cfg.method == "strong" and not 0.0 <= cfg.fold_in <= 1.0:
        raise DataError(f"split.fold_in={cfg.fold_in} must be in [0, 1]")
    if cfg.method == "kfold":
        if cfg.folds is None or cfg.folds == 0:
            raise DataError("split.method=kfold needs split.folds (the number of folds K >= 2)")
        if cfg.folds < 2:
            raise DataError(f"split.folds={cfg.folds} must be >= 2 for split.method=kfold")
        if not 0 <= cfg.fold < cfg.folds:
            raise DataError(f"split.fold={cfg.fold} must be in 0..{cfg.folds - 1} "
                            f"(split.folds={cfg.folds})")


def strong_split(inter: Interactions, cfg: SplitConfig) -> dict[str, Interactions]:
    """All parts of a strong-generalisation split, by `PART_NAMES` name (``dropped`` left out).

    ``valid`` / ``test`` are the held-out users' targets, ``valid_fold_in`` /
    ``test_fold_in`` their histories; ``train`` holds only the other users.
    """
    if cfg.method != "strong":
        raise DataError(f"strong_split: split.method={cfg.method!r}, expected 'strong'")
    part = assign_parts(inter, cfg)
    return {name: inter.select(part == code) for code, name in enumerate(PART_NAMES[:5])}


def _strong(inter: Interactions, rng: np.random.Generator, part: np.ndarray, test: float,
            valid: float, fold_in: float) -> None:
    active = np.flatnonzero(np.bincount(inter.users, minlength=inter.num_users))
    users = rng.permutation(active)
    # >= 1: a number of users (Liang et al.: 10,000 each); < 1: a share of them
    n_test = int(test) if test >= 1 else int(_round(test * len(users)))
    n_valid = int(valid) if valid >= 1 else int(_round(valid * (len(users) - n_test)))
    if n_test + n_valid > len(users):
        raise DataError(f"{inter.name}: split.test={test:g} and split.valid={valid:g} hold out "
                        f"{n_test + n_valid} users, but only {len(users)} have interactions")
    role = np.zeros(inter.num_users, np.int8)  # 0 train user, 1 valid user, 2 test user
    role[users[:n_test]] = 2
    role[users[n_test:n_test + n_valid]] = 1
    row_role = role[inter.users]
    train_items = np.zeros(inter.num_items, bool)
    train_items[inter.items[row_role == 0]] = True
    held = np.flatnonzero((row_role > 0) & train_items[inter.items])
    part[(row_role > 0) & ~train_items[inter.items]] = 5
    # Held-out users' rows in a random order within each user; the first ones are targets.
    users_h = inter.users[held]
    order = np.lexsort((rng.random(len(held)), users_h))
    rank, counts = _rank_in_user(users_h, order, inter.num_users)
    # floor((1 - fold_in) * n), robust to 1 - 0.8 = 0.19999999999999996
    n_target = np.floor((1.0 - fold_in) * counts + 1e-9).astype(np.int64)
    is_target = rank < n_target[users_h]
    held_role = row_role[held]
    part[held] = np.where(is_target, held_role, held_role + 2)


def _cold(entity_E: np.ndarray, rng: np.random.Generator, part: np.ndarray, test: float,
          valid: float) -> None:
    """Hold out whole entities (items or users): all of their rows go to test / valid."""
    active = np.unique(entity_E)
    perm = rng.permutation(active)
    n_test = int(_round(test * len(perm)))
    n_valid = int(_round(valid * (len(perm) - n_test)))
    role = np.zeros(int(entity_E.max(initial=-1)) + 1, np.int8)
    role[perm[:n_test]] = 2
    role[perm[n_test:n_test + n_valid]] = 1
    part[:] = role[entity_E]


def _round(x: np.ndarray | float) -> np.ndarray:
    """Round half up (``np.round`` rounds half to even)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _random(rng: np.random.Generator, part: np.ndarray, test: float, valid: float) -> None:
    perm = rng.permutation(len(part))
    n_test = int(_round(test * len(part)))
    n_valid = int(_round(valid * (len(part) - n_test)))
    part[perm[:n_test]] = 2
    part[perm[n_test:n_test + n_valid]] = 1


def _fold_sizes(num_rows: int, folds: int) -> np.ndarray:
    """Sizes of K near-equal folds: the first ``num_rows % K`` get one extra row (sklearn)."""
    sizes = np.full(folds, num_rows // folds, dtype=np.int64)
    sizes[:num_rows % folds] += 1
    return sizes


def _kfold(rng: np.random.Generator, part: np.ndarray, folds: int, fold: int,
           valid: float) -> None:
    perm = rng.permutation(len(part))
    stops = np.cumsum(_fold_sizes(len(part), folds))
    start = 0 if fold == 0 else int(stops[fold - 1])
    part[perm[start:int(stops[fold])]] = 2
    # validation: a fraction of the training rows, from a second draw of the same stream
    train_rows = np.flatnonzero(part == 0)
    n_valid = int(_round(valid * len(train_rows)))
    part[rng.permutation(train_rows)[:n_valid]] = 1


def _rank_in_user(users: np.ndarray, order: np.ndarray, num_users: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row within its user's group in ``order``, and the group sizes."""
    counts = np.bincount(users, minlength=num_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts[users[order]]
    return rank, counts


def _user_ratio(inter: Interactions, rng: np.random.Generator, part: np.ndarray,
                test: float, valid: float) -> None:
    # Users grouped, rows in random order inside each user.
    order = np.lexsort((rng.random(len(inter)), inter.users))
    rank, counts = _rank_in_user(inter.users, order, inter.num_users)
    n_test = np.minimum(_round(test * counts), np.maximum(counts - 1, 0))
    n_train = counts - n_test
    n_valid = np.minimum(_round(valid * n_train), np.maximum(n_train - 1, 0))
    per_row_test, per_row_valid = n_test[inter.users], n_valid[inter.users]
    part[rank < per_row_test] = 2
    part[(rank >= per_row_test) & (rank < per_row_test + per_row_valid)] = 1


def _leave_last(inter: Interactions, part: np.ndarray, with_valid: bool) -> None:
    rows = np.arange(len(inter))
    order = np.lexsort((rows, inter.items, inter.timestamps, inter.users))
    rank, counts = _rank_in_user(inter.users, order, inter.num_users)
    from_end = counts[inter.users] - 1 - rank  # 0 = latest
    part[(from_end == 0) & (counts[inter.users] >= 2)] = 2
    if with_valid:
        part[(from_end == 1) & (counts[inter.users] >= 3)] = 1


def _predefined(inter: Interactions, part: np.ndarray, with_valid: bool) -> None:
    if inter.parts is None:
        raise DataError(f"{inter.name}: split.method=predefined needs a dataset that ships its "
                        "split (Interactions.parts, e.g. the NCF loader); this one has none")
    given = np.asarray(inter.parts)
    bad = ~np.isin(given, (0, 1, 2))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{inter.name}: predefined part {given[row].item()!r} of row {row} is "
                        "not 0 (train), 1 (valid) or 2 (test)")
    part[:] = np.where((given == 1) & (not with_valid), 0, given)
    if with_valid and not (given == 1).any():
        train_rows = np.flatnonzero(given == 0)
        latest = np.zeros(len(train_rows), np.int8)
        _leave_last(inter.select(train_rows), latest, False)  # 2 = each user's latest row
        part[train_rows[latest == 2]] = 1


def _temporal_cut(timestamps: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of rows in the latest ``fraction`` by time (ties kept together)."""
    n_late = int(_round(fraction * len(timestamps)))
    if n_late == 0:
        return np.zeros(len(timestamps), dtype=bool)
    cut = np.sort(timestamps)[len(timestamps) - n_late]
    return timestamps >= cut


def _temporal(timestamps: np.ndarray, part: np.ndarray, test: float, valid: float) -> None:
    is_test = _temporal_cut(timestamps, test)
    part[is_test] = 2
    train_rows = np.flatnonzero(~is_test)
    part[train_rows[_temporal_cut(timestamps[train_rows], valid)]] = 1
