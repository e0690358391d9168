"""Privacy accounting for DP-SGD, through Google's ``dp-accounting`` package.

The mechanism the accountant is told about: ``steps`` compositions of a Poisson-
subsampled Gaussian mechanism (each unit joins a step independently with
probability ``sampling_rate``; the sum of clipped unit gradients gets Gaussian noise
of std ``noise_multiplier * clip_norm``), under add-or-remove-one-unit neighbouring.
``dp_accounting`` is imported here only, and only when a run is private.
"""

from __future__ import annotations

import contextlib
import logging
import math

from jaxrec.extras import require

SIGMA_MAX = 200.0  # the largest noise multiplier calibration considers
SIGMA_MIN = 0.05
# RDP orders: fractional orders below 1.5 make dp-accounting warn about convergence
ORDERS = (1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0,
          16.0, 20.0, 24.0, 28.0, 32.0, 48.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
ACCOUNTANTS = ("rdp", "pld")


def _dp():
    return require("dp_accounting", extra="privacy", purpose="privacy=dp_sgd (accounting)")


@contextlib.contextmanager
def _quiet():
    """dp-accounting logs a warning per RDP order it drops; the result is still sound."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def dp_event(noise_multiplier: float, sampling_rate: float, steps: int):
    """The ``dp_accounting`` event of ``steps`` Poisson-subsampled Gaussian steps."""
    dp = _dp()
    if sampling_rate >= 1.0:  # every unit in every step (private ALS's epochs)
        return dp.SelfComposedDpEvent(dp.GaussianDpEvent(noise_multiplier), steps)
    return dp.SelfComposedDpEvent(
        dp.PoissonSampledDpEvent(sampling_rate, dp.GaussianDpEvent(noise_multiplier)), steps)


def make_accountant(kind: str = "rdp"):
    """A fresh accountant: ``rdp`` (Renyi DP, Mironov 2017) or ``pld`` (privacy loss
    distributions, tighter and slower)."""
    dp = _dp()
    if kind == "rdp":
        return dp.rdp.RdpAccountant(orders=list(ORDERS))
    if kind == "pld":
        return dp.pld.PLDAccountant()
    raise ValueError(f"privacy.accountant: expected one of {', '.join(ACCOUNTANTS)}, got {kind!r}")


def epsilon_for(noise_multiplier: float, sampling_rate: float, steps: int, delta: float, *,
                accountant: str = "rdp") -> float:
    """The epsilon of ``steps`` DP-SGD steps at ``delta`` (inf without noise)."""
    if noise_multiplier <= 0:
        return math.inf
    if steps <= 0:
        return 0.0
    acc = make_accountant(accountant)
    with _quiet():
        acc.compose(dp_event(noise_multiplier, sampling_rate, steps))
        return float(acc.get_epsilon(delta))


def calibrate_noise(epsilon: float, delta: float, sampling_rate: float, steps: int, *,
                    accountant: str = "rdp") -> float:
    """The smallest noise multiplier whose ``steps`` steps spend at most ``epsilon``.

    Raises:
      ValueError: one line when even ``SIGMA_MAX`` spends more than ``epsilon``.
    """
    dp = _dp()
    if epsilon_for(SIGMA_MAX, sampling_rate, steps, delta, accountant=accountant) > epsilon:
        raise ValueError(
            f"privacy.epsilon={epsilon:g}: unreachable with noise_multiplier <= {SIGMA_MAX:g} for "
            f"{steps} steps at privacy.sampling_rate={sampling_rate:g} (delta {delta:.3g}); "
            "raise privacy.epsilon, or lower trainer.epochs or privacy.sampling_rate")
    with _quiet():
        sigma = dp.calibrate_dp_mechanism(
            lambda: make_accountant(accountant),
            lambda s: dp_event(s, sampling_rate, steps), epsilon, delta,
            bracket_interval=dp.ExplicitBracketInterval(SIGMA_MIN, SIGMA_MAX), tol=1e-4)
    return float(sigma)


def capacity(num_units: int, sampling_rate: float, steps: int, budget: float) -> tuple[int, float]:
    """Unit slots per step such that some step of ``steps`` draws more units than fit
    with probability at most ``budget``: ``(slots, that probability)``.

    The sample size of a step is Binomial(units + 1, rate) (one more unit: a neighbour).
    """
    from scipy.stats import binom

    n = num_units + 1
    mean = n * sampling_rate
    slots = max(1, int(math.ceil(mean)))
    while slots < n and steps * binom.sf(slots, n, sampling_rate) > budget:
        slots += max(1, int(math.sqrt(mean) / 4))
    slots = min(slots, n)
    return slots, float(steps * binom.sf(slots, n, sampling_rate))


def sensitivity(*, clip_norm: float, max_interactions: int, max_weight: float,
                unobserved_weight: float) -> float:
    """Private iALS's ``Delta`` (`jaxrec.training.dp_als`): one user's L2 contribution to
    every statistic an epoch releases, with factors clipped to ``clip_norm``, at most
    ``max_interactions`` interactions and observed weights at most ``max_weight``."""
    g2, k, c = clip_norm ** 2, max_interactions, max_weight
    return math.sqrt((unobserved_weight * g2) ** 2 + k * c * c * g2 * g2 + k * c * c * g2 + k)
