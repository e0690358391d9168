"""Data layer: loaders, preprocessing, splits and the config-driven pipeline.

Typical use::

    from jaxrec.data import build_dataset
    ds = build_dataset(cfg.data)          # ds.train / ds.valid / ds.test / ds.info

The download helpers live in :mod:`jaxrec.data.download` (``download_movielens``)
and :mod:`jaxrec.data.summary` (``download`` for the CLI).
"""

from jaxrec.data.datasets import load_movielens, make_synthetic
from jaxrec.data.interactions import DataError, Interactions
from jaxrec.data.pipeline import (
    Dataset,
    EvalPart,
    build_dataset,
    load_and_split,
    load_dataset,
    split_config,
)
from jaxrec.data.preprocess import preprocess
from jaxrec.data.splits import split, split_parts
from jaxrec.data.summary import summarize

__all__ = [
    "DataError",
    "Dataset",
    "EvalPart",
    "Interactions",
    "build_dataset",
    "load_and_split",
    "load_dataset",
    "load_movielens",
    "make_synthetic",
    "preprocess",
    "split",
    "split_config",
    "split_parts",
    "summarize",
]
