"""Running a study's trials through a Hydra launcher (``hydra/launcher=joblib|submitit_slurm|ray``).

Each trial is one Hydra job whose overrides are the trial's overrides; the job
trains through :func:`jaxrec.runner.train` and writes the trial's record itself, so
the study can be resumed however the jobs ended. Launchers are Hydra plugins,
installed as extras: ``pip install 'jaxrec[sweep]'`` (joblib: local processes),
``'jaxrec[slurm]'`` (submitit), ``'jaxrec[ray]'``. Vectorised grouping applies to
in-process studies only: a launcher runs one trial per job.

    jaxrec sweep sweeps/mf_lr_l2.yaml hydra/launcher=joblib hydra.launcher.n_jobs=2
    jaxrec sweep sweeps/mf_lr_l2.yaml hydra/launcher=submitit_slurm \\
        hydra.launcher.partition=gpu hydra.launcher.timeout_min=30
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

if TYPE_CHECKING:
    from jaxrec.sweep.study import Study, Trial


def run_launched_trial(cfg: DictConfig) -> str:
    """The Hydra task of one trial: train, then update the trial's ``trial.json``."""
    from jaxrec.io import atomic_write_json
    from jaxrec.runner import train
    from jaxrec.sweep.study import _TIMING, one_line
    from jaxrec.training.loop import TrainingDiverged

    trial_dir = Path(cfg.paths.output_dir)
    record_path = trial_dir / "trial.json"
    record = json.loads(record_path.read_text())
    t0 = time.perf_counter()
    try:
        results = train(cfg)
        record.update(status="ok", error=None, metrics=results["metrics"],
                      **{k: results[k] for k in _TIMING if k in results})
    except Exception as err:  # recorded; the other jobs go on
        record.update(status="diverged" if isinstance(err, TrainingDiverged) else "failed",
                      error=one_line(err))
    record.update(wall_seconds=time.perf_counter() - t0, group_size=1,
                  finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    atomic_write_json(record_path, record)
    return record["status"]


def make_launcher(overrides: list[str], sweep_dir: Path, task_function=None):
    """The Hydra launcher ``overrides`` (``hydra/launcher=...`` and its settings) choose,
    its jobs' outputs under ``sweep_dir``; one-line error when its plugin is missing."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.errors import HydraException
    from hydra.types import HydraContext, RunMode

    from jaxrec.config import register_configs
    from jaxrec.paths import CONFIG_DIR

    try:
        from hydra._internal.callbacks import Callbacks
    except ImportError:  # hydra < 1.3.3
        from hydra.core.utils import Callbacks  # type: ignore[no-redef]

    register_configs()
    GlobalHydra.instance().clear()  # a fresh Hydra per batch (a bayes study launches several)
    hydra = Hydra.create_main_hydra2(task_name="jaxrec_sweep",
                                     config_search_path=create_config_search_path(
                                         str(CONFIG_DIR)))
    overrides = [*overrides, f"hydra.sweep.dir={sweep_dir}", "hydra.job.chdir=false"]
    try:
        cfg = hydra.compose_config("train", overrides, run_mode=RunMode.MULTIRUN,
                                   with_log_configuration=False)
    except HydraException as err:  # most often: the launcher's plugin is not installed
        from jaxrec.sweep.spec import SpecError

        raise SpecError(f"{' '.join(overrides[:-2])}: {' '.join(str(err).split())} "
                        "(launchers are extras: pip install 'jaxrec[sweep]' for joblib / "
                        "local, 'jaxrec[slurm]', 'jaxrec[ray]')") from None
    context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))
    return Plugins.instance().instantiate_launcher(
        hydra_context=context, task_function=task_function or run_launched_trial, config=cfg)


def run_with_launcher(study: Study, trials: list[Trial]) -> None:
    """Launch ``trials`` as one batch of Hydra jobs with the study's launcher overrides."""
    if not trials:
        return
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobStatus

    launcher = make_launcher(study.launcher_overrides, study.dir / "launcher")
    for trial in trials:
        study.start(trial)
    print(f"launching {len(trials)} trial(s) with {type(launcher).__name__}", file=sys.stderr,
          flush=True)
    try:
        returns = launcher.launch([t.overrides for t in trials], initial_job_idx=0)
    finally:  # leave no global Hydra behind (later compose calls in this process)
        GlobalHydra.instance().clear()
    for trial, ret in zip(trials, returns, strict=True):
        if ret.status != JobStatus.COMPLETED:  # the job died before recording its outcome
            error = ret._return_value if isinstance(ret._return_value, BaseException) else \
                RuntimeError(f"job status {ret.status.name}")
            study.finish(trial, error, group_size=1)
        else:
            study._print(json.loads((trial.dir / "trial.json").read_text()))
    study.write_results()
