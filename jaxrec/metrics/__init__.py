"""Per-user ranking and rating metrics, and the on-device evaluators."""

from jaxrec.metrics.catalog import ALL_METRICS, MetricSet, recall_min
from jaxrec.metrics.evaluator import (
    Evaluator,
    ListEvaluator,
    RankingEvaluator,
    RatingEvaluator,
    make_evaluators,
)
from jaxrec.metrics.protocols import PROTOCOLS, build_evaluators, describe
from jaxrec.metrics.ranking import (
    RANKING_METRICS,
    average_precision,
    check_ranking_metrics,
    hit,
    metric_key,
    mrr,
    ndcg,
    precision,
    ranking_metrics,
    recall,
)
from jaxrec.metrics.rating import absolute_error, mae, rmse, squared_error
from jaxrec.metrics.sampled import SampledRankingEvaluator

__all__ = [
    "ALL_METRICS",
    "PROTOCOLS",
    "RANKING_METRICS",
    "Evaluator",
    "ListEvaluator",
    "MetricSet",
    "RankingEvaluator",
    "RatingEvaluator",
    "SampledRankingEvaluator",
    "absolute_error",
    "average_precision",
    "build_evaluators",
    "check_ranking_metrics",
    "describe",
    "hit",
    "mae",
    "make_evaluators",
    "metric_key",
    "mrr",
    "ndcg",
    "precision",
    "ranking_metrics",
    "recall",
    "recall_min",
    "rmse",
    "squared_error",
]


def higher_is_better(key: str) -> bool:  # TEMPORARY until the metric catalogue states it
    return key.split("/")[-1].split("@")[0] not in ("rmse", "mae", "loss")
