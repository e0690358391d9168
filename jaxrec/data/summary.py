"""Human-readable dataset summaries and the download entry for the CLI."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np

from jaxrec.data.download import download_movielens
from jaxrec.data.interactions import Interactions


def _date(ts: int) -> str:
    return datetime.datetime.fromtimestamp(int(ts), tz=datetime.UTC).strftime("%Y-%m-%d")


def summarize(inter: Interactions) -> str:
    """A multi-line summary: sizes, density, rating histogram, time range, features.

    Example (ml-latest-small)::

        dataset       ml-latest-small
        users         610
        items         9,724
        interactions  100,836
        density       1.6999%
        ...
    """
    n, nu, ni = len(inter), inter.num_users, inter.num_items
    density = n / (nu * ni) if nu and ni else 0.0
    lines = [f"{'dataset':<14}{inter.name or '(unnamed)'}", f"{'users':<14}{nu:,}",
             f"{'items':<14}{ni:,}", f"{'interactions':<14}{n:,}",
             f"{'density':<14}{100 * density:.4f}%"]
    if n:
        per_user = np.bincount(inter.users, minlength=nu)
        per_item = np.bincount(inter.items, minlength=ni)
        lines.append(f"{'per user':<14}min {per_user.min()}, median {np.median(per_user):g}, "
                     f"max {per_user.max()}")
        lines.append(f"{'per item':<14}min {per_item.min()}, median {np.median(per_item):g}, "
                     f"max {per_item.max()}")
        values, counts = np.unique(inter.ratings, return_counts=True)
        lines.append(f"{'ratings':<14}mean {inter.ratings.mean():.3f}, "
                     f"min {values[0]:g}, max {values[-1]:g}")
        if len(values) <= 20:
            width = 40 / counts.max()
            for v, c in zip(values, counts, strict=True):
                lines.append(f"  {v:>5g}  {c:>10,}  {'#' * max(1, round(c * width))}")
        else:
            hist, edges = np.histogram(inter.ratings, bins=10)
            for lo, hi, c in zip(edges[:-1], edges[1:], hist, strict=True):
                lines.append(f"  [{lo:.3g}, {hi:.3g})  {c:>10,}")
        ts = inter.timestamps
        lines.append(f"{'timestamps':<14}{_date(ts.min())} .. {_date(ts.max())} "
                     f"({ts.min()} .. {ts.max()})")
    if inter.parts is not None:
        counts = np.bincount(np.asarray(inter.parts, np.int64), minlength=3)
        lines.append(f"{'shipped split':<14}train {counts[0]:,}, valid {counts[1]:,}, "
                     f"test {counts[2]:,} (split.method=predefined keeps it)")
    if inter.universe:
        lines.append(f"{'item universe':<14}{inter.universe}")
    features = []
    for key, value in inter.item_features.items():
        shape = "x".join(map(str, np.shape(value)))
        features.append(f"{key} {np.asarray(value).dtype}[{shape}]")
    lines.append(f"{'item features':<14}{', '.join(features) if features else 'none'}")
    if inter.item_titles is not None and ni:
        lines.append(f"{'titles':<14}e.g. {inter.item_titles[0]!r}")
    return "\n".join(lines)


def download(variant: str, cache_dir: str | os.PathLike = "~/.cache/jaxrec", **kwargs) -> Path:
    """Download, verify and extract MovieLens ``variant`` into ``cache_dir``.

    For ``jaxrec data download``; keyword arguments go to
    :func:`jaxrec.data.download.download_movielens` (``base_url``, ``sha256``).

    Returns:
      The folder with the extracted files.
    """
    return download_movielens(variant, cache_dir, **kwargs)
