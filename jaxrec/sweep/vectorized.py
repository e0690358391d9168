"""Vectorised trials: K configurations trained as stacked states in one compiled program.

Trials whose resolved configs differ only in :data:`VECTOR_KEYS` (learning rate,
weight decay, L2 weight, init scale, seed) share the data, the model graph and
the optimiser's structure. Their parameter and optimiser states are stacked on
a leading ``K`` axis and one ``jax.jit(jax.vmap(epoch))`` trains them all:

* the learning rate and weight decay are injected optimiser hyperparameters
  (arrays in each member's optimiser state), the L2 weight is passed as data
  (``data["loss_l2"]``), the init scale and seed only change the initial state;
* each member keeps its own batch order and sampling keys (drawn from its seed
  exactly as :func:`jaxrec.training.fit.fit` does), so a member reproduces the
  separately trained run to float tolerance; members with equal seeds share one
  batch order;
* early stopping and divergence are per member: a boolean ``active_K`` mask
  freezes a stopped member's state inside the program.

Each member then writes the same run directory as ``jaxrec train`` (config,
``metrics.jsonl``, ``results.json``, best checkpoint, its own W&B run).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

VECTOR_KEYS = ("seed", "optim.lr", "optim.weight_decay", "loss.l2", "model.init_std",
               "model.dropout", "model.dropout_rate")
_BOOKKEEPING = ("name", "paths.output_dir", "logger.group", "logger.tags")
_STATE_COPIES = 4  # state + gradients/updates + the new state + the best copy, per member


class NotVectorizable(ValueError):
    """The configs cannot share one program (different graphs or optimiser structures)."""


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.get(p)
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)


def group_key(resolved: dict) -> str:
    """Trials with equal keys differ only in vectorisable hyperparameters."""
    tree = json.loads(json.dumps(resolved, default=str))
    for key in (*VECTOR_KEYS, *_BOOKKEEPING):
        _drop(tree, key)
    return hashlib.sha1(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]


def _memory_bytes() -> int:
    """Memory of the device the arrays live on (host RAM for the CPU backend)."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        return int(stats.get("bytes_limit", 16 * 2**30))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * 2**30


def _cache_bytes(level: int = 2) -> int:
    """Size of one core's cache of ``level`` (0 when unknown)."""
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if int((index / "level").read_text()) != level or \
                    (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        return int(size.rstrip("KMG")) * scale
    return 0


def state_bytes(state) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes"))


def group_limits(per_member_bytes: int, *, cap: int, budget_mb: float = 0.0,
                 platform: str | None = None) -> tuple[int, int]:
    """``(group size, lanes)`` for members whose training state takes ``per_member_bytes``.

    The group size (members compiled and trained together) is bounded by memory:
    ``budget_mb`` or a quarter of the device's memory for all members' states
    and their working copies. Lanes (members stepped side by side by ``jax.vmap``)
    are bounded by the accelerator's memory too, but on a CPU by one core's L2
    cache: measured on this 2-core CPU, stacked MF states that spill out of
    cache step 1.3-3.5x slower per member than one state alone, so larger CPU
    groups step their members one after another through one compiled program.
    """
    working = max(per_member_bytes * _STATE_COPIES, 1)
    budget = int(budget_mb * 2**20) if budget_mb > 0 else _memory_bytes() // 4
    size = max(1, min(cap, budget // working))
    platform = platform or jax.devices()[0].platform
    if platform != "cpu":
        return size, size
    cache = _cache_bytes(2) or 2**20
    return size, max(1, min(size, cache // working))


def group_size_for(cfg: DictConfig, dataset, *, cap: int, budget_mb: float = 0.0
                   ) -> tuple[int, int]:
    """:func:`group_limits` for configs like ``cfg``: builds one member to measure its state."""

    from jaxrec.config import OptimConfig, TrainerConfig
    from jaxrec.train import typed
    from jaxrec.training.optimizer import make_optimizer
    from jaxrec.training.step import init_state

    trainer = typed(cfg, "trainer", TrainerConfig)
    model = build_model(cfg, dataset, 0)
    if hasattr(model, "solve_epoch"):
        return 1, 1
    tx = make_optimizer(typed(cfg, "optim", OptimConfig), total_epochs=trainer.epochs,
                        steps_per_epoch=-(-len(dataset.train) // trainer.batch_size))
    _, state = init_state(model, tx)
    return group_limits(state_bytes(state), cap=cap, budget_mb=budget_mb)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree, k: int):
    return jax.tree.map(lambda x: x[k], tree)


def make_vectorized_epoch(train_step, *, shared_order: bool):
    """``vepoch(states_K, data, active_K, l2_K, perm, mask, keys_K) -> (states_K, loss_K)``.

    One ``jax.jit(jax.vmap(epoch))`` over K stacked states. ``perm`` / ``mask`` are
    ``[Nb, B]`` when ``shared_order`` (every member sees the same batches) else
    ``[K, Nb, B]``. A member with ``active_K[k] == False`` keeps its state.
    """
    from jaxrec.training.step import epoch_program

    epoch = epoch_program(train_step)

    def member(state, data, active, l2, perm, mask, key):
        new_state, loss = epoch(state, {**data, "loss_l2": l2}, perm, mask, key)
        new_state = jax.tree.map(lambda n, o: jnp.where(active, n, o), new_state, state)
        return new_state, loss

    order_axis = None if shared_order else 0
    return jax.jit(jax.vmap(member, in_axes=(0, None, 0, 0, order_axis, order_axis, 0)),
                   donate_argnums=0)


def make_member_epoch(train_step):
    """``epoch(state, data, l2, perm, mask, key) -> (state, loss)``: one member, L2 as data.

    The program members of a CPU group share when they step one after another.
    """
    from jaxrec.training.step import epoch_program

    epoch = epoch_program(train_step)

    def member(state, data, l2, perm, mask, key):
        return epoch(state, {**data, "loss_l2": l2}, perm, mask, key)

    return jax.jit(member, donate_argnums=0)


class _Member:
    """Book-keeping of one trial in a group: its config, writer and early-stopping state."""

    def __init__(self, cfg: DictConfig, index: int):
        from jaxrec.config import LoggerConfig, OptimConfig
        from jaxrec.io import atomic_write_text
        from jaxrec.train import typed

        self.cfg, self.index = cfg, index
        self.run_dir = Path(cfg.paths.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.resolved = OmegaConf.to_container(cfg, resolve=True)
        atomic_write_text(self.run_dir / "config.yaml", OmegaConf.to_yaml(self.resolved))
        self.optim = typed(cfg, "optim", OptimConfig)
        self.log_cfg = typed(cfg, "logger", LoggerConfig)
        self.seed = int(cfg.seed)
        self.writer = None
        self.active = True
        self.best_score, self.best_epoch, self.best_state = -math.inf, 0, None
        self.bad_evals, self.stop_reason, self.epochs_run = 0, "max_epochs", 0
        self.eval_times: list[float] = []
        self.rng = np.random.default_rng(self.seed)
        self.key = jax.random.key(self.seed)
        self.perm = self.mask = None


class _Chunk:
    """Members stepped together: a stacked state (``lanes`` > 1) or one member's state."""

    def __init__(self, members: list[_Member], states: list, l2: list[float]):
        self.members = members
        self.stacked = len(members) > 1
        self.state = _stack(states) if self.stacked else states[0]
        self.l2 = jnp.asarray(l2 if self.stacked else l2[0], jnp.float32)

    def member_state(self, pos: int):
        if self.stacked:
            return _member((self.state.params, self.state.rest), pos)
        return jax.tree.map(jnp.copy, (self.state.params, self.state.rest))  # state is donated


def build_model(cfg: DictConfig, dataset, seed: int):
    """The model of ``cfg`` as :func:`jaxrec.train.build` makes it (features, train graph)."""
    from flax import nnx

    from jaxrec import train as train_module

    model_fn = train_module._instantiate("model", cfg.model)
    ctx = train_module.model_context(dataset, cfg.data.features)
    return model_fn(ctx, rngs=nnx.Rngs(params=seed, default=seed))


def _evaluators(cfg: DictConfig, dataset, eval_cfg, *, model, monitor: str, explicit: bool):
    """``((valid, test), notes, protocol fields)`` as :func:`jaxrec.train.run` builds them.

    Only the full-ranking protocol is shared by a group: the sampled protocol draws
    its negatives from each run's seed.
    """
    from jaxrec.metrics.evaluator import make_evaluators

    if getattr(eval_cfg, "protocol", "full_ranking") != "full_ranking":
        raise NotVectorizable(f"eval.protocol={eval_cfg.protocol} evaluates each run apart")
    try:
        from jaxrec.metrics.protocols import (
            build_evaluators,
            check_protocol,
            describe,
            split_config,
        )
        from jaxrec.metrics.slices import add_slices
    except ImportError:  # a jaxrec without evaluation protocols
        train, valid = dataset.train, dataset.valid
        has_valid = valid is not None and len(valid) > 0
        evals = (make_evaluators("valid", valid, [train], eval_cfg, explicit=explicit)
                 if has_valid else [],
                 make_evaluators("test", dataset.test, [train] + ([valid] if has_valid else []),
                                 eval_cfg, explicit=explicit))
        return evals, [], {}
    split_cfg = split_config(cfg.data)
    check_protocol(eval_cfg, split_cfg, model)
    evals = build_evaluators(dataset, eval_cfg, seed=int(cfg.seed), split_cfg=split_cfg)
    evals, notes = add_slices(evals, dataset, eval_cfg, split_cfg=split_cfg, model=model,
                              monitor=monitor)
    return evals, notes, {"protocol": eval_cfg.protocol,
                          "protocol_details": describe(eval_cfg, split_cfg)}


def train_group(cfgs: list[DictConfig], *, dataset=None, lanes: int | None = None,
                on_done=None) -> list[dict | Exception]:
    """Train configs as one group (one compiled program); one results dict or exception each.

    Args:
      cfgs: composed train configs that differ only in :data:`VECTOR_KEYS` (and
        their output dirs and names).
      dataset: the group's dataset (built from ``cfgs[0]`` when None).
      lanes: members stepped side by side by ``jax.vmap``; None: all of them. With
        fewer lanes than members the group is split into chunks that share the
        compiled program (one member per chunk: no vmap at all).
      on_done: called as ``on_done(index, result_or_exception)`` as soon as a
        member's outputs are written.

    Raises:
      NotVectorizable: the members' model graphs or optimiser states differ.
    """

    from jaxrec.config import EvalConfig, TrainerConfig
    from jaxrec.data.pipeline import build_dataset
    from jaxrec.io import atomic_write_json
    from jaxrec.metrics.protocols import split_config
    from jaxrec.train import _instantiate, make_writer, results_dict, typed
    from jaxrec.training.checkpoint import save_params
    from jaxrec.training.fit import (
        TrainingDiverged,
        _device_data,
        evaluate,
        expected_metric_keys,
        monitor_mode,
        resolve_monitor,
    )
    from jaxrec.training.optimizer import make_optimizer, validate_optim
    from jaxrec.training.sampling import negative_pool, num_search_steps, resolve_negatives
    from jaxrec.training.step import epoch_order, init_state, make_train_step

    t_start = time.perf_counter()
    members = [_Member(cfg, k) for k, cfg in enumerate(cfgs)]
    K = len(members)
    cfg0 = cfgs[0]
    trainer: TrainerConfig = typed(cfg0, "trainer", TrainerConfig)
    eval_cfg: EvalConfig = typed(cfg0, "eval", EvalConfig)
    for m in members:
        validate_optim(m.optim)
    if dataset is None:
        dataset = build_dataset(cfg0.data)
    losses = [_instantiate("loss", cfg.loss) for cfg in cfgs]
    loss = losses[0]
    if loss.kind == "solver":
        raise NotVectorizable("closed-form models are not trained by gradient steps")
    if loss.kind not in ("rating", "negatives"):
        raise NotVectorizable(f"batch kind {loss.kind!r} trains on other rows than interactions")
    train = dataset.train
    explicit = not dataset.info.implicit
    has_valid = dataset.valid is not None and len(dataset.valid) > 0
    monitor = resolve_monitor(trainer, loss)
    mode = monitor_mode(monitor, trainer.mode)
    if trainer.epochs < 1 or trainer.batch_size < 1 or trainer.eval_every < 1:
        raise ValueError(f"trainer: epochs, batch_size and eval_every must be >= 1, got "
                         f"{trainer.epochs}, {trainer.batch_size}, {trainer.eval_every}")
    models = [build_model(cfg, dataset, m.seed) for m, cfg in zip(members, cfgs, strict=True)]
    (valid_evals, test_evals), notes, protocol = _evaluators(
        cfg0, dataset, eval_cfg, model=models[0], monitor=monitor, explicit=explicit)
    if has_valid:
        available = expected_metric_keys("valid", eval_cfg, explicit=explicit)
        available += [k for ev in valid_evals for k in getattr(ev, "keys", ())]
        if monitor not in available:
            raise ValueError(f"trainer.monitor: {monitor!r} is not computed; available: "
                             f"{', '.join(available)}")

    steps_per_epoch = -(-len(train) // trainer.batch_size)
    graphdef, states, tx0 = None, [], None
    for m, model in zip(members, models, strict=True):
        if hasattr(model, "solve_epoch"):
            raise NotVectorizable("closed-form models are not trained by gradient steps")
        tx = make_optimizer(m.optim, steps_per_epoch=steps_per_epoch,
                            total_epochs=trainer.epochs)
        g, state = init_state(model, tx)
        if graphdef is None:
            graphdef, tx0 = g, tx
        elif g != graphdef:
            raise NotVectorizable("members build different model graphs")
        if states and jax.tree.structure(state) != jax.tree.structure(states[0]):
            raise NotVectorizable("members have different optimiser state structures")
        states.append(state)
    del models

    lanes = K if lanes is None else max(1, min(lanes, K))
    n_chunks = -(-K // lanes)
    size = -(-K // n_chunks)  # balanced: 16 members in lanes of 6 -> 6, 5, 5
    chunks = [_Chunk(members[i:i + size], states[i:i + size],
                     [float(lo.l2) for lo in losses[i:i + size]]) for i in range(0, K, size)]
    del states
    positions = {m.index: (c, pos) for c in chunks for pos, m in enumerate(c.members)}
    negatives = resolve_negatives(trainer.negatives,
                                  getattr(split_config(cfg0.data), "method", None))
    data = _device_data(train, negative_pool(train.items, train.num_items, negatives))
    shared_order = len({m.seed for m in members}) == 1
    train_step = make_train_step(graphdef, loss, tx0, num_items=train.num_items,
                                 search_steps=num_search_steps(train.csr()[0]))
    vepoch = make_vectorized_epoch(train_step, shared_order=shared_order)
    single_epoch = make_member_epoch(train_step)

    def draw_orders():
        if shared_order:
            perm, mask = epoch_order(members[0].rng, len(train), trainer.batch_size)
            for m in members:
                m.perm, m.mask = perm, mask
        else:
            for m in members:
                m.perm, m.mask = epoch_order(m.rng, len(train), trainer.batch_size)

    def launch(chunk: _Chunk, epoch: int, program=None):
        """Dispatch one epoch of a chunk (asynchronously); returns its loss array."""
        if not chunk.stacked:
            m = chunk.members[0]
            args = (chunk.state, data, chunk.l2, m.perm, m.mask, jax.random.fold_in(m.key, epoch))
            fn = program or compiled[1]
        else:
            ms = chunk.members
            order = (ms[0].perm, ms[0].mask) if shared_order else (
                np.stack([m.perm for m in ms]), np.stack([m.mask for m in ms]))
            keys = jnp.stack([jax.random.fold_in(m.key, epoch) for m in ms])
            args = (chunk.state, data, jnp.asarray([m.active for m in ms]), chunk.l2,
                    *order, keys)
            fn = program or compiled[len(ms)]
        if program is not None:
            return fn.lower(*args).compile()
        chunk.state, loss_value = fn(*args)
        return loss_value

    draw_orders()
    t0 = time.perf_counter()
    compiled: dict[int, Any] = {}
    for chunk in chunks:
        width = len(chunk.members) if chunk.stacked else 1
        if width not in compiled:
            compiled[width] = launch(chunk, 1, program=vepoch if chunk.stacked else single_epoch)
    compile_seconds = time.perf_counter() - t0

    for m in members:
        m.writer = make_writer(m.cfg, m.log_cfg, monitor=monitor, resolved=m.resolved,
                               run_dir=m.run_dir)
    sign = 1.0 if mode == "max" else -1.0
    train_seconds, epochs_run = 0.0, 0
    outputs: list[dict | Exception | None] = [None] * K

    def stop(m: _Member, error: Exception | None = None) -> None:
        m.active = False
        if error is not None:
            outputs[m.index] = error
            m.writer.close_failed = True  # the W&B run is marked failed in _close

    try:
        for epoch in range(1, trainer.epochs + 1):
            if not any(m.active for m in members):
                break
            t = time.perf_counter()
            if epoch > 1:
                draw_orders()
            pending = [(c, launch(c, epoch)) for c in chunks if any(m.active for m in c.members)]
            loss_K = np.full(K, np.nan)
            for chunk, value in pending:  # fetched after every chunk is dispatched
                loss_K[[m.index for m in chunk.members]] = np.asarray(value)
            train_seconds += time.perf_counter() - t
            epochs_run = epoch
            evaluate_now = epoch % trainer.eval_every == 0 or epoch == trainer.epochs
            for m in members:
                if not m.active:
                    continue
                m.epochs_run = epoch
                value = float(loss_K[m.index])
                if not math.isfinite(value):
                    stop(m, TrainingDiverged(f"train/loss is {value} at epoch {epoch}; "
                                             "stopping"))
                    continue
                record = {"train/loss": value}
                if not (evaluate_now and has_valid):
                    m.writer.write(epoch, record)
                    if not has_valid:
                        m.best_epoch = epoch
                    continue
                te = time.perf_counter()
                chunk, pos = positions[m.index]
                member_state = chunk.member_state(pos)
                metrics = evaluate(valid_evals, graphdef, member_state)
                m.eval_times.append(time.perf_counter() - te)
                m.writer.write(epoch, {**record, **metrics})
                score = sign * metrics[monitor]
                if score > m.best_score:
                    m.best_score, m.best_epoch, m.bad_evals = score, epoch, 0
                    m.best_state = member_state
                else:
                    m.bad_evals += 1
                    if trainer.patience and m.bad_evals >= trainer.patience:
                        m.stop_reason = "patience"
                        stop(m)
        group_seconds = time.perf_counter() - t_start
        for m in members:
            if outputs[m.index] is not None:
                continue
            try:
                chunk, pos = positions[m.index]
                best = m.best_state if has_valid and m.best_state is not None else \
                    chunk.member_state(pos)
                if trainer.save_checkpoint:  # once, at the end (fit saves at each improvement)
                    save_params(m.run_dir / "checkpoints" / "best", best[0])
                t = time.perf_counter()
                final = evaluate(test_evals, graphdef, best)
                test_seconds = time.perf_counter() - t
                if has_valid:
                    final.update(evaluate(valid_evals, graphdef, best))
                times = m.eval_times[1:] if len(m.eval_times) > 1 else m.eval_times
                result = SimpleNamespace(
                    metrics=final, best_epoch=m.best_epoch, epochs_run=m.epochs_run,
                    stop_reason=m.stop_reason, monitor=monitor, compile_seconds=compile_seconds,
                    seconds_per_epoch=train_seconds / max(epochs_run, 1),
                    eval_seconds=float(np.median(times)) if times else test_seconds)
                results = results_dict(result, dataset, total_seconds=group_seconds / K)
                results.update(protocol)
                if notes:
                    results["notes"] = notes
                if getattr(eval_cfg, "save_per_user", False):
                    from jaxrec.metrics.per_user import write_per_user

                    results["per_user_files"] = write_per_user(
                        m.run_dir, {"valid": valid_evals, "test": test_evals}, graphdef, best,
                        dataset.full.user_ids)
                results["vectorized"] = {"group_size": K, "lanes": size if n_chunks > 1 else K,
                                         "member": m.index, "group_seconds": group_seconds}
                m.writer.summary({**final, "best_epoch": m.best_epoch})
                atomic_write_json(m.run_dir / "results.json", results)
                outputs[m.index] = results
            except Exception as err:  # one member's failure does not lose the others
                outputs[m.index] = err
                m.writer.close_failed = True
            _close(m.writer)
            m.writer = None
            if on_done is not None:
                on_done(m.index, outputs[m.index])
    finally:
        for m in members:  # diverged members, or all of them when the group itself failed
            if m.writer is None:
                continue
            m.writer.close_failed = not isinstance(outputs[m.index], dict)
            _close(m.writer)
            m.writer = None
            if on_done is not None and outputs[m.index] is not None:
                on_done(m.index, outputs[m.index])
    return outputs  # type: ignore[return-value]


def _close(writer) -> None:
    """Close a member's writers; its W&B run is marked failed when the member failed."""
    failed = getattr(writer, "close_failed", False)
    for w in writer.writers:
        if failed and hasattr(w, "run"):
            w.close(exit_code=1)
        else:
            w.close()
