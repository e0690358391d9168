"""Training one assembled run end to end, and what a trained run writes.

``train(cfg)`` is what ``jaxrec train``, in-process sweeps, launched trials and
``reproduce`` call: assemble (every check, nothing compiled), fit with one
member, write the outputs. A vectorised sweep group (`jaxrec.sweep.vectorized`)
assembles each member and finishes each through :func:`finish`, so a member's
run folder is the same as a single run's:

``config.yaml`` (resolved), ``metrics.jsonl`` (every logged step),
``results.json`` (final metrics, timings, protocol, data summary),
``checkpoints/best`` (orbax), ``per_user_{valid,test}.parquet``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jaxrec.assembly import Run, assemble
from jaxrec.config import DistributedConfig, typed
from jaxrec.environment import environment
from jaxrec.io import atomic_write_json, atomic_write_text
from jaxrec.logging.console import say
from jaxrec.multihost import barrier, initialize, is_primary, process_count, process_index
from jaxrec.training.loop import FitResult, Member, Program, fit
from jaxrec.training.step import init_state


def write_config(cfg: DictConfig) -> None:
    """The resolved config, first thing in the run folder (atomically)."""
    from jaxrec.io import check_output_dir

    run_dir = Path(cfg.paths.output_dir)
    if not is_primary():  # several processes: process 0 writes the run folder
        return
    check_output_dir(run_dir)  # a file, or a folder that cannot be written: one line
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(resolved))


def open_writer(run: Run, position: dict[str, Any] | None = None):
    """The run's writers (console, ``metrics.jsonl``, W&B) as one ``MultiWriter``;
    ``position`` (from a checkpoint) continues a resumed run's file and W&B run."""
    from jaxrec.logging import ConsoleWriter, JsonlWriter, MultiWriter, WandbWriter

    log, writers, position = run.log_cfg, [], position or {}
    if not is_primary():  # several processes: metrics and W&B are logged once, by process 0
        return MultiWriter(writers)
    if log.console:
        writers.append(ConsoleWriter(keys=("train/loss", run.monitor)))
    if log.jsonl:
        writers.append(JsonlWriter(run.run_dir / "metrics.jsonl",
                                   offset=position.get("jsonl_offset")))
    if log.wandb:
        writers.append(WandbWriter(project=log.project, entity=log.entity, group=log.group,
                                   tags=log.tags, mode=log.mode, name=run.name,
                                   config=run.resolved, run_dir=run.run_dir,
                                   run_id=position.get("wandb_id")))
    return MultiWriter(writers)


def checkpoints(run: Run, *, fresh: bool = False):
    """The run's periodic state checkpoints (``checkpoints/state``); with ``fresh`` (or
    ``trainer.resume=never``) any earlier ones are removed first."""
    import shutil

    from jaxrec.training.resume import MemberCheckpoints

    directory = run.run_dir / "checkpoints" / "state"
    if (fresh or run.trainer.resume == "never") and is_primary():
        shutil.rmtree(directory, ignore_errors=True)
    barrier("jaxrec-checkpoints-fresh")  # several processes: before any opens the folder
    t = run.trainer
    return MemberCheckpoints(directory, every=t.checkpoint_every, seconds=t.checkpoint_seconds,
                             keep=t.keep_checkpoints, config=run.resolved)


def member(run: Run, state, *, hparams=None, resume_epoch: int | str | None = "latest"
           ) -> Member:
    """A fit member for ``run``: its checkpoints, what it resumes from, and its writers.

    ``resume_epoch``: ``"latest"`` (the newest checkpoint, if any, when
    ``trainer.resume=auto``), an epoch (members of a group resume from a common one) or
    None (start afresh, removing earlier checkpoints).
    """
    ckpt = checkpoints(run, fresh=resume_epoch is None)
    resume = None
    if run.trainer.resume == "auto" and resume_epoch is not None and ckpt.steps():
        resume = ckpt.load(state, None if resume_epoch == "latest" else resume_epoch)
    writer = open_writer(run, resume.writer if resume else None)
    return Member(state, seed=run.seed, hparams=dict(hparams or {}), writer=writer,
                  checkpoints=ckpt, resume=resume)


def start_outputs(run: Run, *, resumed: bool) -> None:
    """Record the data fingerprint (``data.json``) and, unless resuming, remove what an
    earlier run left in the folder (results, per-user vectors, its best checkpoint), so a
    re-run into a used folder never mixes old and new outputs."""
    import json
    import shutil

    from jaxrec.data.fingerprint import check_same, fingerprint

    now = fingerprint(run.dataset)
    path = run.run_dir / "data.json"
    if not is_primary():
        return
    if resumed and path.is_file():
        check_same(json.loads(path.read_text()), now, str(run.run_dir))
    if not resumed:
        for name in ("results.json", "per_user_valid.parquet", "per_user_test.parquet"):
            (run.run_dir / name).unlink(missing_ok=True)
        for name in ("best", "best.old"):
            shutil.rmtree(run.run_dir / "checkpoints" / name, ignore_errors=True)
    atomic_write_json(path, now)


def write_status(run_dir, status: str) -> None:
    """``status`` in the run folder: running, finished, failed, diverged or preempted."""
    if not is_primary():
        return
    atomic_write_text(Path(run_dir) / "status", status + "\n")


def status_of(error: BaseException | None) -> str:
    from jaxrec.training.loop import TrainingDiverged
    from jaxrec.training.resume import Preempted

    if error is None:
        return "finished"
    return {Preempted: "preempted", TrainingDiverged: "diverged"}.get(type(error), "failed")


def program(run: Run, graphdef, *, mesh=None) -> Program:
    """The shared part of a fit of ``run`` (and of the members assembled like it);
    ``mesh``: a `jaxrec.training.mesh.MeshPlan` (a single run) or ``MemberPlan`` (a
    vectorised group), None: one device."""
    return Program(graphdef=graphdef, loss=run.loss, tx=run.tx,
                   data=run.train_data(on_host=mesh is not None),
                   valid_evals=run.valid_evals, test_evals=run.test_evals, trainer=run.trainer,
                   monitor=run.monitor, higher_is_better=run.higher_is_better,
                   privacy=run.privacy, mesh=mesh)


def mesh_plan(run: Run):
    """The device mesh of a single run (``trainer.mesh``), or None for one device.
    Closed-form models (``loss=none``) and private runs (``privacy=dp_sgd``, whose batches
    are sampled units) train on one device."""
    from jaxrec.training.mesh import make_plan

    if run.loss.rows == "none" or run.privacy is not None:
        return None
    info = run.dataset.info
    return make_plan(run.trainer.mesh, batch_size=run.trainer.batch_size,
                     table_rows=(info.num_users, info.num_items))


def results_dict(run: Run, result: FitResult, *, total_seconds: float) -> dict[str, Any]:
    """The contents of ``results.json``."""
    ds, mesh = run.dataset, getattr(result, "mesh", None)
    out = {
        "metrics": result.metrics,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "monitor": result.monitor,
        "compile_seconds": result.compile_seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "eval_seconds": result.eval_seconds,
        "loop_seconds": result.loop_seconds,
        "total_seconds": total_seconds,
        "devices": math.prod(mesh.values()) if mesh else 1,  # trainer.mesh
        "mesh": mesh or {"data": 1, "model": 1},
        "processes": process_count(),  # jaxrec.multihost: > 1 when several hosts trained it
        "data": {"name": ds.info.name, "users": ds.info.num_users, "items": ds.info.num_items,
                 "train": len(ds.train), "valid": 0 if ds.valid is None else len(ds.valid),
                 "test": len(ds.test),
                 **({"universe": ds.full.universe} if ds.full.universe else {})},
        **run.protocol(),
    }
    if run.notes:
        out["notes"] = run.notes
    for ev in run.test_evals:  # eval.protocol=streaming: the per-window table
        if hasattr(ev, "window_table"):
            out["streaming_windows"] = ev.window_table(result.metrics)
            out["protocol_details"]["stream"]["fold_in"] = ev.mode  # auto resolved
    if run.privacy is not None:  # the guarantee and the settings that give it
        out["privacy"] = run.privacy.record(result.epochs_run)
    out["environment"] = environment()
    return out


def finish(run: Run, result: FitResult, writer, *, total_seconds: float,
           extra: dict[str, Any] | None = None, compiled: dict | None = None
           ) -> dict[str, Any]:
    """Write a trained member's checkpoint, per-user vectors and ``results.json``;
    ``compiled`` (a `compile_cache.snapshot` from the run's start) adds what it compiled."""
    from jaxrec.metrics.per_user import write_per_user
    from jaxrec.training import compile_cache
    from jaxrec.training.checkpoint import save_params

    if run.trainer.save_checkpoint:  # the best state, once, at the end
        save_params(run.run_dir / "checkpoints" / "best", result.state[0])
    results = results_dict(run, result, total_seconds=total_seconds)
    if run.eval_cfg.save_per_user:  # per-user metric vectors of the best state, for compare
        results["per_user_files"] = write_per_user(run.run_dir, result.per_user,
                                                   run.dataset.full.user_ids)
    results.update(extra or {})
    if compiled is not None:  # programs XLA compiled, their seconds, persistent-cache hits
        results["compile"] = compile_cache.since(compiled)
    privacy = {f"privacy/{k}": v for k, v in results.get("privacy", {}).items()
               if isinstance(v, int | float | str)}
    writer.summary({**result.metrics, "best_epoch": result.best_epoch, **privacy})
    if is_primary():  # several processes: one results.json
        atomic_write_json(run.run_dir / "results.json", results)
    return results


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate one configuration; returns the contents of ``results.json``.

    Continues from the run folder's latest state checkpoint when there is one
    (``trainer.resume=auto``). SIGTERM / SIGINT stop it after the current epoch with a
    checkpoint (:class:`~jaxrec.training.resume.Preempted`). With ``trainer.distributed``
    (or under ``srun`` with several tasks) each process calls it and process 0 writes
    (`jaxrec.multihost`).
    """
    from jaxrec.training import compile_cache
    from jaxrec.training.resume import Preempted
    from jaxrec.training.signals import stop_on_signals

    t_start = time.perf_counter()
    dist = typed(cfg.trainer, "distributed", DistributedConfig) \
        if "distributed" in cfg.trainer else DistributedConfig()  # configs saved before it
    if initialize(dist) and not is_primary():
        import logging  # before any device use; process 0 logs the run (train.log)

        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if not isinstance(h, logging.FileHandler)]
    compiled = compile_cache.snapshot()
    write_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    write_status(run_dir, "running")
    error = None
    try:
        run = assemble(cfg)
        plan = mesh_plan(run)  # device-count errors before anything compiles
        graphdef, state = init_state(run.model, run.tx)
        mem = member(run, state)
        start_outputs(run, resumed=mem.resume is not None)
        try:
            with stop_on_signals() as stop:
                try:
                    [result] = fit(program(run, graphdef, mesh=plan), [mem],
                                     stop_requested=stop)
                except Preempted as err:
                    err.signum = stop.signum
                    raise
            if isinstance(result, Exception):
                raise result
            held = getattr(getattr(plan, "batch_rows", None), "held", None)
            if held and process_count() > 1:  # each process says what it placed
                say(f"process {process_index()}: its devices held {held['slots']} of an "
                    f"epoch's {held['of']} batch slots ({held['rows']} training rows; "
                    "trainer.mesh.rows=sharded)")
            message = stop_message(result, run.trainer.patience)
            if message and run.log_cfg.console:
                say(message)
            return finish(run, result, mem.writer,
                          total_seconds=time.perf_counter() - t_start, compiled=compiled)
        finally:
            mem.checkpoints.close()
            mem.writer.close()
    except BaseException as err:
        error = err
        raise
    finally:
        write_status(run_dir, status_of(error))


def stop_message(result: FitResult, patience: int) -> str | None:
    """The one line saying early stopping fired (None when the run used all its epochs)."""
    if result.stop_reason != "patience":
        return None
    return (f"early stopping: {result.monitor} did not improve for {patience} validations; "
            f"stopped after epoch {result.epochs_run}, best epoch {result.best_epoch}")


def fit_model(model, loss, dataset, *, trainer, tx=None, eval_cfg=None, evaluators=None,
              seed: int = 0, negatives: str = "all_items", writer=None) -> FitResult:
    """Fit a model object on a `jaxrec.data.pipeline.Dataset` without a config (notebooks,
    tests): the same checks, loop and evaluators as a run, nothing written to disk.

    Args:
      model, loss: a model (built from a `jaxrec.models.base.ModelContext`) and a loss.
      dataset: the split dataset.
      trainer: a `jaxrec.config.TrainerConfig`.
      tx: the optimiser (ignored for closed-form models, ``loss.rows == "none"``).
      eval_cfg: a `jaxrec.config.EvalConfig` for the default evaluators; or ``evaluators``
        = ``(valid, test)`` built elsewhere.
      seed: orders the batches and keys the sampling.
      negatives: the negative pool, ``all_items`` or ``train_items``.
      writer: where metrics go (default: nowhere).

    Raises:
      TrainingDiverged: the loss became NaN or infinite.
    """
    import optax

    from jaxrec.config import EvalConfig, validate_trainer
    from jaxrec.data.device import train_data
    from jaxrec.data.sampling import check_negatives, negative_pool
    from jaxrec.logging import MultiWriter
    from jaxrec.metrics import higher_is_better
    from jaxrec.metrics.inputs import attach_requests
    from jaxrec.metrics.protocols import build_evaluators
    from jaxrec.models.base import row_inputs

    validate_trainer(trainer)
    loss.check_model(model)
    train = dataset.train
    pool = negative_pool(train.items, train.num_items, negatives)
    if loss.samples_unseen:
        check_negatives(train, pool, negatives)
    if evaluators is None:
        evaluators = build_evaluators(dataset, eval_cfg or EvalConfig(), seed=seed)
        attach_requests(*evaluators, model, dataset, eval_cfg or EvalConfig())
    tx = optax.identity() if loss.rows == "none" else tx
    graphdef, state = init_state(model, tx)
    monitor = loss.default_monitor if trainer.monitor == "auto" else trainer.monitor
    higher = trainer.mode == "max" if trainer.mode != "auto" else higher_is_better(monitor)
    shared = Program(graphdef=graphdef, loss=loss, tx=tx,
                     data=train_data(train, pool, rows=loss.rows, extra=row_inputs(model, train)),
                     valid_evals=evaluators[0],
                     test_evals=evaluators[1], trainer=trainer, monitor=monitor,
                     higher_is_better=higher)
    [result] = fit(shared, [Member(state, seed=seed, writer=writer or MultiWriter([]))])
    if isinstance(result, Exception):
        raise result
    return result
