"""Running a study's trials in this process: one by one, or as vectorised groups."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

if TYPE_CHECKING:
    from jaxrec.sweep.study import Study, Trial


def compose(overrides: list[str]):
    """The train config for ``overrides`` (Hydra's compose API; no Hydra runtime needed)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from jaxrec.config import register_configs
    from jaxrec.paths import CONFIG_DIR

    register_configs()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


def run_trial(study: Study, trial: Trial, cfg=None) -> dict:
    """Train one trial through :func:`jaxrec.runner.train`; failures become its record."""
    from jaxrec.runner import train
    from jaxrec.training.resume import Preempted

    study.start(trial)
    t0 = time.perf_counter()
    try:
        outcome = train(cfg if cfg is not None else compose(trial.overrides))
    except Preempted as err:  # a signal stops the whole study; the trial resumes next time
        study.finish(trial, err, wall_seconds=time.perf_counter() - t0, group_size=1)
        raise
    except Exception as err:  # recorded; the study goes on
        outcome = err
    return study.finish(trial, outcome, wall_seconds=time.perf_counter() - t0, group_size=1)


def plan_units(study: Study, trials: list[Trial]) -> list[tuple[list[Trial], list]]:
    """Group the trials that can train together (same config but for vectorisable keys)."""
    from jaxrec.sweep.vectorized import group_key

    units: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    singles = []
    for trial in trials:
        try:
            cfg = compose(trial.overrides)
            resolved = OmegaConf.to_container(cfg, resolve=True)
        except Exception as err:  # a bad override fails this trial only
            study.start(trial)
            study.finish(trial, err)
            continue
        if not study.opts.vectorize:
            singles.append(([trial], [cfg]))
            continue
        members, cfgs = units[group_key(resolved)]
        members.append(trial)
        cfgs.append(cfg)
    return singles + list(units.values())


def run_in_process(study: Study, trials: list[Trial]) -> None:
    for members, cfgs in plan_units(study, trials):
        if len(members) == 1:
            run_trial(study, members[0], cfgs[0])
        else:
            run_group(study, members, cfgs)


def group_chunk_size(n: int, k_max: int, devices: int = 1) -> int:
    """The size of the balanced chunks ``n`` grouped trials are trained in, at most ``k_max``
    each (16 at k_max 6: 6, 6, 4); with ``devices`` > 1, multiples of the devices where
    ``k_max`` allows, so each chunk's member axis spans them (20 at 16 on 8 devices: 16, 4)."""
    if devices > 1 and k_max >= devices:
        k_max -= k_max % devices
    size = -(-n // -(-n // k_max))
    if devices > 1 and k_max >= devices:
        size = -(-size // devices) * devices
    return size


def run_group(study: Study, members: list[Trial], cfgs: list) -> None:
    """Train trials that differ only in vectorisable keys, in memory-bounded vectorised chunks.

    Falls back to one trial at a time when one member's state alone exceeds the
    memory budget, or when the members cannot share one program.
    """
    from jaxrec.data.pipeline import build_dataset
    from jaxrec.sweep.vectorized import NotVectorizable, group_size_for, train_group
    from jaxrec.training.mesh import member_devices, requested_devices
    from jaxrec.training.resume import Preempted

    try:
        dataset = build_dataset(cfgs[0].data)
        k_max, lanes = group_size_for(cfgs[0], dataset, cap=study.opts.max_group,
                                      budget_mb=study.opts.group_memory_mb)
    except Exception:  # the single runs report the error trial by trial
        k_max, lanes = 1, 1
    if study.opts.lanes > 0:
        lanes = study.opts.lanes
    if k_max < 2:
        for trial, cfg in zip(members, cfgs, strict=True):
            run_trial(study, trial, cfg)
        return
    size = group_chunk_size(len(members), k_max, requested_devices(cfgs[0].trainer.mesh))
    for start in range(0, len(members), size):
        chunk, chunk_cfgs = members[start:start + size], cfgs[start:start + size]
        if len(chunk) == 1:
            run_trial(study, chunk[0], chunk_cfgs[0])
            continue
        for trial in chunk:
            study.start(trial)
        group_id = f"{chunk[0].name}+{len(chunk) - 1}"
        on = member_devices(cfgs[0].trainer.mesh, len(chunk))[0]
        print(f"group {group_id}: {len(chunk)} trials in one program, "
              f"{min(lanes, len(chunk) // on)} side by side (vmap)"
              + (f" on each of {on} devices" if on > 1 else ""), file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        reported: set[int] = set()

        def on_done(index, outcome, chunk=chunk, t0=t0, group_id=group_id, reported=reported):
            reported.add(index)
            study.finish(chunk[index], outcome, group_size=len(chunk), vector_group=group_id,
                         wall_seconds=(time.perf_counter() - t0) / len(chunk))

        try:
            train_group(chunk_cfgs, dataset=dataset, lanes=lanes, on_done=on_done)
        except NotVectorizable as err:
            print(f"not vectorised ({err}); running {len(chunk)} trials one by one",
                  file=sys.stderr)
            for trial, cfg in zip(chunk, chunk_cfgs, strict=True):
                run_trial(study, trial, cfg)
        except Exception as err:  # the group failed as a whole: every unreported member
            for index in range(len(chunk)):
                if index not in reported:
                    on_done(index, err)
            if isinstance(err, Preempted):  # a signal stops the study; the group resumes
                raise
