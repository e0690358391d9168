"""``run_sweep``: parse a spec, open (or resume) its study, and run its trials."""

from __future__ import annotations

from pathlib import Path

from jaxrec.sweep.spec import SpecError, load_spec, parse_options
from jaxrec.sweep.study import Study


def run_sweep(spec_path: str | Path, overrides: list[str] | None = None) -> Study:
    """Run the study of ``spec_path`` locally (no W&B server) and return it.

    Args:
      spec_path: a W&B-format sweep file, e.g. ``sweeps/mf_lr_l2.yaml``.
      overrides: ``sweep.<option>=value`` (see :class:`~jaxrec.sweep.spec.SweepOptions`),
        ``hydra/launcher=...`` and ``hydra.launcher.*`` (run trials through a Hydra
        launcher), and train overrides applied to every trial.
    """
    from jaxrec.sweep.expand import expand

    spec = load_spec(spec_path)
    opts, launcher, train = parse_options(list(overrides or []))
    _check_overrides(spec, [*spec.fixed_overrides, *train])
    if launcher:
        from jaxrec.sweep.launch import run_with_launcher as execute
    else:
        from jaxrec.sweep.runner import run_in_process as execute
    study = Study(spec, opts, train, launcher, execute=execute)
    if spec.method == "bayes":
        from jaxrec.sweep.bayes import run_bayes

        cap = opts.run_cap if opts.run_cap is not None else spec.run_cap
        if cap is None:
            raise SpecError(f"{spec.path}: run_cap: bayes search needs a trial count "
                            "(run_cap in the file, or sweep.run_cap=N)")
        run_bayes(study, run_cap=cap, seed=opts.seed, startup_trials=opts.startup_trials)
    else:
        study.run(expand(spec, run_cap=opts.run_cap, seed=opts.seed))
    study.write_results()
    return study


def _check_overrides(spec, overrides: list[str]) -> None:
    """Compose the shared overrides once: a typo fails here, not in every trial."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from jaxrec.models.config_check import check_model_config
    from jaxrec.sweep.runner import compose

    try:
        cfg = compose([*overrides, "paths.output_dir=."])
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
        raise SpecError(f"{spec.path}: command / command line overrides: "
                        f"{' '.join(str(err).split())}{cause}") from None
    try:
        check_model_config(cfg.model)
    except ValueError as err:
        raise SpecError(f"{spec.path}: command / command line overrides: {err}") from None
