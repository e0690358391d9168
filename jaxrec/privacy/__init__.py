"""Differentially private training: the plan (checks, calibrated noise, Poisson sampling of
units) and the accountant (``dp-accounting``, imported only when a run is private).

The DP-SGD step is `jaxrec.training.dp`; the privacy model is docs/privacy.md.
"""

from jaxrec.privacy.plan import PrivacyPlan, build_plan, user_tables

__all__ = ["PrivacyPlan", "build_plan", "user_tables"]
