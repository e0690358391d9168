"""Per-user ranking and rating metrics, and the on-device evaluators."""

from jaxrec.metrics.evaluator import (
    Evaluator,
    RankingEvaluator,
    RatingEvaluator,
    make_evaluators,
)
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

__all__ = [
    "RANKING_METRICS",
    "Evaluator",
    "RankingEvaluator",
    "RatingEvaluator",
    "absolute_error",
    "average_precision",
    "check_ranking_metrics",
    "hit",
    "mae",
    "make_evaluators",
    "metric_key",
    "mrr",
    "ndcg",
    "precision",
    "ranking_metrics",
    "recall",
    "rmse",
    "squared_error",
]
