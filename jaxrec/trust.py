"""A run folder is data, never code: which ``_target_`` a saved config may name.

``jaxrec evaluate`` / ``recommend`` and pre-trained initialisation rebuild a run from
its ``config.yaml``. Hydra would import and call whatever ``_target_`` that file
names (``builtins.open``, ``os.system``), so a tampered folder from a colleague or a
shared drive could run code. Before anything is instantiated, a saved config may
only name ``_target_`` at ``model`` (a class under ``jaxrec.models.``), ``loss``
(under ``jaxrec.losses.``) and ``data.dataset`` (under ``jaxrec.data.datasets.``), or
under a module prefix the user trusts explicitly: ``JAXREC_TRUSTED_MODULES``
(comma-separated, e.g. ``myrec_plugin``) for out-of-tree models and loaders.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

ALLOWED = {"model": "jaxrec.models.", "loss": "jaxrec.losses.",
           "data.dataset": "jaxrec.data.datasets."}


def trusted_prefixes(extra: Iterable[str] = ()) -> list[str]:
    env = os.environ.get("JAXREC_TRUSTED_MODULES", "")
    return [p.strip().rstrip(".") + "." for p in [*env.split(","), *extra] if p.strip()]


def check_targets(config: dict[str, Any], source: str, *, trusted: Iterable[str] = ()) -> None:
    """Raise a one-line ``ValueError`` unless every ``_target_`` in ``config`` (a plain
    dict) sits where :data:`ALLOWED` permits it, under the allowed (or a trusted) prefix."""
    extra = trusted_prefixes(trusted)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_":
                    _check(path, value)
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    def _check(path: str, target: Any) -> None:
        allowed = ALLOWED.get(path)
        ok = isinstance(target, str) and (
            (allowed is not None and target.startswith(allowed))
            or (path in ALLOWED and any(target.startswith(p) for p in extra)))
        if not ok:
            where = ", ".join(f"{k} under {v}*" for k, v in ALLOWED.items())
            raise ValueError(f"{source}: {path}._target_={target!r} is not allowed: a run folder "
                             f"may only name {where} (trust a plug-in package with "
                             "JAXREC_TRUSTED_MODULES=<module>)")

    walk(config, "")
