"""Train / valid / test splits; seeded, deterministic, sharing one vocabulary.

Methods (``SplitConfig.method``):
  random      a random fraction ``test`` of all interactions.
  user_ratio  per user, ``round(test * n_u)`` interactions (at most ``n_u - 1``,
              so a user keeps at least one in train; a single one stays in train).
  leave_last  per user, the latest interaction (ties: larger item index, then
              later row) is the test one; users with a single interaction stay in train.
  temporal    a global time cut: the latest ``test`` fraction of interactions by
              timestamp quantile; equal timestamps fall on the same side.

With ``valid > 0`` the validation part is carved out of train by the same method
(``valid`` is a fraction of the train part; for leave_last it is each user's
second-to-last interaction, for users with at least three). Each part keeps the
original row order.
"""

from __future__ import annotations

import numpy as np

from jaxrec.config import SplitConfig
from jaxrec.data.interactions import DataError, Interactions

SPLIT_METHODS = ("random", "user_ratio", "leave_last", "temporal")


def split(inter: Interactions, cfg: SplitConfig
          ) -> tuple[Interactions, Interactions | None, Interactions]:
    """Split ``inter`` into ``(train, valid, test)``; ``valid`` is None when ``cfg.valid == 0``.

    Args:
      inter: preprocessed interactions.
      cfg: a :class:`~jaxrec.config.SplitConfig` (or a node with its fields).

    Returns:
      Three Interactions with disjoint rows whose union is ``inter``.

    Raises:
      DataError: unknown method, a fraction outside [0, 1), or an empty train part.
    """
    if cfg.method not in SPLIT_METHODS:
        raise DataError(f"split.method={cfg.method!r} is not one of {', '.join(SPLIT_METHODS)}")
    for key in ("test", "valid"):
        value = getattr(cfg, key)
        if not 0.0 <= value < 1.0:
            raise DataError(f"split.{key}={value} must be in [0, 1)")
    part = assign_parts(inter, cfg)
    train = inter.select(part == 0)
    if len(train) == 0:
        raise DataError(f"{inter.name}: split.method={cfg.method} with test={cfg.test}, "
                        f"valid={cfg.valid} left no training interactions")
    valid = inter.select(part == 1) if cfg.valid > 0 else None
    return train, valid, inter.select(part == 2)


def assign_parts(inter: Interactions, cfg: SplitConfig) -> np.ndarray:
    """int8 ``[E]`` part of each row: 0 train, 1 valid, 2 test."""
    rng = np.random.default_rng(cfg.seed)
    part = np.zeros(len(inter), dtype=np.int8)
    if cfg.method == "leave_last":
        _leave_last(inter, part, cfg.valid > 0)
    elif cfg.method == "random":
        _random(rng, part, cfg.test, cfg.valid)
    elif cfg.method == "user_ratio":
        _user_ratio(inter, rng, part, cfg.test, cfg.valid)
    else:
        _temporal(inter.timestamps, part, cfg.test, cfg.valid)
    return part


def _round(x: np.ndarray | float) -> np.ndarray:
    """Round half up (``np.round`` rounds half to even)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _random(rng: np.random.Generator, part: np.ndarray, test: float, valid: float) -> None:
    perm = rng.permutation(len(part))
    n_test = int(_round(test * len(part)))
    n_valid = int(_round(valid * (len(part) - n_test)))
    part[perm[:n_test]] = 2
    part[perm[n_test:n_test + n_valid]] = 1


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
