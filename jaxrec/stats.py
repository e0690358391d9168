"""Significance tests and intervals for comparing recommenders user by user and across seeds.

* `paired_tests`: paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon
  signed-rank test (``scipy.stats.wilcoxon``, zero differences dropped, exact
  or normal approximation as scipy chooses), two-sided, over the users both
  systems were evaluated on.
* `holm`: Holm (1979) step-down adjustment of a family of p-values (controls
  the family-wise error rate without assuming independence).
* `bootstrap_ci`: percentile bootstrap interval of a mean (``scipy.stats.bootstrap``).
* `significance_marker`: ``*``, ``**``, ``***`` for p below 0.05, 0.01, 0.001.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class PairedResult:
    """Two paired samples ``a``, ``b`` (one value per user) compared.

    Attributes:
      n: number of pairs.
      mean_diff: ``mean(a - b)``.
      t_statistic, t_pvalue: paired t-test (two-sided); p = 1 when every
        difference is 0, NaN when ``n < 2``.
      wilcoxon_statistic, wilcoxon_pvalue: Wilcoxon signed-rank test
        (two-sided, zero differences dropped); p = 1 when every difference is 0.
    """

    n: int
    mean_diff: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float


def paired_tests(a: np.ndarray, b: np.ndarray) -> PairedResult:
    """Paired t-test and Wilcoxon signed-rank test of ``a`` against ``b`` (same users, same order).

    Raises:
      ValueError: ``a`` and ``b`` differ in length, or hold NaN.
    """
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_tests: samples of shapes {a.shape} and {b.shape}; expected "
                         "two vectors of the same length")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired_tests: NaN in the per-user values")
    d = a - b
    n = len(d)
    nan = float("nan")
    if n < 2:
        return PairedResult(n, float(d.mean()) if n else nan, nan, nan, nan, nan)
    if not d.any():
        return PairedResult(n, 0.0, 0.0, 1.0, 0.0, 1.0)
    if (d == d[0]).all():  # constant non-zero difference: zero variance, t is infinite
        t_stat, t_p = math.copysign(math.inf, d[0]), 0.0
    else:
        t = stats.ttest_rel(a, b)
        t_stat, t_p = float(t.statistic), float(t.pvalue)
    w = stats.wilcoxon(a, b)
    return PairedResult(n, float(d.mean()), t_stat, t_p, float(w.statistic), float(w.pvalue))


def holm(pvalues: np.ndarray | list[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input order; NaN stays NaN and is not counted.

    With the ``m`` finite p-values sorted ascending, ``p_(1) <= ... <= p_(m)``::

        adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))
    """
    p = np.asarray(pvalues, np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def bootstrap_ci(x: np.ndarray, *, level: float = 0.95, n_resamples: int = 10_000,
                 seed: int = 0, chunk: int = 500) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(x)`` (``scipy.stats.bootstrap``).

    Returns ``(low, high)``; ``(x[0], x[0])`` when every value is the same (one value
    included), NaNs for none. Resampling runs in batches of ``chunk`` resamples to bound
    memory.
    """
    from scipy import stats

    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    ci = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=level,
                         method="percentile", batch=chunk, vectorized=True,
                         rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def significance_marker(p: float) -> str:
    """``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, else empty (NaN: empty)."""
    if not p < 0.05:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*"
