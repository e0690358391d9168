"""The adjacency-list split files that LightGCN, NGCF and their follow-ups release.

He et al., "LightGCN", SIGIR 2020 (github.com/gusye1234/LightGCN-PyTorch, ``data/``);
Wang et al., "NGCF", SIGIR 2019. ``DIR/train.txt``, optional ``DIR/valid.txt`` and
``DIR/test.txt``: one line per user, ``user item item ...`` separated by whitespace,
0-based integer ids; a line with only the user (no items) is allowed. Rows are implicit
(rating 1.0, timestamp 0); ``parts`` is 0 / 1 / 2 by file, for
``split.method=predefined``. Users and items are the union over all files: an item that
occurs only in ``test.txt`` is still in the universe (ranked, as in the papers' code).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrec.data import cache
from jaxrec.data.datasets.tabular import raw_bytes
from jaxrec.data.interactions import DataError, Interactions

FILES = (("train.txt", 0), ("valid.txt", 1), ("test.txt", 2))
UNIVERSE = "union of train/valid/test files"


def read_adjacency(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users [E], items [E], listed_users [U])`` int64 of one adjacency file.

    ``listed_users`` holds every user with a line, including those without items.

    Raises:
      DataError: a token that is not a non-negative integer, or a user listed twice
        (one line: file, line, value).
    """
    data = raw_bytes(path)
    lines = [line for line in data.split(b"\n")]
    tokens = [line.split() for line in lines]
    counts = np.array([len(t) for t in tokens], np.int64)
    flat = [tok for t in tokens for tok in t]
    try:
        values = np.array(flat, dtype=np.bytes_).astype(np.int64) if flat else np.zeros(0, int)
        if (values < 0).any():
            raise ValueError
    except ValueError:
        for n, toks in enumerate(tokens, 1):
            for tok in toks:
                if not tok.isdigit():
                    raise DataError(f"{path}: line {n}: {tok.decode('utf-8', 'replace')!r} is "
                                    "not a non-negative integer id") from None
        raise DataError(f"{path}: cannot parse ids") from None
    nonempty = counts > 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
    listed = values[starts]
    per_user = counts[nonempty] - 1
    uniq, first = np.unique(listed, return_index=True)
    if len(uniq) != len(listed):
        dup = np.setdiff1d(np.arange(len(listed)), first)[0]
        line = int(np.flatnonzero(nonempty)[dup]) + 1
        raise DataError(f"{path}: line {line}: user {listed[dup]} is listed twice")
    is_item = np.ones(len(values), bool)
    is_item[starts] = False
    return np.repeat(listed, per_user), values[is_item], listed


def load_adjacency(dir: str, *, name: str | None = None, cache_dir: str | None = None,
                   use_cache: bool = True) -> Interactions:
    """Read ``dir/train.txt`` (+ ``valid.txt``, ``test.txt``) with their split.

    Args:
      dir: the folder with the files (``~`` expanded).
      name: dataset name (default: the folder's name).
      cache_dir: parsed-cache root, or None for no cache.
      use_cache: read and write the parsed cache.

    Returns:
      Interactions over the union of users (listed on any line) and items, indexed in
      raw-id order, so an index is its raw id when no id is skipped; ``parts`` by file.
    """
    folder = Path(dir).expanduser()
    files = [(folder / f, part) for f, part in FILES if (folder / f).is_file()]
    if not files or files[0][1] != 0:
        raise DataError(f"missing file {folder / 'train.txt'} (adjacency format: one line per "
                        "user, 'user item item ...')")
    name = name or folder.name

    def build() -> Interactions:
        users, items, parts, listed = [], [], [], []
        for path, part in files:
            u, i, who = read_adjacency(path)
            users.append(u)
            items.append(i)
            listed.append(who)
            parts.append(np.full(len(u), part, np.int8))
        users, items = np.concatenate(users), np.concatenate(items)
        if len(users) == 0:
            raise DataError(f"{files[0][0]}: no interactions")
        user_ids, user_index = np.unique(np.concatenate([users, *listed]), return_inverse=True)
        item_ids, item_index = np.unique(items, return_inverse=True)
        return Interactions(
            users=user_index[:len(users)].astype(np.int32), items=item_index.astype(np.int32),
            ratings=np.ones(len(users), np.float32), timestamps=np.zeros(len(users), np.int64),
            user_ids=user_ids, item_ids=item_ids, name=name, parts=np.concatenate(parts),
            universe=UNIVERSE)

    if not use_cache or cache_dir is None:
        return build()
    key = cache.content_key([f for f, _ in files], parts=[p for _, p in files], name=name,
                            universe=UNIVERSE)
    return cache.cached(Path(cache_dir).expanduser() / "parsed" / f"adjacency-{key}.npz", build)
