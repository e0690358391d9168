"""What a model may read when it scores the test part: ``eval.test_input``.

The next-item protocol (SASRec, Kang and McAuley 2018; BERT4Rec; gSASRec) trains
on ``seq[:-2]``, validates on ``seq[-2]`` from ``seq[:-2]`` and tests on
``seq[-1]`` from ``seq[:-1]``: the test prediction reads the whole sequence before
the test item, the validation item included. Every model compared on the split may
use the validation interactions for test: they are in the test ranking's exclusion
mask (``eval.mask=train_valid``), and a model that reads a history at scoring time
(`jaxrec.models.base.HistoryInput`: SASRec's sequence, EASE's and Mult-VAE's rows,
SVD++'s ``N(u)``) reads train + valid. Parameters are never refitted: only the
per-user input changes. Models that score from parameters only (MF, NCF, ...) are
unaffected beyond the mask.

``eval.test_input``:

``auto`` (default)
    ``train_valid`` on a time-ordered split with a validation part
    (`TIME_ORDERED_SPLITS`: valid precedes test in time) when the test ranking
    masks valid (``eval.mask=train_valid``); ``train`` otherwise. Random splits keep
    ``train``: valid and test are exchangeable draws there, and published
    random-split protocols (RecBole, LightGCN) score test from the training history.
``train`` / ``train_valid``
    forced (e.g. ``train_valid`` for a ``predefined`` split whose validation rows are
    each user's latest training row, which ``auto`` cannot know is time-ordered).

Not rebuilt: LightGCN's propagation graph and the content models' feature profiles
(built from train; they are parameters of the graph / features, not a history input).

The strong protocol scores held-out users from their fold-in history and ignores
this key (``fold_in``). ``results.json`` states the resolved value as
``protocol_details.test_input``.

**Request context.** A model with context fields (``model.context``;
`jaxrec.models.base.ContextInput`) scores each split in the context of the user's
request: the first held-out interaction of that split (its hour, weekday, extra
columns such as device; the gap since the last interaction the split is scored from:
train for valid, what ``test_input`` says for test). The time and device of a request
are known when recommending; no held-out item is revealed. Each evaluator gets its
split's request table (:func:`attach_inputs`).
"""

from __future__ import annotations

from typing import Any

import jax

TEST_INPUTS = ("auto", "train", "train_valid")
TIME_ORDERED_SPLITS = ("leave_last", "temporal")
"""Split methods whose validation part precedes the test part in time."""


def resolve_test_input(eval_cfg: Any, split_cfg: Any = None) -> str:
    """``train_valid``, ``train`` or (strong protocol) ``fold_in``: what test is scored from.

    Args:
      eval_cfg: the ``eval`` section (`jaxrec.config.EvalConfig`).
      split_cfg: the resolved ``data.split`` (`jaxrec.config.SplitConfig`), or None
        (unknown split: ``auto`` is ``train``).
    """
    choice = eval_cfg.test_input
    if choice not in TEST_INPUTS:
        raise ValueError(f"eval.test_input={choice!r} is not one of {', '.join(TEST_INPUTS)}")
    if eval_cfg.protocol == "strong":
        return "fold_in"
    if split_cfg is not None and not split_cfg.valid:
        return "train"  # no validation part to read
    if choice != "auto":
        return choice
    time_ordered = split_cfg is not None and split_cfg.method in TIME_ORDERED_SPLITS
    return "train_valid" if time_ordered and eval_cfg.mask == "train_valid" else "train"


def input_tables(model: Any, dataset: Any, eval_cfg: Any) -> dict[str, jax.Array] | None:
    """The test-time input tables of ``model`` (device arrays), or None when test is scored
    from what the model was built with (``train``, or a model that reads no history)."""
    from jaxrec.models.base import HistoryInput

    if (resolve_test_input(eval_cfg, dataset.split) != "train_valid" or not dataset.has_valid
            or not isinstance(model, HistoryInput)):
        return None
    known = dataset.train.concat(dataset.valid)
    return {name: jax.device_put(value) for name, value in model.history_tables(known).items()}


def request_inputs(model: Any, dataset: Any, eval_cfg: Any) -> tuple[dict, dict]:
    """``(valid tables, test tables)``: the request-context tables of a model with context
    fields (device arrays; module docstring), ``({}, {})`` for any other model."""
    from jaxrec.models.base import uses_context

    test_input = resolve_test_input(eval_cfg, dataset.split)
    if not uses_context(model) or test_input == "fold_in":
        return {}, {}
    train, put = dataset.train, lambda t: {k: jax.device_put(v) for k, v in t.items()}
    valid = put(model.request_tables(train, dataset.valid)) if dataset.has_valid else {}
    known = train.concat(dataset.valid) if test_input == "train_valid" else train
    return valid, put(model.request_tables(known, dataset.test))


def attach_inputs(valid_evals: list, test_evals: list, model: Any, dataset: Any,
                  eval_cfg: Any) -> None:
    """Give each evaluator the model input tables of its split: the test evaluators the
    train + valid histories when the protocol says so, each split its request context
    (`jaxrec.metrics.scoring.scoring_state` swaps them in at scoring time)."""
    attach_test_inputs(test_evals, model, dataset, eval_cfg)
    attach_requests(valid_evals, test_evals, model, dataset, eval_cfg)


def attach_requests(valid_evals: list, test_evals: list, model: Any, dataset: Any,
                    eval_cfg: Any) -> None:
    """Add each split's request-context tables (:func:`request_inputs`) to its evaluators'
    ``input_tables``; nothing for a model without context fields."""
    for evaluators, tables in zip((valid_evals, test_evals),
                                  request_inputs(model, dataset, eval_cfg), strict=True):
        for ev in evaluators if tables else ():
            ev.input_tables = {**(getattr(ev, "input_tables", None) or {}), **tables}


def attach_test_inputs(test_evals: list, model: Any, dataset: Any, eval_cfg: Any) -> None:
    """Give each test evaluator the model's train + valid input tables when the protocol
    says so (`jaxrec.metrics.scoring.scoring_state` swaps them in at scoring time)."""
    tables = input_tables(model, dataset, eval_cfg)
    for ev in test_evals:
        ev.input_tables = tables
        if hasattr(ev, "attach"):  # the streaming evaluator reads the model's capabilities
            ev.attach(model)
