"""Steam reviews (Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018;
Wan and McAuley, RecSys 2018; cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data).

The files are Python literals, one dict per line (single quotes, ``True``, ``u'...'``),
not JSON, so each line is read with ``ast.literal_eval`` (never ``eval``):

``steam_reviews.json.gz`` (version 2, used by SASRec)
    ``{'username': ..., 'product_id': '725280', 'date': '2017-12-17', 'hours': 0.1, ...}``
``australian_user_reviews.json.gz`` (version 1)
    ``{'user_id': ..., 'reviews': [{'item_id': '1250', 'posted': 'Posted November 5,
    2011.', 'recommend': True, ...}, ...]}``; a ``posted`` date without a year (reviews
    of the crawl's year) gets timestamp 0.

Implicit: every review is a positive (rating 1.0).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from jaxrec.data import cache
from jaxrec.data.datasets import convert
from jaxrec.data.datasets.table import find_file
from jaxrec.data.datasets.tabular import raw_bytes
from jaxrec.data.interactions import DataError, Interactions

FOLDER = "steam"
FILES = {"reviews": "steam_reviews.json.gz", "australian": "australian_user_reviews.json.gz"}


def _records(path: Path):
    for n, line in enumerate(raw_bytes(path).decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            raise DataError(f"{path}: line {n}: not a Python literal ({line[:60]!r})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {n}: expected a dict, got {line[:60]!r}")
        yield n, record


def _rows(path: Path, version: str):
    users, items, dates, lines = [], [], [], []
    for n, record in _records(path):
        try:
            if version == "reviews":
                users.append(str(record["username"]))
                items.append(str(record["product_id"]))
                dates.append(record.get("date", ""))
                lines.append(n)
            else:
                for review in record["reviews"]:
                    users.append(str(record["user_id"]))
                    items.append(str(review["item_id"]))
                    dates.append(review.get("posted", ""))
                    lines.append(n)
        except (KeyError, TypeError) as e:
            raise DataError(f"{path}: line {n}: missing field {e}") from None
    return users, items, dates, lines


def _seconds(dates: list[str], version: str) -> np.ndarray:
    text = pd.Series(dates, dtype=object).astype(str)
    if version == "australian":
        text = text.str.removeprefix("Posted ").str.rstrip(".")
        parsed = pd.to_datetime(text, format="%B %d, %Y", errors="coerce")
    else:
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    seconds = parsed.to_numpy().astype("datetime64[s]").astype(np.int64)
    return np.where(parsed.isna().to_numpy(), 0, seconds)


def load_steam(data_dir: str | None = None, version: str = "reviews", folder: str = FOLDER, *,
               cache_dir: str | None = None, use_cache: bool = True) -> Interactions:
    """Steam reviews from ``<data_dir>/<folder>/``; ``version``: reviews | australian."""
    if version not in FILES:
        raise DataError(f"steam: version={version!r} is not {' or '.join(FILES)}")
    path = find_file(data_dir, folder, [FILES[version], FILES[version].removesuffix(".gz")],
                     "steam")

    def build() -> Interactions:
        users, items, dates, lines = _rows(path, version)
        if not users:
            raise DataError(f"{path}: no reviews")
        locate = lambda row: f"line {lines[row]}"
        encoded = [convert.encode_ids(pa.chunked_array([pa.array(v, pa.string())]), path, c,
                                      locate) for v, c in ((users, "user"), (items, "item"))]
        (user_codes,), user_ids = convert.merge_vocab([encoded[0]])
        (item_codes,), item_ids = convert.merge_vocab([encoded[1]])
        return Interactions(users=user_codes, items=item_codes,
                            ratings=np.ones(len(users), np.float32),
                            timestamps=_seconds(dates, version), user_ids=user_ids,
                            item_ids=item_ids, name=f"steam-{version}")

    if not use_cache or cache_dir is None:
        return build()
    key = cache.content_key([path], version=version)
    return cache.cached(Path(cache_dir).expanduser() / "parsed" / f"steam-{key}.npz", build)
