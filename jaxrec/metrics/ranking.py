"""Per-user top-k ranking metrics in pure ``jnp``.

Every metric has the signature ``metric(hits_UxK, num_relevant_U, k) -> [U]``:

* ``hits_UxK``: bool or float ``[U, K]``; ``hits_UxK[u, i]`` says whether the
  item at rank ``i`` (0-based) of user ``u``'s top-K list is relevant. ``K`` is
  the largest cut-off asked for; a metric at ``k <= K`` reads the first ``k``
  columns.
* ``num_relevant_U``: int ``[U]``, the number of relevant held-out items of the
  user (also those that did not make the top K).
* ``k``: static Python ``int``, ``1 <= k <= K``.

Relevance is binary. Users with ``num_relevant == 0`` get 0 from every metric;
the evaluator excludes them from means with a mask. Values are float32.

With ``h_i`` the hit at 1-based rank ``i`` and ``R`` the number of relevant items::

    recall@k    = sum_{i<=k} h_i / R
    precision@k = sum_{i<=k} h_i / k
    hit@k       = 1 if sum_{i<=k} h_i > 0 else 0
    ndcg@k      = DCG@k / IDCG@k,  DCG@k = sum_{i<=k} h_i / log2(i + 1),
                  IDCG@k = sum_{i<=min(R, k)} 1 / log2(i + 1)
    mrr@k       = 1 / (rank of the first hit within k), 0 if none
    map@k       = (1 / min(R, k)) * sum_{i<=k} precision@i * h_i
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp

MetricFn = Callable[[jax.Array, jax.Array, int], jax.Array]


def _top(hits_UxK: jax.Array, k: int) -> jax.Array:
    if not 1 <= k <= hits_UxK.shape[-1]:
        raise ValueError(f"cut-off k={k} must be in [1, {hits_UxK.shape[-1]}] (the top-K width)")
    return hits_UxK[:, :k].astype(jnp.float32)


def _safe_div(num_U: jax.Array, den_U: jax.Array) -> jax.Array:
    """``num / den`` where ``den > 0``, else 0 (users without relevant items)."""
    den_U = den_U.astype(jnp.float32)
    return jnp.where(den_U > 0, num_U / jnp.maximum(den_U, 1.0), 0.0)


def recall(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """Recall@k ``= sum_{i<=k} h_i / R``: share of the relevant items found in the top k.

    Args:
      hits_UxK: bool/float ``[U, K]`` relevance of each ranked item.
      num_relevant_U: int ``[U]`` number of relevant items ``R`` of each user.
      k: static cut-off, ``1 <= k <= K``.

    Returns:
      float32 ``[U]``; 0 where ``R == 0``.
    """
    return _safe_div(_top(hits_UxK, k).sum(-1), num_relevant_U)


def precision(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """Precision@k ``= sum_{i<=k} h_i / k``; 0 where ``R == 0``. Arguments as in `recall`."""
    prec_U = _top(hits_UxK, k).sum(-1) / k
    return jnp.where(num_relevant_U > 0, prec_U, 0.0)


def hit(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """Hit rate@k: 1 if any of the top k items is relevant, else 0. Arguments as in `recall`."""
    any_U = _top(hits_UxK, k).max(-1)
    return jnp.where(num_relevant_U > 0, any_U, 0.0)


def _discounts(k: int) -> jax.Array:
    """``1 / log2(i + 1)`` for 1-based ranks ``i = 1..k``, float32 ``[k]``."""
    return 1.0 / jnp.log2(jnp.arange(k, dtype=jnp.float32) + 2.0)


def ndcg(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """NDCG@k with binary relevance (Jarvelin & Kekalainen, 2002).

    ``DCG@k = sum_{i<=k} h_i / log2(i + 1)``, normalised by the ideal
    ``IDCG@k = sum_{i<=min(R, k)} 1 / log2(i + 1)`` of a list with all ``R``
    relevant items on top. Arguments as in `recall`; 0 where ``R == 0``.
    """
    disc_K = _discounts(k)
    dcg_U = _top(hits_UxK, k) @ disc_K
    # ideal_K[j] = IDCG of a list with j + 1 relevant items on top.
    ideal_K = jnp.cumsum(disc_K)
    n_ideal_U = jnp.clip(num_relevant_U, 0, k)
    idcg_U = jnp.where(n_ideal_U > 0, ideal_K[jnp.maximum(n_ideal_U - 1, 0)], 0.0)
    return _safe_div(dcg_U, idcg_U)


def mrr(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """Reciprocal rank@k: ``1 / i`` for the 1-based rank ``i`` of the first hit within k, else 0.

    Arguments as in `recall`.
    """
    top_Uxk = _top(hits_UxK, k)
    first_U = jnp.argmax(top_Uxk > 0, axis=-1)  # first hit, 0 when there is none
    rr_U = jnp.where(top_Uxk.max(-1) > 0, 1.0 / (first_U + 1.0), 0.0)
    return jnp.where(num_relevant_U > 0, rr_U, 0.0)


def average_precision(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """AP@k ``= sum_{i<=k} precision@i * h_i / min(R, k)``; its user mean is MAP@k.

    Arguments as in `recall`; 0 where ``R == 0``.
    """
    top_Uxk = _top(hits_UxK, k)
    prec_at_Uxk = jnp.cumsum(top_Uxk, axis=-1) / jnp.arange(1, k + 1, dtype=jnp.float32)[None, :]
    return _safe_div((prec_at_Uxk * top_Uxk).sum(-1), jnp.clip(num_relevant_U, 0, k))


RANKING_METRICS: dict[str, MetricFn] = {
    "recall": recall,
    "precision": precision,
    "hit": hit,
    "ndcg": ndcg,
    "mrr": mrr,
    "map": average_precision,
}
"""Metric name (as in ``eval.metrics``) -> per-user function."""

HIGHER_IS_BETTER: dict[str, bool] = dict.fromkeys(RANKING_METRICS, True)
"""Direction of each ranking metric: more relevant items ranked higher is better."""


def metric_key(name: str, k: int) -> str:
    """The name a metric reports itself under, e.g. ``metric_key("ndcg", 10) == "ndcg@10"``."""
    return f"{name}@{k}"


def check_ranking_metrics(metrics: Iterable[str], ks: Iterable[int]) -> None:
    """Raise a one-line ``ValueError`` for an unknown metric name or a non-positive cut-off."""
    for name in metrics:
        if name not in RANKING_METRICS:
            raise ValueError(f"eval.metrics: unknown ranking metric {name!r}; "
                             f"choose from {sorted(RANKING_METRICS)}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"eval.ks: cut-off {k!r} must be a positive int")


def ranking_metrics(hits_UxK: jax.Array, num_relevant_U: jax.Array, metrics: Iterable[str],
                    ks: Iterable[int]) -> dict[str, jax.Array]:
    """All requested metrics at all cut-offs: ``{"ndcg@10": [U], ...}``, metric-major order.

    Args:
      hits_UxK: bool/float ``[U, K]`` relevance of the ranked items, ``K >= max(ks)``.
      num_relevant_U: int ``[U]`` number of relevant items of each user.
      metrics: names from `RANKING_METRICS`.
      ks: static cut-offs.
    """
    ks = list(ks)
    return {metric_key(name, k): RANKING_METRICS[name](hits_UxK, num_relevant_U, k)
            for name in metrics for k in ks}
