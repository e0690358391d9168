"""Field builders by kind: matrix (multi-hot / counts), bucket, numeric, text, categorical."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrec.data.features.bags import _Field
from jaxrec.data.interactions import DataError

_TOKEN = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset("the a an of and in on to for with at from by is".split())


def _pool(rows: list[list[tuple[str, float]]], pool: str, where: str):
    if pool == "sum":
        return rows
    if pool != "mean":
        raise DataError(f"{where}.pool={pool!r} must be mean or sum")
    out = []
    for tokens in rows:
        total = sum(abs(w) for _, w in tokens)
        out.append([(t, w / total) for t, w in tokens] if total > 0 else tokens)
    return out


def _matrix_field(name: str, matrix: np.ndarray, vocab: Sequence[str], *, tfidf: bool = False,
                  max_per_row: int = 32, min_count: int = 1, pool: str = "mean",
                  where: str) -> _Field:
    """A multi-hot / count matrix ``[R, C]`` -> the non-zero columns of each row."""
    m = np.asarray(matrix, np.float32)
    df = (m > 0).sum(0)
    keep_col = df >= min_count
    if tfidf:  # smoothed idf (scikit-learn's default): log((1 + R) / (1 + df)) + 1
        m = m * (np.log((1 + m.shape[0]) / (1 + df)) + 1.0)[None, :]
    rows = []
    for r in range(m.shape[0]):
        cols = np.flatnonzero((m[r] != 0) & keep_col)
        cols = cols[np.argsort(-m[r, cols], kind="stable")][:max_per_row]
        rows.append([(str(vocab[c]), float(m[r, c])) for c in sorted(cols)])
    return _Field(name, _pool(rows, pool, where))


def _bucket_field(name: str, values: np.ndarray, *, width: float | None = None,
                  bins: int = 10, unknown: float | None = 0, where: str) -> _Field:
    """Numbers -> one bucket id per row (fixed ``width`` or ``bins`` quantiles); unknown -> none."""
    v = np.asarray(values, np.float64)
    known = np.isfinite(v) & ((v != unknown) if unknown is not None else True)
    rows: list[list[tuple[str, float]]] = [[] for _ in range(len(v))]
    if not known.any():
        return _Field(name, rows)
    if width is not None:
        if not width > 0:
            raise DataError(f"{where}.width={width} must be > 0")
        bucket = np.floor(v / width) * width
        labels = [f"{b:g}" for b in bucket]
    else:
        edges = np.unique(np.quantile(v[known], np.linspace(0, 1, bins + 1)[1:-1]))
        bucket = np.searchsorted(edges, v, side="right")
        labels = [f"q{b}" for b in bucket]
    for r in np.flatnonzero(known):
        rows[r] = [(labels[r], 1.0)]
    return _Field(name, rows)


def _numeric_field(name: str, values: np.ndarray, *, where: str) -> _Field:
    v = np.asarray(values, np.float64)
    known = np.isfinite(v)
    mu, sd = (v[known].mean(), v[known].std()) if known.any() else (0.0, 1.0)
    sd = sd if sd > 0 else 1.0
    return _Field(name, [[("value", float((x - mu) / sd))] if ok else []
                         for x, ok in zip(v, known, strict=True)])


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, stopwords dropped."""
    return [t for t in _TOKEN.findall(str(text).lower()) if t not in _STOPWORDS]


def _text_field(name: str, texts: Sequence[str], *, max_tokens: int = 8, min_count: int = 2,
                max_vocab: int = 5000, pool: str = "mean", where: str) -> _Field:
    tokens = [tokenize(t)[:max_tokens] for t in texts]
    counts = Counter(t for toks in tokens for t in set(toks))
    kept = {t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
            if c >= min_count}
    rows = [[(t, 1.0) for t in dict.fromkeys(toks) if t in kept] for toks in tokens]
    return _Field(name, _pool(rows, pool, where))


def _categorical_field(name: str, values: Sequence[Any], *, sep: str | None = None) -> _Field:
    rows = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            rows.append([])
        elif sep is None:
            rows.append([(str(v).strip(), 1.0)])
        else:
            parts = list(dict.fromkeys(p.strip() for p in str(v).split(sep) if p.strip()))
            rows.append([(p, 1.0 / len(parts)) for p in parts])
    return _Field(name, rows)


def _options(name: str, opts: Any, allowed: Sequence[str], where: str) -> dict:
    if opts is None:
        return {}
    if not isinstance(opts, Mapping):
        raise DataError(f"{where}: options must be a mapping, got {opts!r}")
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise DataError(f"{where}: unknown option {unknown[0]!r} (valid: {', '.join(allowed)})")
    return dict(opts)

