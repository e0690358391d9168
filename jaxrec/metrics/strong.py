"""Strong generalisation (Liang et al. 2018, Mult-VAE): evaluate users never seen in training.

The split (``data.split.method=strong``, `jaxrec.data.splits.split_parts`)
holds out whole users: the model trains on the other users only. At
evaluation, each held-out user's fold-in history (``data.split.fold_in``, 80%
of their interactions) is given to the model, which must score all items from
it; the other 20% are the relevant items. Fold-in items are excluded from the
ranking. The paper reports Recall@20, Recall@50 with Recall normalised by
``min(k, R)`` (``recall_min`` here) and NDCG@100; ``configs/eval/strong.yaml``
selects them.

Model interface
---------------

A model evaluated under this protocol implements::

    def score_history(self, history_UxN: jax.Array) -> jax.Array:
        '''float32 [U, N] 0/1 fold-in matrix -> float [U, N] scores of every item.'''

It must be pure and jittable, and must not read per-user parameters (the
users are new). Item-based models provide it directly: EASE scores
``history_UxN @ B``, an item-kNN model ``history_UxN @ S``, Mult-VAE/DAE
encode the normalised history and decode it; popularity ignores the history.
MF-style models with per-user embeddings do not qualify (they would need a
fold-in optimisation of the user vector).
"""

from __future__ import annotations

from typing import Any

from jaxrec.metrics.evaluator import RankingEvaluator, list_metric_inputs
from jaxrec.models.base import FoldIn


def check_fold_in_model(model: Any) -> None:
    """Raise a one-line ``ValueError`` unless ``model`` has ``score_history`` (see module doc)."""
    if not isinstance(model, FoldIn):
        raise ValueError(f"eval.protocol=strong: {type(model).__name__} cannot fold in a new "
                         "user's history; it needs score_history(history_UxN) -> scores_UxN "
                         "(item-based models such as EASE)")


def strong_evaluators(dataset: Any, eval_cfg: Any
                      ) -> tuple[list[RankingEvaluator], list[RankingEvaluator]]:
    """``(valid, test)`` fold-in evaluators of a strong-generalisation dataset.

    Args:
      dataset: a `jaxrec.data.pipeline.Dataset` split with ``method=strong``; its
        ``fold_in`` histories (made by the split) are what the model scores from.
      eval_cfg: ks, metrics, user_block, diversity_feature.

    Rating metrics are not computed (held-out users have no trained parameters).
    """
    if dataset.split.method != "strong":
        raise ValueError(f"eval.protocol=strong needs data.split.method=strong, got "
                         f"{dataset.split.method!r}")
    out: dict[str, list[RankingEvaluator]] = {"valid": [], "test": []}
    if not (eval_cfg.metrics and eval_cfg.ks):
        return out["valid"], out["test"]
    for name, target, _ in dataset.eval_parts():
        if len(target) == 0:
            continue
        # the part's exclude is its fold-in history: fold_in= both feeds and masks it
        extra = list_metric_inputs(dataset.train, target, eval_cfg)
        out[name].append(RankingEvaluator(name, target, [], ks=list(eval_cfg.ks),
                                          metrics=list(eval_cfg.metrics),
                                          user_block=eval_cfg.user_block,
                                          fold_in=dataset.fold_in[name], **extra))
    return out["valid"], out["test"]
