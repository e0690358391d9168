"""Check a study once before its first trial: errors every trial would hit stop the study.

A parameter that does not exist, a monitored metric that no evaluator computes, a model
keyword the model does not take, data that cannot be read, or W&B online without
credentials would fail each trial one by one (with W&B unreachable, after a wait each).
`preflight` composes the first trial's config, checks the logger, and assembles the run
read-only (`jaxrec.assembly.assemble` with ``training=False``: data built and checked,
nothing compiled, nothing written), raising one `SpecError` line on the first problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxrec.sweep.spec import SpecError

_NO = object()

if TYPE_CHECKING:
    from jaxrec.sweep.study import Study, Trial


def preflight(study: Study, trial: Trial) -> None:
    """Raise SpecError (one line) when ``trial`` -- the study's first -- cannot run.

    A swept key the config does not have, and errors of the shared configuration, the
    data or the logger stop the study; an error that names a swept key (this trial's own
    value) and anything unexpected are left for the trial to record.
    """
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from jaxrec.assembly import assemble
    from jaxrec.logging.writers import WandbLoginError, resolve_wandb_mode
    from jaxrec.sweep.runner import compose

    swept = [p.key for p in study.spec.swept]
    own = set(_own(study, trial))
    shared = [w for w in trial.overrides if w not in own]
    try:
        base = compose(shared)
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
        raise SpecError(f"{study.spec.path}: the shared overrides: {' '.join(str(err).split())}"
                        f"{cause}; every trial would fail, so none was run") from None
    for key in swept:  # a swept key the config does not have fails every trial
        if not key.startswith(("+", "~")) and OmegaConf.select(base, key, default=_NO) is _NO:
            raise SpecError(f"{study.spec.path}: parameters.{key}: the config has no key "
                            f"{key!r} (add it with +{key} if the model takes it); every trial "
                            "would fail, so none was run")
    where = f"{study.spec.path}: first trial ({' '.join(sorted(own)) or 'no parameters'})"
    try:
        cfg = compose(trial.overrides)
        if OmegaConf.select(cfg, "logger.wandb"):
            resolve_wandb_mode(str(OmegaConf.select(cfg, "logger.mode") or "offline"))
        run = assemble(cfg, evaluate=True, training=False)
    except (ValueError, TypeError, WandbLoginError, HydraException,
            OmegaConfBaseException) as err:
        message = " ".join(str(err).split())
        if any(key.lstrip("+~") in message for key in swept):
            return  # about this trial's own values: the trial records it, the others run
        raise SpecError(f"{where}: {message}; every trial would fail, so none was run"
                        ) from None
    metric = study.spec.metric
    if metric.startswith("valid/") and not run.dataset.has_valid:
        raise SpecError(f"{study.spec.path}: metric.name={metric} needs a validation split, "
                        "and data.split.valid is 0; set data.split.valid (e.g. 0.1) or "
                        "use a test/ metric")


def _own(study: Study, trial: Trial) -> list[str]:
    """The trial's own parameter overrides (what tells it from the others)."""
    from jaxrec.sweep.expand import trial_overrides

    return trial_overrides({k: v for k, v in trial.params.items()
                            if k in {p.key for p in study.spec.swept}})
