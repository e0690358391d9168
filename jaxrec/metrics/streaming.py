"""Streaming evaluation (``eval.protocol=streaming``, ``eval=streaming``): replay the test
period in time order; at each event recommend to the acting user from everything seen so
far, then reveal the event.

The stream is the test part in time order (ties: item index, then row), after each user's
train + valid interactions (a time-ordered split: ``temporal`` or ``leave_last``). Event
``(u, i, t)`` is scored from ``u``'s history before it: ``i`` is ranked among the items
``u`` has not seen so far, and its 0-based rank ``r`` gives ``hit@k = [r < k]``,
``ndcg@k = [r < k] / log2(r + 2)``, ``mrr@k = [r < k] / (r + 1)`` (one relevant item:
recall = hit, precision = hit / k, map = mrr). A repeat of a seen item is revealed but not
scored. Nothing is refitted; ``eval.fold_in`` says how the new events reach the model:

``sequence``
    `jaxrec.models.base.SequenceScorer` (SASRec, ...): ``score_sequence`` of the last items.
``closed_form``
    `jaxrec.models.base.FoldIn` (EASE, iALS, Mult-VAE): ``score_history`` of the 0/1 history.
``sgd``
    `jaxrec.models.base.UserFactors` (MF): ``eval.sgd_steps`` gradient steps of size
    ``eval.sgd_lr`` on the user's vector, from the trained one, on the multinomial
    log-likelihood of the updated history, ``-(1/|S|) sum_{i in S} log softmax(s(p))_i``
    (Mult-VAE's objective; only the user vector moves).
``none``
    the trained model as is (``score_all``): MF-style user embeddings are not updated;
    only the exclusion mask grows.
``auto``
    ``sequence``, else ``closed_form``, else ``none`` (never ``sgd``: it has hyperparameters).

On device, without a per-event loop: nothing is refitted, so each event's input is fixed by
the data alone (the user's known items plus their earlier stream events), and every event
can be scored at once. Two device arrays hold the whole replay: ``first_seen [S, N]`` (S =
the users acting in the stream; -1 for an item known before the stream, else the index of
the first event revealing it), so event ``e`` sees exactly ``first_seen[s] < e``; and, for
``sequence``, each stream user's known + streamed items concatenated after ``L`` pads, so
event ``e``'s input is the ``L``-long slice ending just before it. Events are scored in
blocks of ``eval.user_block`` (one jitted ``lax.map``); only the ``[E]`` ranks come back
(memory: ``S x N`` int32 plus one ``[block, N]`` score block).

Metrics: ``test/streaming/<metric>@k`` over all scored events and, with
``eval.windows=W > 1``, ``test/streaming/w<j>/<metric>@k`` over consecutive windows of
scored events (``eval.window_by``: ``count``, equal numbers of events, or ``time``, equal
time spans); ``results.json["streaming_windows"]`` is the per-window table.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

FOLD_INS = ("auto", "sequence", "closed_form", "sgd", "none")
WINDOW_BY = ("count", "time")
METRICS = ("hit", "ndcg", "mrr", "recall", "precision", "map")
PREFIX = "test/streaming"


def resolve_fold_in(model: Any, choice: str) -> str:
    """The mode ``model`` streams in; a one-line ``ValueError`` for one it cannot run."""
    from jaxrec.models.base import FoldIn, SequenceScorer, UserFactors

    if choice not in FOLD_INS:
        raise ValueError(f"eval.fold_in={choice!r} is not one of {', '.join(FOLD_INS)}")
    name = type(model).__name__
    if choice == "sequence" and not isinstance(model, SequenceScorer):
        raise ValueError(f"eval.fold_in=sequence: {name} cannot score an item sequence (needs "
                         "max_len and score_sequence(seq_BxL), jaxrec.models.base.SequenceScorer)")
    if choice == "closed_form" and not isinstance(model, FoldIn):
        raise ValueError(f"eval.fold_in=closed_form: {name} cannot fold in a history (needs "
                         "score_history(history_UxN), jaxrec.models.base.FoldIn); "
                         "use eval.fold_in=none")
    if choice == "sgd" and not isinstance(model, UserFactors):
        raise ValueError(f"eval.fold_in=sgd: {name} has no user vector to update (needs "
                         "user_factors and score_factors, jaxrec.models.base.UserFactors)")
    if choice != "auto":
        return choice
    if isinstance(model, SequenceScorer):
        return "sequence"
    return "closed_form" if isinstance(model, FoldIn) else "none"


def check_streaming(eval_cfg: Any, split_cfg: Any = None) -> None:
    """One-line ``ValueError`` for streaming options or a split it cannot replay."""
    from jaxrec.metrics.inputs import TIME_ORDERED_SPLITS

    if split_cfg is not None and split_cfg.method not in TIME_ORDERED_SPLITS:
        raise ValueError(f"eval.protocol=streaming replays the test period in time order: "
                         f"data.split.method={split_cfg.method} is not time-ordered (use "
                         f"{' or '.join(TIME_ORDERED_SPLITS)})")
    if eval_cfg.fold_in not in FOLD_INS:
        raise ValueError(f"eval.fold_in={eval_cfg.fold_in!r} is not one of {', '.join(FOLD_INS)}")
    for key, least in (("sgd_steps", 0), ("user_block", 1), ("windows", 1)):
        value = getattr(eval_cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"eval.{key}={value!r} must be an int >= {least}")
    lr = eval_cfg.sgd_lr
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"eval.sgd_lr={lr!r} must be a number > 0")
    if eval_cfg.window_by not in WINDOW_BY:
        raise ValueError(f"eval.window_by={eval_cfg.window_by!r} is not one of "
                         f"{', '.join(WINDOW_BY)}")
    bad = [m for m in eval_cfg.metrics if m not in METRICS]
    if bad:
        raise ValueError(f"eval.metrics: {bad[0]!r} is not a streaming metric (one of "
                         f"{', '.join(METRICS)})")
    if eval_cfg.slices:
        raise ValueError(f"eval.slices={list(eval_cfg.slices)}: slices are not computed with "
                         "eval.protocol=streaming; set eval.slices=[]")


def event_order(inter: Any) -> np.ndarray:
    """Rows of ``inter`` in stream order: time, then item index, then row."""
    rows = np.arange(len(inter.users))
    return np.lexsort((rows, np.asarray(inter.items), np.asarray(inter.timestamps)))


def event_metrics(ranks_E: np.ndarray, metrics: list[str], ks: list[int]) -> dict[str, np.ndarray]:
    """Per-event values ``{"ndcg@10": [E], ...}`` of 0-based ranks of the one relevant item."""
    ranks_E = np.asarray(ranks_E, np.float64)
    out = {}
    for k in ks:
        inside = ranks_E < k
        rr = np.where(inside, 1.0 / (ranks_E + 1.0), 0.0)
        values = {"hit": inside, "recall": inside, "precision": inside / k, "mrr": rr, "map": rr,
                  "ndcg": np.where(inside, 1.0 / np.log2(ranks_E + 2.0), 0.0)}
        for name in metrics:
            out[f"{name}@{k}"] = np.asarray(values[name], np.float64)
    return out


def window_bounds(times_E: np.ndarray, windows: int, by: str) -> np.ndarray:
    """int ``[E]`` window of each (time-ordered) scored event."""
    n = len(times_E)
    if by == "count":
        return np.minimum(np.arange(n) * windows // max(n, 1), windows - 1)
    t0, t1 = float(times_E[0]), float(times_E[-1])
    span = (t1 - t0) or 1.0
    return np.minimum(((times_E - t0) / span * windows).astype(np.int64), windows - 1)


@functools.lru_cache(maxsize=32)
def stream_score_fn(graphdef, mode: str, sgd_steps: int = 0, sgd_lr: float = 0.0):
    """``(state, users_B, seq_BxL, history_BxN) -> scores_BxN`` of the model in ``mode``."""

    def score(state, users_B, seq_BxL, history_BxN):
        model = nnx.merge(graphdef, *state)
        if mode == "sequence":
            return model.score_sequence(seq_BxL)
        if mode == "closed_form":
            return model.score_history(history_BxN)
        if mode == "sgd":
            return model.score_factors(sgd_fold_in(model, users_B, history_BxN, sgd_steps,
                                                   sgd_lr), users_B)
        return model.score_all(users_B)

    return score


def sgd_fold_in(model: Any, users_B: jax.Array, history_BxN: jax.Array, steps: int,
                lr: float) -> jax.Array:
    """User vectors ``[B, D]`` after ``steps`` gradient steps from the trained ones on each
    row's ``-(1/|S|) sum_{i in S} log softmax(score_factors(p))_i`` (S: the history)."""
    count_B = jnp.maximum(history_BxN.sum(axis=1), 1.0)

    def loss(p_BxD):
        logp_BxN = jax.nn.log_softmax(model.score_factors(p_BxD, users_B).astype(jnp.float32))
        return -jnp.sum(jnp.sum(history_BxN * logp_BxN, axis=1) / count_B)

    grad = jax.grad(loss)
    return jax.lax.fori_loop(0, steps, lambda _, p: p - lr * grad(p),
                             model.user_factors(users_B))


class StreamingEvaluator:
    """Replays ``target`` (the test part) in time order after ``known`` (train + valid).

    Args:
      target: the streamed interactions (with timestamps).
      known: what every user has seen before the stream.
      ks, metrics: cut-offs and metric names (`METRICS`).
      windows, window_by: the time windows of the scored events.
      block: most events scored at once (``eval.user_block``).
      fold_in: ``eval.fold_in``; resolved against the model by `attach`.
      sgd_steps, sgd_lr: the gradient fold-in of ``fold_in="sgd"``.

    `jaxrec.metrics.scoring.scoring_fn` gives `run` the model's `stream_score_fn`.
    """

    inputs = "stream"
    input_tables: dict[str, jax.Array] | None = None

    def __init__(self, target: Any, known: Any, *, ks, metrics, windows: int = 1,
                 window_by: str = "count", block: int = 256, fold_in: str = "auto",
                 sgd_steps: int = 10, sgd_lr: float = 0.5):
        if len(target) == 0:
            raise ValueError("eval.protocol=streaming: the test part is empty")
        if max(ks) > target.num_items:
            raise ValueError(f"eval.ks: cut-off {max(ks)} exceeds the number of items "
                             f"{target.num_items}")
        self.split, self.ks, self.metrics = "test", list(ks), list(metrics)
        self.windows, self.window_by, self.fold_in = int(windows), window_by, fold_in
        self.mode, self.max_len, self.block = "none", 1, int(block)
        self.sgd_steps, self.sgd_lr = int(sgd_steps), float(sgd_lr)
        n = self.num_items = target.num_items
        order = event_order(target)
        users_E = np.asarray(target.users)[order].astype(np.int64)
        self.items_E = np.asarray(target.items)[order].astype(np.int64)
        self.times_E = np.asarray(target.timestamps)[order]
        self.stream_users, self.s_E = np.unique(users_E, return_inverse=True)
        num_s, num_e = len(self.stream_users), len(order)
        in_stream = np.full(target.num_users, -1, np.int64)
        in_stream[self.stream_users] = np.arange(num_s)
        keep = in_stream[np.asarray(known.users)] >= 0
        self._known = (in_stream[np.asarray(known.users)[keep]],
                       np.asarray(known.items)[keep], np.asarray(known.timestamps)[keep])
        # first_seen[s, i]: -1 known before the stream, e the first event revealing it, else
        # E; event e is scored from exactly the items with first_seen < e
        first_seen = np.full((num_s, n), num_e, np.int32)
        np.minimum.at(first_seen, (self.s_E, self.items_E), np.arange(num_e, dtype=np.int32))
        first_seen[self._known[0], self._known[1]] = -1
        self.first_seen = first_seen
        # repeats (the user had seen the item: before the stream or earlier in it) are not
        # scored; which events they are depends on the data only
        self.scored_E = first_seen[self.s_E, self.items_E] == np.arange(num_e)
        if not self.scored_E.any():
            raise ValueError("eval.protocol=streaming: every test event repeats an item its "
                             "user had already seen; nothing to score")
        self.window_E = window_bounds(self.times_E[self.scored_E], self.windows, window_by)
        self.users_E = users_E
        self._compiled: dict[str, Any] = {}

    @property
    def keys(self) -> list[str]:
        names = [f"{m}@{k}" for m in self.metrics for k in self.ks]
        keys = [f"{PREFIX}/{n}" for n in names]
        if self.windows > 1:
            keys += [f"{PREFIX}/w{j}/{n}" for j in range(self.windows) for n in names]
        return keys

    def attach(self, model: Any) -> None:
        """Resolve ``eval.fold_in`` against ``model`` (one-line error if it cannot stream)."""
        self.mode = resolve_fold_in(model, self.fold_in)
        self.max_len = int(model.max_len) if self.mode == "sequence" else 1

    def _sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """``(flat, start_E)``: each stream user's ``L`` pads, known items (in time order) and
        stream items, concatenated; event e's input is ``flat[start_E[e]:][:L]``."""
        length, n = self.max_len, self.num_items
        if self.mode != "sequence":
            return np.full(1, n, np.int32), np.zeros(len(self.s_E), np.int64)
        s_K, items_K, times_K = self._known
        known_order = np.lexsort((np.arange(len(s_K)), items_K, times_K, s_K))
        known_count = np.bincount(s_K, minlength=len(self.stream_users))
        stream_count = np.bincount(self.s_E, minlength=len(self.stream_users))
        seg = length + known_count + stream_count  # each user's segment
        offset = np.concatenate([[0], np.cumsum(seg)[:-1]])
        flat = np.full(int(seg.sum()), n, np.int32)
        k_start = np.concatenate([[0], np.cumsum(known_count)[:-1]])
        s_sorted = s_K[known_order]
        rank_K = np.arange(len(s_sorted)) - k_start[s_sorted]
        flat[offset[s_sorted] + length + rank_K] = items_K[known_order]
        # j-th stream event of its user (stream order is kept within a user)
        e_order = np.argsort(self.s_E, kind="stable")
        e_start = np.concatenate([[0], np.cumsum(stream_count)[:-1]])
        j_E = np.empty(len(self.s_E), np.int64)
        j_E[e_order] = np.arange(len(self.s_E)) - e_start[self.s_E[e_order]]
        end_E = offset[self.s_E] + length + known_count[self.s_E] + j_E  # exclusive
        flat[end_E] = self.items_E
        return flat, end_E - length

    def _blocks(self) -> dict[str, jax.Array]:
        """The events in blocks of ``block`` (the last padded): the arrays of one replay."""
        flat, start_E = self._sequences()
        num_e = len(self.s_E)
        size = min(self.block, num_e)
        n_blocks = -(-num_e // size)

        def pad(values, dtype):
            out = np.zeros(n_blocks * size, dtype)
            out[:num_e] = values
            return out.reshape(n_blocks, size)

        return jax.device_put({
            "stream_user": pad(self.s_E, np.int32), "user": pad(self.users_E, np.int32),
            "item": pad(self.items_E, np.int32), "event": pad(np.arange(num_e), np.int32),
            "start": pad(start_E, np.int32), "valid": pad(np.ones(num_e, bool), bool),
            "first_seen": self.first_seen, "flat": flat})

    def _compile(self, score_fn):
        cached = self._compiled.get(self.mode)
        if cached is not None and cached[0] is score_fn:
            return cached[1]
        n, length = self.num_items, self.max_len

        def replay(params, data):
            first_seen_SxN, flat = data["first_seen"], data["flat"]

            def block(blk):
                item_B = blk["item"]
                # the items seen before the event, the revealed one never among them
                seen_BxN = first_seen_SxN[blk["stream_user"]] < blk["event"][:, None]
                seq_BxL = jax.vmap(lambda st: jax.lax.dynamic_slice(flat, (st,), (length,)))(
                    blk["start"])
                scores_BxN = score_fn(params, blk["user"], seq_BxL,
                                      seen_BxN.astype(jnp.float32)).astype(jnp.float32)
                if scores_BxN.shape != seen_BxN.shape:
                    raise ValueError(f"streaming: scores of shape {scores_BxN.shape}, "
                                     f"expected {seen_BxN.shape}")
                target_B1 = jnp.take_along_axis(scores_BxN, item_B[:, None], axis=1)
                ahead_BxN = (scores_BxN > target_B1) | (
                    (scores_BxN == target_B1) & (jnp.arange(n)[None, :] < item_B[:, None]))
                rank_B = jnp.sum(ahead_BxN & ~seen_BxN, axis=1, dtype=jnp.int32)
                repeat_B = jnp.take_along_axis(seen_BxN, item_B[:, None], axis=1)[:, 0]
                return jnp.where(blk["valid"] & ~repeat_B, rank_B, -1)

            events = {k: v for k, v in data.items() if k not in ("first_seen", "flat")}
            return jax.lax.map(block, events)

        fn = jax.jit(replay)
        self._compiled[self.mode] = (score_fn, fn)
        return fn

    def ranks(self, score_fn, params) -> np.ndarray:
        """int ``[E]`` 0-based rank of each event's item in stream order (-1: a repeat)."""
        ranks = self._compile(score_fn)(params, self._blocks())
        return np.asarray(ranks).reshape(-1)[:len(self.s_E)]

    def run(self, score_fn, params) -> dict[str, float]:
        """Means over the scored events, overall and per window (`keys`)."""
        ranks_E = self.ranks(score_fn, params)[self.scored_E]
        values = event_metrics(ranks_E, self.metrics, self.ks)
        out = {f"{PREFIX}/{name}": float(v.mean()) for name, v in values.items()}
        for j in range(self.windows if self.windows > 1 else 0):
            mask = self.window_E == j
            out.update({f"{PREFIX}/w{j}/{name}": float(v[mask].mean()) if mask.any()
                        else math.nan for name, v in values.items()})
        return {key: out[key] for key in self.keys}

    def window_table(self, metrics: dict[str, float]) -> list[dict[str, Any]]:
        """One row per window (the whole stream when ``windows == 1``): its scored events,
        first and last timestamps and its values in ``metrics`` (what `run` returned)."""
        times = self.times_E[self.scored_E]
        rows = []
        for j in range(self.windows):
            mask = self.window_E == j
            prefix = f"{PREFIX}/w{j}/" if self.windows > 1 else f"{PREFIX}/"
            rows.append({"window": j, "events": int(mask.sum()),
                         "from": _plain(times[mask].min()) if mask.any() else None,
                         "to": _plain(times[mask].max()) if mask.any() else None,
                         **{k[len(prefix):]: metrics[k] for k in metrics
                            if k.startswith(prefix) and "/" not in k[len(prefix):]}})
        return rows


def _plain(value):  # a numpy scalar -> its Python value, for results.json
    return value.item() if hasattr(value, "item") else value
