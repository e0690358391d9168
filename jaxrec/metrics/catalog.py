"""Every name ``eval.metrics`` accepts, and the computation of a metric set from top-k lists.

Three kinds of metric:

* accuracy, per user, from the relevance of the ranked items:
  `jaxrec.metrics.ranking.RANKING_METRICS` plus ``recall_min``
  (Recall normalised by ``min(k, R)``, the Mult-VAE definition);
* beyond accuracy, per user, from the recommended items themselves:
  ``avg_popularity``, ``novelty``, ``ild`` (`jaxrec.metrics.beyond`);
* beyond accuracy, over all evaluated users' lists together: ``coverage``,
  ``gini`` (from the item exposure counts).

Every metric states its direction where it is defined (``HIGHER_IS_BETTER`` of
`jaxrec.metrics.ranking`, `jaxrec.metrics.beyond` and `jaxrec.metrics.rating`,
plus ``recall_min`` and the training ``loss`` here); `higher_is_better` reads
it from a key such as ``valid/ndcg@10``, for early stopping, sweeps and
``jaxrec compare``.

A `MetricSet` turns one block of top-k lists into per-user values (for the
first two kinds) and exposure counts (for the third), all in ``jnp`` inside the
evaluator's jit. Keys are ``split/name@k``, metric-major in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics import beyond, ranking, rating
from jaxrec.metrics.ranking import RANKING_METRICS, _safe_div, _top, metric_key


def recall_min(hits_UxK: jax.Array, num_relevant_U: jax.Array, k: int) -> jax.Array:
    """Recall@k normalised by ``min(k, R)``: ``sum_{i<=k} h_i / min(k, R)`` (Mult-VAE, 2018).

    Unlike `recall`, it reaches 1 whenever the top k is all relevant, even with
    ``R > k``. Arguments as in `jaxrec.metrics.ranking.recall`; 0 where ``R == 0``.
    """
    return _safe_div(_top(hits_UxK, k).sum(-1), jnp.clip(num_relevant_U, 0, k))


ACCURACY_METRICS = {**RANKING_METRICS, "recall_min": recall_min}
"""Per-user accuracy metrics: name -> ``fn(hits_UxK, num_relevant_U, k) -> [U]``."""

LIST_METRICS = {"avg_popularity": beyond.avg_popularity, "novelty": beyond.novelty,
                "ild": beyond.intra_list_diversity}
"""Per-user beyond-accuracy metrics: name -> ``fn(items_UxK, valid_UxK, k, ctx) -> [U]``."""

AGGREGATE_METRICS = {"coverage": beyond.coverage, "gini": beyond.gini}
"""Metrics of all lists together: name -> ``fn(exposure_N) -> scalar``."""

ALL_METRICS = (*ACCURACY_METRICS, *LIST_METRICS, *AGGREGATE_METRICS)

HIGHER_IS_BETTER: dict[str, bool] = {
    **ranking.HIGHER_IS_BETTER, "recall_min": True, **beyond.HIGHER_IS_BETTER,
    **rating.HIGHER_IS_BETTER,
    "loss": False,  # ``train/loss``: the objective every loss minimises
}
"""Every metric name -> whether a higher value is better (the one table of directions)."""


def higher_is_better(key: str) -> bool:
    """Whether a higher value of the metric under ``key`` is better.

    Args:
      key: a metric key ``split[/slice]/name[@k]``: ``valid/ndcg@10``,
        ``test/cold_item/recall@20``, ``valid/rmse``, ``train/loss`` (a bare
        ``ndcg@10`` too). Cut-off metrics (`ALL_METRICS`) need ``@k``; ``rmse``,
        ``mae`` and ``loss`` take none.

    Raises:
      ValueError: one line naming ``key``, for an unknown metric or a bad cut-off.
    """
    name, at, k = str(key).rsplit("/", 1)[-1].partition("@")
    if name not in HIGHER_IS_BETTER:
        raise ValueError(f"metric key {key!r}: unknown metric {name!r} (known: "
                         f"{', '.join(sorted(HIGHER_IS_BETTER))})")
    ranked = name in ALL_METRICS
    if ranked and not (at and k.isdigit() and int(k) >= 1):
        raise ValueError(f"metric key {key!r}: {name} needs a positive cut-off, e.g. {name}@10")
    if not ranked and at:
        raise ValueError(f"metric key {key!r}: {name} has no cut-off (use {name})")
    return HIGHER_IS_BETTER[name]


def check_metrics(metrics: Sequence[str], ks: Sequence[int]) -> None:
    """Raise a one-line ``ValueError`` for an unknown metric name or a bad cut-off."""
    for name in metrics:
        if name not in ALL_METRICS:
            raise ValueError(f"eval.metrics: unknown metric {name!r}; choose from "
                             f"{sorted(ALL_METRICS)}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"eval.ks: cut-off {k!r} must be a positive int")


class MetricSet:
    """The requested metrics at the requested cut-offs, and what they need.

    Args:
      split: key prefix (``valid``, ``test``).
      metrics: names from `ALL_METRICS`.
      ks: cut-offs.
      num_items: catalogue size ``N`` (for coverage and Gini).
      train: the training interactions, source of item popularity for
        ``avg_popularity`` and ``novelty`` (needed only for those).
      item_features: float ``[N, G]`` item vectors for ``ild`` (e.g. genres).

    Attributes:
      keys: every key, metric-major: ``split/name@k``.
      user_keys: the keys with a value per user (accuracy and list metrics).
      aggregate_keys: the keys of whole-list-set metrics (coverage, gini).
      ctx: device arrays the list metrics read (popularity, self-information,
        unit feature vectors); pass it into the jitted function.
    """

    def __init__(self, split: str, metrics: Sequence[str], ks: Sequence[int], *, num_items: int,
                 train=None, item_features: np.ndarray | None = None):
        metrics = list(metrics)
        ks = [int(k) if isinstance(k, np.integer) else k for k in ks]
        check_metrics(metrics, ks)
        if not ks or not metrics:
            raise ValueError(f"eval: ks={ks} and metrics={metrics} must both be non-empty")
        self.split, self.metrics, self.ks, self.num_items = split, metrics, ks, num_items
        self.keys = [f"{split}/{metric_key(m, k)}" for m in metrics for k in ks]
        self.user_keys = [f"{split}/{metric_key(m, k)}" for m in metrics for k in ks
                          if m not in AGGREGATE_METRICS]
        self.aggregate_keys = [f"{split}/{metric_key(m, k)}" for m in metrics for k in ks
                               if m in AGGREGATE_METRICS]
        self._aggregate = [(m, k) for m in metrics for k in ks if m in AGGREGATE_METRICS]
        self.exposure_ks = sorted({k for _, k in self._aggregate})

        ctx: dict[str, np.ndarray] = {}
        if {"avg_popularity", "novelty"} & set(metrics):
            if train is None:
                raise ValueError(f"{split}: avg_popularity / novelty need the training "
                                 "interactions for item popularity")
            users_N, num_train_users = beyond.item_user_counts(train)
            ctx["popularity_N"] = users_N.astype(np.float32)
            ctx["self_info_N"] = beyond.self_information(users_N, num_train_users)
        if "ild" in metrics:
            if item_features is None:
                raise ValueError(f"{split}: eval.metrics has ild but the data has no item "
                                 "features named by eval.diversity_feature")
            feats = np.asarray(item_features, np.float32).reshape(num_items, -1)
            ctx["unit_features_NxG"] = beyond.unit_rows(feats)
        self.ctx = jax.device_put(ctx)

    def per_user(self, hits_UxK: jax.Array, num_relevant_U: jax.Array, items_UxK: jax.Array,
                 valid_UxK: jax.Array, ctx: dict[str, jax.Array]) -> jax.Array:
        """float32 ``[len(user_keys), U]`` values of one block of lists.

        Args:
          hits_UxK: relevance of the ranked items.
          num_relevant_U: relevant items per user.
          items_UxK: int32 item indices of the ranked lists.
          valid_UxK: bool, False for list entries that are not real
            recommendations (excluded or padded candidates at the tail).
          ctx: `ctx`, passed through the jit.
        """
        rows = []
        for m in self.metrics:
            for k in self.ks:
                if m in ACCURACY_METRICS:
                    rows.append(ACCURACY_METRICS[m](hits_UxK, num_relevant_U, k))
                elif m in LIST_METRICS:
                    rows.append(LIST_METRICS[m](items_UxK, valid_UxK, k, ctx))
        if not rows:
            return jnp.zeros((0, hits_UxK.shape[0]), jnp.float32)
        return jnp.stack(rows).astype(jnp.float32)

    def exposure(self, items_UxK: jax.Array, weight_UxK: jax.Array) -> jax.Array:
        """float32 ``[len(exposure_ks), N]``: how many of the lists recommend each item, per k.

        ``weight_UxK`` (bool) is True for a real recommendation of an evaluated user.
        """
        rows = [beyond.exposure_counts(items_UxK, beyond.top_mask(weight_UxK, k), self.num_items)
                for k in self.exposure_ks]
        if not rows:
            return jnp.zeros((0, self.num_items), jnp.float32)
        return jnp.stack(rows)

    def aggregates(self, exposure_AxN: jax.Array) -> jax.Array:
        """float32 ``[len(aggregate_keys)]`` from the exposure counts summed over all blocks."""
        values = [AGGREGATE_METRICS[m](exposure_AxN[self.exposure_ks.index(k)])
                  for m, k in self._aggregate]
        return jnp.stack(values) if values else jnp.zeros((0,), jnp.float32)
