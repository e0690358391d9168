"""Hyperparameter sweeps: W&B-format specs, grid / random / bayes studies, vectorised trials.

    jaxrec sweep sweeps/mf_lr_l2.yaml [sweep.option=value ...] [train overrides ...]
    jaxrec sweep report outputs/sweeps/mf_lr_l2
"""

from jaxrec.sweep.api import run_sweep
from jaxrec.sweep.spec import SpecError, SweepOptions, SweepSpec, load_spec
from jaxrec.sweep.study import Study

__all__ = ["SpecError", "Study", "SweepOptions", "SweepSpec", "load_spec", "run_sweep"]
