"""Per-user ranking and rating metrics, and the on-device evaluators."""

from jaxrec.metrics.catalog import (
    ALL_METRICS,
    HIGHER_IS_BETTER,
    MetricSet,
    higher_is_better,
    recall_min,
)
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
from jaxrec.metrics.streaming import StreamingEvaluator

__all__ = [
    "ALL_METRICS",
    "HIGHER_IS_BETTER",
    "PROTOCOLS",
    "RANKING_METRICS",
    "Evaluator",
    "ListEvaluator",
    "MetricSet",
    "RankingEvaluator",
    "RatingEvaluator",
    "SampledRankingEvaluator",
    "StreamingEvaluator",
    "absolute_error",
    "average_precision",
    "build_evaluators",
    "check_ranking_metrics",
    "describe",
    "higher_is_better",
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

