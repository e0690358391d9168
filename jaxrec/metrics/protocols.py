"""Evaluation protocols: which evaluators a run gets, and how its results name the protocol.

``eval.protocol`` selects one of:

``full_ranking`` (default)
    every item ranked for every user, seen items masked
    (`jaxrec.metrics.evaluator.RankingEvaluator`).
``sampled``
    each user's held-out items ranked among ``eval.num_negatives`` fixed
    negatives (the NCF protocol; `jaxrec.metrics.sampled`). Negatives are drawn
    once from the seed and saved in the run dir as ``negatives_valid.parquet``
    / ``negatives_test.parquet``, or the test ones are read from
    ``eval.negatives_file``.
``strong``
    held-out users scored from a fold-in history (the Mult-VAE protocol;
    `jaxrec.metrics.strong`); needs ``data.split.method=strong``.
``streaming``
    the test period replayed in time order, each event ranked from the user's
    history up to it (`jaxrec.metrics.streaming`); validation is full ranking.

``results.json`` carries ``"protocol": <name>`` and ``"protocol_details"``
(`describe`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxrec.config import EvalConfig, SplitConfig
from jaxrec.data.pipeline import EVAL_MASKS
from jaxrec.metrics.evaluator import (
    Evaluator,
    RatingEvaluator,
    list_metric_inputs,
    make_evaluators,
    share_layout,
)
from jaxrec.metrics.inputs import resolve_test_input

PROTOCOLS = ("full_ranking", "sampled", "strong", "streaming")


def check_protocol(eval_cfg: EvalConfig, split_cfg: SplitConfig | None = None,
                   model: Any = None) -> None:
    """One-line ``ValueError`` for a protocol the config, split or model cannot run."""
    if eval_cfg.protocol not in PROTOCOLS:
        raise ValueError(f"eval.protocol={eval_cfg.protocol!r} is not one of "
                         f"{', '.join(PROTOCOLS)}")
    if eval_cfg.protocol == "sampled" and (isinstance(eval_cfg.num_negatives, bool)
                                           or eval_cfg.num_negatives < 1):
        raise ValueError(f"eval.num_negatives={eval_cfg.num_negatives} must be >= 1")
    if eval_cfg.mask not in EVAL_MASKS:
        raise ValueError(f"eval.mask={eval_cfg.mask!r} is not one of {', '.join(EVAL_MASKS)}")
    resolve_test_input(eval_cfg, split_cfg)  # a bad eval.test_input: one line
    if split_cfg is not None:
        strong_split = split_cfg.method == "strong"
        if strong_split != (eval_cfg.protocol == "strong"):
            raise ValueError(f"data.split.method={split_cfg.method} with "
                             f"eval.protocol={eval_cfg.protocol}: the strong split (held-out "
                             "users) and eval.protocol=strong go together")
    if model is not None and eval_cfg.protocol == "strong":
        from jaxrec.metrics.strong import check_fold_in_model

        check_fold_in_model(model)
    if eval_cfg.protocol == "streaming":
        from jaxrec.metrics.streaming import check_streaming, resolve_fold_in

        check_streaming(eval_cfg, split_cfg)
        if model is not None:
            resolve_fold_in(model, eval_cfg.fold_in)


def build_evaluators(dataset: Any, eval_cfg: EvalConfig, *, seed: int,
                     run_dir: str | Path | None = None
                     ) -> tuple[list[Evaluator], list[Evaluator]]:
    """``(valid_evaluators, test_evaluators)`` of a dataset under ``eval_cfg.protocol``.

    Args:
      dataset: a `jaxrec.data.pipeline.Dataset`; its ``split`` is checked against
        the protocol and its ``eval_parts()`` are the evaluated targets.
      eval_cfg: the ``eval`` section.
      seed: the run's seed (draws the sampled protocol's negatives).
      run_dir: where the sampled protocol saves ``negatives_<split>.parquet``.

    The valid list is empty when the dataset has no validation part.
    """
    check_protocol(eval_cfg, dataset.split)
    explicit = not dataset.info.implicit
    if eval_cfg.protocol == "strong":
        from jaxrec.metrics.strong import strong_evaluators

        valid, test = strong_evaluators(dataset, eval_cfg)
        share_layout(valid + test)
        return valid, test
    if eval_cfg.protocol == "streaming":
        return _streaming_evaluators(dataset, eval_cfg)
    out: dict[str, list[Evaluator]] = {"valid": [], "test": []}
    for name, target, exclude in dataset.eval_parts(eval_cfg.mask):
        if eval_cfg.protocol == "full_ranking":
            out[name] = make_evaluators(name, target, list(exclude), eval_cfg,
                                        explicit=explicit)
            continue
        if len(target) == 0:
            continue
        if eval_cfg.metrics and eval_cfg.ks:
            out[name].append(_sampled_evaluator(name, dataset, target, list(exclude), eval_cfg,
                                                seed=seed, run_dir=run_dir))
        if explicit and eval_cfg.rating_metrics:
            out[name].append(RatingEvaluator(name, target, batch=eval_cfg.rating_batch))
    share_layout(out["valid"] + out["test"])  # one program per kind for both splits
    return out["valid"], out["test"]


def _streaming_evaluators(dataset, eval_cfg):
    """Full-ranking validation; the test part replayed as a stream after train (+ valid)."""
    import dataclasses

    from jaxrec.metrics.streaming import StreamingEvaluator

    valid, test = [], []
    full = dataclasses.replace(eval_cfg, protocol="full_ranking")
    for name, target, exclude in dataset.eval_parts(eval_cfg.mask):
        if name == "valid":
            valid = make_evaluators(name, target, list(exclude), full,
                                    explicit=not dataset.info.implicit)
        elif eval_cfg.metrics and eval_cfg.ks:
            known = exclude[0]
            for other in exclude[1:]:
                known = known.concat(other)
            test = [StreamingEvaluator(target, known, ks=list(eval_cfg.ks),
                                       metrics=list(eval_cfg.metrics), windows=eval_cfg.windows,
                                       window_by=eval_cfg.window_by, block=eval_cfg.user_block,
                                       fold_in=eval_cfg.fold_in,
                                       sgd_steps=eval_cfg.sgd_steps, sgd_lr=eval_cfg.sgd_lr)]
    return valid, test


def _sampled_evaluator(name, dataset, target, exclude, eval_cfg, *, seed, run_dir):
    from jaxrec.metrics.sampled import (
        SampledRankingEvaluator,
        draw_negatives,
        evaluated_users,
        load_negatives,
        save_negatives,
    )

    users, relevant = evaluated_users(target, exclude)
    if len(users) == 0:
        raise ValueError(f"{name}: no user has a target item outside the excluded sets")
    if name == "test" and eval_cfg.negatives_file:
        negatives = load_negatives(eval_cfg.negatives_file, dataset.full, users, relevant,
                                   eval_cfg.num_negatives)
    else:
        negatives = draw_negatives(dataset.full, users, eval_cfg.num_negatives, seed=seed,
                                   split=name)
    if run_dir is not None:
        save_negatives(Path(run_dir) / f"negatives_{name}.parquet", dataset.full, users,
                       negatives)
    return SampledRankingEvaluator(name, target, exclude, negatives, ks=list(eval_cfg.ks),
                                   metrics=list(eval_cfg.metrics),
                                   user_block=eval_cfg.user_block,
                                   **list_metric_inputs(dataset.train, target, eval_cfg))


def describe(eval_cfg: EvalConfig, split_cfg: SplitConfig | None = None) -> dict[str, Any]:
    """The protocol details stored in ``results.json`` next to ``"protocol"``."""
    out: dict[str, Any] = {"name": eval_cfg.protocol, "ks": list(eval_cfg.ks),
                           "ties": "equal scores rank the lower item index first"}
    if eval_cfg.protocol == "full_ranking":
        out["candidates"] = ("all items; the user's train (and, for test, valid) items excluded"
                             if eval_cfg.mask == "train_valid" else
                             "all items; the user's train items excluded (eval.mask=train)")
    elif eval_cfg.protocol == "sampled":
        out["candidates"] = (f"the user's held-out items + {eval_cfg.num_negatives} fixed "
                             "negatives (never-interacted items)")
        out["negatives"] = {
            "valid": "negatives_valid.parquet (drawn once, seed stream [seed, 1])",
            "test": (f"{eval_cfg.negatives_file} (saved as negatives_test.parquet)"
                     if eval_cfg.negatives_file
                     else "negatives_test.parquet (drawn once, seed stream [seed, 2])")}
    elif eval_cfg.protocol == "streaming":
        out["candidates"] = ("all items; the items the user has seen so far excluded (train, "
                             "valid, earlier test events)")
        out["stream"] = {"order": "test events by time, then item index", "fold_in":
                         eval_cfg.fold_in, "windows": eval_cfg.windows,
                         "window_by": eval_cfg.window_by, "repeats": "revealed, not scored"}
    else:
        out["candidates"] = "all items; the held-out user's fold-in items excluded"
        if split_cfg is not None:
            out["fold_in"] = split_cfg.fold_in
            out["held_out_users"] = {"test": split_cfg.test, "valid": split_cfg.valid}
    out["test_input"] = {"train_valid": "train+valid", "train": "train",
                         "fold_in": "fold_in"}[resolve_test_input(eval_cfg, split_cfg)]
    if "recall_min" in eval_cfg.metrics:
        out["recall_min"] = "hits@k / min(k, held-out items)"
    return out
