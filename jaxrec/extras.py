"""Optional dependencies: a missing one fails with the command that installs it.

    optuna = require("optuna", extra="sweep", purpose="bayes search (method: bayes)")
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message is the ``pip install`` to run."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` naming ``pip install 'jaxrec[extra]'``.

    An ImportError from inside an installed package (a broken install) propagates as is.
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.split(".")[0] != top:
            raise
        raise MissingExtra(f"{purpose} needs {top}, which is not installed: "
                           f"pip install 'jaxrec[{extra}]'") from None
