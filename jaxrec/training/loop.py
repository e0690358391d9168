"""The one training loop, for K >= 1 trial members trained together (K = 1: a single run).

Members share the data, the model graph, the loss and the optimiser's structure;
each has its own initial state (seed, init scale), optimiser hyperparameters
(learning rate and weight decay, injected into its optimiser state), per-member
step hyperparameters (``Member.hparams``, see `jaxrec.training.step.make_train_step`),
batch order and PRNG keys (drawn from its seed), early-stopping tracker and
writer. Members are stepped in chunks: a chunk of several members is one stacked
state trained by ``jax.jit(jax.vmap(epoch))``; a chunk of one is the plain jitted
epoch (the program a single run uses). A stopped member (patience, divergence)
is frozen inside its chunk's program by an ``active`` mask.

Per epoch: dispatch every chunk's epoch, fetch the losses one epoch late (so the
host never waits on the device between epochs), validate the active members on
validation epochs, track the best state per member (kept on device), stop on
patience or divergence. Finally each member's best state is evaluated on test
(and again on valid) and returned as a :class:`FitResult`; writing results and
checkpoints is the caller's.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any

import jax
import numpy as np

from jaxrec.metrics.scoring import evaluate
from jaxrec.training.chunks import Chunk, compile_programs, make_chunks
from jaxrec.training.resume import Preempted
from jaxrec.training.step import epoch_order


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclasses.dataclass
class FitResult:
    """What a trained member returns: best valid/* and test/* metrics and its best state."""

    metrics: dict[str, float]
    best_epoch: int
    epochs_run: int
    stop_reason: str
    monitor: str
    compile_seconds: float
    seconds_per_epoch: float
    eval_seconds: float
    loop_seconds: float  # the whole epoch loop: training, validation, checkpoint writes
    state: Any  # best (params, rest)
    graphdef: Any
    mesh: dict[str, int] | None = None  # the device mesh's axes; None: one device
    # per split, each evaluator's (users, {key: per-user values}) of the best state
    per_user: dict[str, list] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Member:
    """One trial of a fit: its initial state, seed, step hyperparameters and writer."""

    state: Any  # jaxrec.training.step.TrainState
    seed: int
    hparams: dict[str, float] = dataclasses.field(default_factory=dict)
    writer: Any = None
    checkpoints: Any = None  # jaxrec.training.resume.MemberCheckpoints: periodic saves
    resume: Any = None  # jaxrec.training.resume.Resume: continue after resume.epoch


@dataclasses.dataclass
class Program:
    """What the members share: the compiled-program inputs and the evaluation plan."""

    graphdef: Any
    loss: Any
    tx: Any
    data: Any  # jaxrec.data.device.TrainData
    valid_evals: list
    test_evals: list
    trainer: Any  # jaxrec.config.TrainerConfig
    monitor: str
    higher_is_better: bool
    privacy: Any = None  # jaxrec.privacy.PrivacyPlan: DP-SGD batches and step (None: off)
    mesh: Any = None  # jaxrec.training.mesh.MeshPlan (or MemberPlan for a group); None: one
    #   device, the default program


class Tracker:
    """One member's early stopping: best monitored value, its epoch and state, patience."""

    def __init__(self, seed: int, *, higher_is_better: bool, patience: int):
        self.rng = np.random.default_rng(seed)  # orders this member's batches
        self.key = jax.random.key(seed)
        self.sign = 1.0 if higher_is_better else -1.0
        self.patience = patience
        self.best_score, self.best_epoch, self.best_state = -math.inf, 0, None
        self.bad_evals, self.stop_reason, self.epochs_run = 0, "max_epochs", 0
        self.active, self.error = True, None
        self.reference: float | None = None  # the untrained model's first-step loss
        self.eval_times: list[float] = []
        self.perm = self.mask = None

    def observe(self, epoch: int, value: float, state_fn) -> None:
        """Record a validation value; keeps a device copy of the state when it improves."""
        if self.sign * value > self.best_score:
            self.best_score, self.best_epoch, self.bad_evals = self.sign * value, epoch, 0
            self.best_state = state_fn()
        else:
            self.bad_evals += 1
            if self.patience and self.bad_evals >= self.patience:
                self.stop_reason, self.active = "patience", False

    def fail(self, error: Exception) -> None:
        self.active, self.error = False, error

    RECORD = ("best_score", "best_epoch", "bad_evals", "stop_reason", "epochs_run", "active",
              "eval_times", "reference")

    def check(self, epoch: int, mean: float, first: float, factor: float) -> bool:
        """Whether the epoch's loss is sound: finite, and (with ``factor``) at most ``factor``
        times the untrained model's first-step loss. Otherwise the member fails."""
        if self.reference is None:
            self.reference = first
        if not math.isfinite(mean):
            self.fail(TrainingDiverged(f"train/loss is {mean} at epoch {epoch}; stopping"))
        elif factor and abs(mean) > factor * max(abs(self.reference), 1e-12):
            self.fail(TrainingDiverged(
                f"train/loss {mean:.3g} at epoch {epoch} exceeds trainer.divergence_factor="
                f"{factor:g} x the untrained model's {self.reference:.3g}; stopping"))
        return self.error is None

    def record(self) -> dict[str, Any]:
        """What a checkpoint keeps of the tracker (the best state is saved as arrays)."""
        return {**{k: getattr(self, k) for k in self.RECORD},
                "error": None if self.error is None else str(self.error),
                "rng": self.rng.bit_generator.state}

    def restore(self, record: dict[str, Any], best_state) -> None:
        for k in self.RECORD:
            setattr(self, k, record[k])
        if record["error"] is not None:
            self.error = TrainingDiverged(record["error"])
        self.rng.bit_generator.state = record["rng"]
        self.best_state = best_state


def fit(program: Program, members: list[Member], *, lanes: int | None = None,
        on_done=None, stop_requested=None) -> list[FitResult | Exception]:
    """Train ``members`` together; one :class:`FitResult` (or the exception it ended with) each.

    Args:
      program: the shared graph, loss, optimiser, device data, evaluators and trainer.
      members: K >= 1 members (K > 1 needs a gradient-trained loss).
      lanes: members stepped side by side by ``jax.vmap`` (None: all of them), per device
        with a member mesh; with fewer lanes the members are split into chunks that share
        compiled programs.
      on_done: ``on_done(index, result_or_exception)``, called as each member finishes.
      stop_requested: ``() -> bool``, polled after each epoch (a signal handler's flag):
        when true, every member's checkpoint is written and :class:`Preempted` raised.

    Members with ``checkpoints`` are saved after every epoch their policy makes due;
    members with ``resume`` (all from the same epoch) continue after it.
    """
    trainer, data = program.trainer, program.data
    K = len(members)
    trackers = [Tracker(m.seed, higher_is_better=program.higher_is_better,
                        patience=trainer.patience) for m in members]
    start = _restore(members, trackers)
    if program.mesh is not None:  # states, data and evaluators onto the device mesh
        program = program.mesh.prepare(program, members, trackers)
    shared_order = len({m.seed for m in members}) == 1
    chunks = make_chunks(members, lanes=K if lanes is None else lanes,
                         multiple=getattr(program.mesh, "multiple", 1))
    has_valid = bool(program.valid_evals)
    num_rows = data.num_rows

    def order(rng):
        if program.privacy is not None:  # Poisson-sampled units, [steps, units, rows]
            return program.privacy.order(rng)
        return epoch_order(rng, num_rows, trainer.batch_size)

    def draw_orders():
        if shared_order:
            perm, mask = order(trackers[0].rng)
            for t in trackers:
                t.perm, t.mask = perm, mask
        else:
            for t in trackers:
                t.perm, t.mask = order(t.rng)

    draw_orders()
    t0 = time.perf_counter()
    compile_programs(program, chunks, trackers, shared_order=shared_order)
    compile_seconds = time.perf_counter() - t0

    bar = _progress(trainer, K)
    t_loop = time.perf_counter()
    pending: list[tuple[int, list[tuple[Chunk, jax.Array]]]] = []
    train_seconds, epochs_done = 0.0, 0

    def flush(keep: int) -> dict[int, float]:
        """Fetch the queued losses but the newest ``keep`` epochs'; write all but the newest
        epoch's (returned: it is written with the validation metrics)."""
        newest: dict[int, float] = {}
        while len(pending) > keep:
            ep, launched = pending.pop(0)
            for chunk, value in launched:
                values = np.asarray(value).reshape(-1, 2)  # [members, (mean, first step)]
                for pos, k in enumerate(chunk.indices):
                    t = trackers[k]
                    if t.error is not None or t.epochs_run < ep:  # stopped before ``ep``
                        continue
                    v = float(values[pos, 0])
                    if not t.check(ep, v, float(values[pos, 1]), trainer.divergence_factor):
                        continue
                    if pending or keep:
                        members[k].writer.write(ep, {"train/loss": v})
                        if K == 1:
                            bar.set_postfix(loss=f"{v:.4f}", refresh=False)
                    else:
                        newest[k] = v
        return newest

    for epoch in range(start, trainer.epochs + 1):
        if not any(t.active for t in trackers):
            break
        t = time.perf_counter()
        if epoch > start:
            draw_orders()
        launched = []
        for chunk in chunks:
            if any(trackers[k].active for k in chunk.indices):
                for k in chunk.indices:
                    if trackers[k].active:
                        trackers[k].epochs_run = epoch
                launched.append((chunk, chunk.step(program, trackers, epoch, shared_order)))
        pending.append((epoch, launched))
        epochs_done += 1
        bar.update(1)
        validate = epoch % trainer.eval_every == 0 or epoch == trainer.epochs
        stopping = stop_requested is not None and stop_requested()
        save = stopping or (epoch < trainer.epochs and any(
            m.checkpoints is not None and m.checkpoints.due(epoch) for m in members))
        if not (validate or save):
            flush(keep=1)
            train_seconds += time.perf_counter() - t
            continue
        jax.block_until_ready([c.state for c in chunks])
        train_seconds += time.perf_counter() - t
        losses = flush(keep=0)
        for k, t_k in enumerate(trackers):
            if k not in losses:
                continue
            record = {"train/loss": losses[k]}
            if not validate:
                members[k].writer.write(epoch, record)
                continue
            if not has_valid:
                members[k].writer.write(epoch, record)
                t_k.best_epoch = epoch
                continue
            chunk, pos = _locate(chunks, k)
            te = time.perf_counter()
            metrics = evaluate(program.valid_evals, program.graphdef, chunk.member_state(pos))
            t_k.eval_times.append(time.perf_counter() - te)
            members[k].writer.write(epoch, {**record, **metrics})
            if K == 1:
                bar.set_postfix({program.monitor: f"{metrics[program.monitor]:.4f}"},
                                refresh=False)
            t_k.observe(epoch, metrics[program.monitor],
                        lambda c=chunk, p=pos: c.member_state(p, copy=True))
        if save:
            _save(members, trackers, chunks, epoch)
        if stopping:
            bar.close()
            raise Preempted(f"stopped by a signal after epoch {epoch}; the checkpoint is saved: "
                            "run the same command again to resume")
    flush(keep=0)
    bar.close()
    loop_seconds = time.perf_counter() - t_loop

    outputs: list[FitResult | Exception] = []
    for k, t_k in enumerate(trackers):
        if t_k.error is not None:
            outputs.append(t_k.error)
        else:
            try:
                outputs.append(_finish(program, chunks, k, t_k, compile_seconds,
                                       train_seconds / max(epochs_done, 1), loop_seconds))
            except Exception as err:  # one member's failure does not lose the others
                outputs.append(err)
        if on_done is not None:
            on_done(k, outputs[-1])
    return outputs


def _finish(program: Program, chunks, k: int, tracker: Tracker, compile_seconds: float,
            seconds_per_epoch: float, loop_seconds: float) -> FitResult:
    """Test (and re-validate) a member's best state."""
    chunk, pos = _locate(chunks, k)
    has_valid = bool(program.valid_evals)
    best = tracker.best_state if has_valid and tracker.best_state is not None else \
        chunk.member_state(pos, copy=True)
    t = time.perf_counter()
    per_user: dict[str, list] = {"valid": [], "test": []}
    final = evaluate(program.test_evals, program.graphdef, best, per_user["test"])
    test_seconds = time.perf_counter() - t
    if has_valid:
        final.update(evaluate(program.valid_evals, program.graphdef, best, per_user["valid"]))
    times = tracker.eval_times[1:] if len(tracker.eval_times) > 1 else tracker.eval_times
    return FitResult(metrics=final, best_epoch=tracker.best_epoch, epochs_run=tracker.epochs_run,
                     stop_reason=tracker.stop_reason, monitor=program.monitor,
                     compile_seconds=compile_seconds, seconds_per_epoch=seconds_per_epoch,
                     eval_seconds=float(np.median(times)) if times else test_seconds,
                     loop_seconds=loop_seconds, state=best, graphdef=program.graphdef,
                     mesh=None if program.mesh is None else program.mesh.axes,
                     per_user={k: v for k, v in per_user.items() if v})


def _restore(members: list[Member], trackers: list[Tracker]) -> int:
    """Apply the members' ``resume`` (all or none, from one epoch); the first epoch to run."""
    resumes = [m.resume for m in members]
    if all(r is None for r in resumes):
        return 1
    if any(r is None for r in resumes) or len({r.epoch for r in resumes}) > 1:
        raise ValueError("trainer.resume: members must resume from one epoch, got "
                         f"{[None if r is None else r.epoch for r in resumes]}")
    for m, t, r in zip(members, trackers, resumes, strict=True):
        m.state = r.state
        t.restore(r.tracker, r.best_state)
    return resumes[0].epoch + 1


def _save(members: list[Member], trackers: list[Tracker], chunks, epoch: int) -> None:
    """Write every checkpointing member's state, best state, tracker and writer position."""
    for k, (m, t) in enumerate(zip(members, trackers, strict=True)):
        if m.checkpoints is None:
            continue
        chunk, pos = _locate(chunks, k)
        m.checkpoints.save(epoch, chunk.member_train_state(pos), t.best_state, t.record(),
                           m.writer.position())


def _locate(chunks, k: int) -> tuple[Chunk, int]:
    for chunk in chunks:
        if k in chunk.indices:
            return chunk, chunk.indices.index(k)
    raise KeyError(k)


def _progress(trainer, members: int):
    from tqdm import tqdm

    return tqdm(total=trainer.epochs, desc="train" if members == 1 else f"train x{members}",
                unit="epoch", leave=False,
                disable=not (trainer.progress and sys.stderr.isatty()))
