"""Strong generalisation (Liang et al. 2018, Mult-VAE): evaluate users never seen in training.

The split (``data.split.method=strong``, `jaxrec.data.splits.strong_split`)
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


def strong_evaluators(dataset: Any, split_cfg: Any, eval_cfg: Any
                      ) -> tuple[list[RankingEvaluator], list[RankingEvaluator]]:
    """``(valid, test)`` fold-in evaluators of a strong-generalisation dataset.

    Args:
      dataset: a `jaxrec.data.pipeline.Dataset` split with ``method=strong``.
      split_cfg: the `jaxrec.config.SplitConfig` it was split with; the fold-in
        parts are recomputed from ``dataset.full`` and checked against the
        dataset's valid and test parts.
      eval_cfg: ks, metrics, user_block, diversity_feature.

    Rating metrics are not computed (held-out users have no trained parameters).
    """
    from jaxrec.data.splits import strong_split

    if split_cfg.method != "strong":
        raise ValueError(f"eval.protocol=strong needs data.split.method=strong, got "
                         f"{split_cfg.method!r}")
    parts = strong_split(dataset.full, split_cfg)
    for name in ("valid", "test"):
        mine = getattr(dataset, name)
        if (0 if mine is None else len(mine)) != len(parts[name]):
            raise ValueError(f"eval.protocol=strong: data.split does not reproduce the dataset's "
                             f"{name} part ({len(parts[name])} vs "
                             f"{0 if mine is None else len(mine)} rows)")
    out = []
    for name in ("valid", "test"):
        target = parts[name]
        if len(target) == 0 or not (eval_cfg.metrics and eval_cfg.ks):
            out.append([])
            continue
        extra = list_metric_inputs(dataset.train, target, eval_cfg)
        out.append([RankingEvaluator(name, target, [], ks=list(eval_cfg.ks),
                                     metrics=list(eval_cfg.metrics),
                                     user_block=eval_cfg.user_block,
                                     fold_in=parts[f"{name}_fold_in"], **extra)])
    return out[0], out[1]
