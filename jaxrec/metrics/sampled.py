"""The sampled ranking protocol: each user's held-out items ranked among fixed negatives.

He et al. 2017 (NCF) rank each test user's held-out item among 99 items the
user never interacted with. The negatives are drawn **once** per split and
seed, saved with the run, and reused by every evaluation (re-drawing them at
each evaluation adds noise and lets a model be selected on lucky draws); or
they are read from a file in NCF's ``test.negative`` format. Sampled metrics
are not comparable with full-ranking ones, and they can even order models
differently (Krichene and Rendle, KDD 2020); every result states its protocol.

Per evaluated user (one with a relevant item, as in full ranking), the
candidates are the user's relevant items (``R`` of them; 1 under
leave-one-out) plus the ``M`` negatives, sorted by item index; a model scores
them pointwise (``predict_fn(params, users_B, items_B) -> [B]``) on device,
and ``lax.top_k`` ranks them, ties going to the lower item index exactly as
in full ranking. Metrics are the usual ones with ``R`` relevant items.

Negatives are drawn from the items the user has no interaction with in any
part of the data, with ``numpy.random.default_rng([seed, 1])`` for valid and
``[seed, 2]`` for test, users in ascending index order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.data.interactions import DataError, Interactions
from jaxrec.io import atomic_write_with
from jaxrec.metrics.catalog import MetricSet
from jaxrec.metrics.evaluator import _balanced_blocks, relevant_pairs
from jaxrec.metrics.lists import ListEvaluator

_STREAM = {"valid": 1, "test": 2}


def evaluated_users(target: Interactions, exclude: Sequence[Interactions]
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(users_V ascending, relevant items of each)``: users with a relevant item."""
    keys, _ = relevant_pairs(target, exclude)
    users, starts = np.unique(keys // target.num_items, return_index=True)
    items = (keys % target.num_items).astype(np.int32)
    return users.astype(np.int32), np.split(items, starts[1:])


def _seen_csr(full: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, items)``: each user's distinct interacted items, sorted (scipy's CSR)."""
    from scipy import sparse

    seen = sparse.csr_array((np.ones(len(full.users), np.int8), (full.users, full.items)),
                            shape=(full.num_users, full.num_items))
    seen.sum_duplicates()  # also sorts each row's items
    return seen.indptr.astype(np.int64), seen.indices.astype(np.int64)


def draw_negatives(full: Interactions, users_V: np.ndarray, num_negatives: int, *, seed: int,
                   split: str) -> np.ndarray:
    """int32 ``[V, M]``: per user, ``M`` distinct items it never interacted with.

    Args:
      full: every interaction of the data (train, valid and test).
      users_V: the users to draw for (their order fixes the random stream).
      num_negatives: ``M``.
      seed: the run's seed; with ``split`` it selects the random stream.
      split: ``valid`` or ``test``.

    Raises:
      DataError: a user has fewer than ``M`` items left to draw from.
    """
    rng = np.random.default_rng([seed, _STREAM[split]])
    indptr, seen = _seen_csr(full)
    out = np.empty((len(users_V), num_negatives), np.int32)
    for row, u in enumerate(users_V):
        seen_u = seen[indptr[u]:indptr[u + 1]]
        free = full.num_items - len(seen_u)
        if free < num_negatives:
            raise DataError(f"eval.num_negatives={num_negatives}: user {full.user_ids[u]!r} has "
                            f"only {free} items without an interaction")
        ranks = rng.choice(free, num_negatives, replace=False)
        # the r-th unseen item is r + #{j : seen_j - j <= r} (seen sorted ascending)
        out[row] = ranks + np.searchsorted(seen_u - np.arange(len(seen_u)), ranks, side="right")
    return out


def save_negatives(path: str | os.PathLike, inter: Interactions, users_V: np.ndarray,
                   negatives_VxM: np.ndarray) -> None:
    """Write ``negatives_<split>.parquet``: ``user_id``, ``user``, ``items``, ``item_ids`` lists.

    Written atomically; `load_negatives` reads it back by raw ids.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "user_id": pa.array(inter.user_ids[users_V].tolist()),
        "user": pa.array(users_V.astype(np.int32)),
        "items": pa.array(negatives_VxM.astype(np.int32).tolist(), pa.list_(pa.int32())),
        "item_ids": pa.array(inter.item_ids[negatives_VxM].tolist()),
    })
    atomic_write_with(path, lambda tmp: pq.write_table(table, tmp))


_NCF_HEAD = re.compile(r"^\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)$")


def _read_ncf(path: Path) -> list[tuple[str, str | None, list[str], int]]:
    """NCF's ``test.negative``: ``(user,item)\\tneg1\\tneg2...`` per line; raw id strings."""
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if not fields[0].strip():
                continue
            head = _NCF_HEAD.match(fields[0].strip())
            if head is None:
                raise DataError(f"{path}:{line_no}: expected '(user,item)' then tab-separated "
                                f"negatives, got {fields[0][:40]!r}")
            rows.append((head.group(1), head.group(2), [x.strip() for x in fields[1:]
                                                        if x.strip()], line_no))
    return rows


def _read_parquet(path: Path) -> list[tuple[str, str | None, list[str], int]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["user_id", "item_ids"]).to_pydict()
    return [(str(u), None, [str(i) for i in items], row + 1)
            for row, (u, items) in enumerate(zip(table["user_id"], table["item_ids"],
                                                 strict=True))]


def load_negatives(path: str | os.PathLike, full: Interactions, users_V: np.ndarray,
                   relevant: list[np.ndarray], num_negatives: int) -> np.ndarray:
    """int32 ``[V, M]`` negatives of ``users_V`` from an NCF ``test.negative`` or saved parquet.

    Ids in the file are the data's raw user and item ids. Every evaluated user
    needs exactly one line; a line's positive (NCF) must be one of the user's
    relevant items, and no negative may be an item the user interacted with.

    Raises:
      DataError: one line naming the file, the line and the offending value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"eval.negatives_file={path}: no such file")
    rows = _read_parquet(path) if path.suffix == ".parquet" else _read_ncf(path)
    user_of = {str(raw): i for i, raw in enumerate(full.user_ids.tolist())}
    item_of = {str(raw): i for i, raw in enumerate(full.item_ids.tolist())}
    row_of_user = {int(u): r for r, u in enumerate(users_V)}
    indptr, seen = _seen_csr(full)
    out = np.full((len(users_V), num_negatives), -1, np.int32)
    for raw_user, raw_pos, raw_negs, line in rows:
        where = f"{path}:{line}"
        if raw_user not in user_of:
            raise DataError(f"{where}: unknown user id {raw_user!r}")
        u = user_of[raw_user]
        if u not in row_of_user:
            raise DataError(f"{where}: user {raw_user!r} has no held-out item in this split")
        r = row_of_user[u]
        if out[r, 0] >= 0:
            raise DataError(f"{where}: user {raw_user!r} appears twice")
        if raw_pos is not None and item_of.get(raw_pos, -1) not in set(relevant[r].tolist()):
            raise DataError(f"{where}: item {raw_pos!r} is not a held-out item of user "
                            f"{raw_user!r}")
        if len(raw_negs) != num_negatives:
            raise DataError(f"{where}: {len(raw_negs)} negatives, eval.num_negatives is "
                            f"{num_negatives}")
        unknown = [x for x in raw_negs if x not in item_of]
        if unknown:
            raise DataError(f"{where}: unknown item id {unknown[0]!r}")
        negs = np.array([item_of[x] for x in raw_negs], np.int32)
        clash = np.intersect1d(negs, seen[indptr[u]:indptr[u + 1]])
        if len(clash):
            raise DataError(f"{where}: negative {full.item_ids[clash[0]]!r} of user "
                            f"{raw_user!r} is an item the user interacted with")
        if len(np.unique(negs)) != len(negs):
            raise DataError(f"{where}: a negative of user {raw_user!r} is repeated")
        out[r] = negs
    missing = np.flatnonzero(out[:, 0] < 0)
    if len(missing):
        raise DataError(f"{path}: no negatives for user {full.user_ids[users_V[missing[0]]]!r} "
                        f"({len(missing)} evaluated users missing)")
    return out


class SampledRankingEvaluator(ListEvaluator):
    """Rank each evaluated user's relevant items among fixed negatives, on device.

    Args:
      split: key prefix (``valid``, ``test``).
      target: held-out interactions (relevant items, as in full ranking).
      exclude: sets whose items are not relevant (train; train + valid for test).
      negatives_VxM: int32 ``[V, M]`` fixed negatives, one row per evaluated
        user in ascending id order (`evaluated_users`), none of them relevant.
      ks, metrics, user_block, train, item_features: as in
        `jaxrec.metrics.evaluator.RankingEvaluator`; ``max(ks) <= M + 1``.

    ``predict_fn(params, users_B int32, items_B int32) -> scores_B`` must be
    pure and jittable; one function is compiled per ``predict_fn`` object.
    """

    inputs = "pairs"

    def __init__(self, split: str, target: Interactions, exclude: Sequence[Interactions],
                 negatives_VxM: np.ndarray, *, ks: Sequence[int], metrics: Sequence[str],
                 user_block: int = 256, train: Interactions | None = None,
                 item_features: np.ndarray | None = None):
        self.metric_set = MetricSet(split, metrics, ks, num_items=target.num_items, train=train,
                                    item_features=item_features)
        self.split, self.ks = split, self.metric_set.ks
        users, relevant = evaluated_users(target, exclude)
        if len(users) == 0:
            raise ValueError(f"{split}: no user has a target item outside the excluded sets")
        negatives_VxM = np.asarray(negatives_VxM)
        if negatives_VxM.ndim != 2 or len(negatives_VxM) != len(users):
            raise ValueError(f"{split}: negatives of shape {negatives_VxM.shape}, expected "
                             f"({len(users)}, num_negatives)")
        num_neg = negatives_VxM.shape[1]
        if max(self.ks) > num_neg + 1:
            raise ValueError(f"eval.ks: cut-off {max(self.ks)} exceeds the {num_neg + 1} "
                             f"candidates of the sampled protocol (eval.num_negatives={num_neg})")
        if isinstance(user_block, bool) or not isinstance(user_block, int) or user_block < 1:
            raise ValueError(f"eval.user_block: {user_block!r} must be a positive int")
        self.users, self.num_negatives = users, num_neg

        n_eval = len(users)
        n_blocks, block = _balanced_blocks(n_eval, user_block)
        self.block = block
        width = num_neg + max(len(r) for r in relevant)
        cand = np.zeros((n_blocks * block, width), np.int32)
        is_rel = np.zeros(cand.shape, bool)
        valid = np.zeros(cand.shape, bool)
        for row, (rel, negs) in enumerate(zip(relevant, negatives_VxM, strict=True)):
            if np.isin(negs, rel).any():
                raise ValueError(f"{split}: a negative of user {users[row]} is a relevant item")
            items = np.concatenate([rel, negs.astype(np.int32)])
            order = np.argsort(items, kind="stable")  # ties in score go to the lower item index
            n = len(items)
            cand[row, :n], is_rel[row, :n], valid[row, :n] = items[order], (
                order < len(rel)), True
        users_pad = np.zeros(n_blocks * block, np.int32)
        users_pad[:n_eval] = users
        num_rel = np.zeros(n_blocks * block, np.int32)
        num_rel[:n_eval] = [len(r) for r in relevant]

        def shaped(x):
            return x.reshape(n_blocks, block, *x.shape[1:])

        self._blocks = jax.device_put({
            "users": shaped(users_pad), "num_relevant": shaped(num_rel),
            "candidates": shaped(cand), "relevant": shaped(is_rel), "valid": shaped(valid)})
        self._compiled = {}

    def _block_lists(self, predict_fn, params, blk):
        users_U, cand_UxC = blk["users"], blk["candidates"]
        n_users, width = cand_UxC.shape
        scores_B = predict_fn(params, jnp.repeat(users_U, width), cand_UxC.reshape(-1))
        if scores_B.shape != (n_users * width,):
            raise ValueError(f"{self.split}: predict_fn returned shape {scores_B.shape}, "
                             f"expected ({n_users * width},)")
        scores_UxC = jnp.where(blk["valid"], scores_B.astype(jnp.float32).reshape(n_users, width),
                               -jnp.inf)
        top_scores_UxK, top_UxK = jax.lax.top_k(scores_UxC, max(self.ks))
        hits_UxK = jnp.take_along_axis(blk["relevant"], top_UxK, axis=1)
        items_UxK = jnp.take_along_axis(cand_UxC, top_UxK, axis=1)
        return hits_UxK, blk["num_relevant"], items_UxK, top_scores_UxK > -jnp.inf
