"""Where the packaged Hydra configs and sweep specs live.

In a wheel the top-level ``configs/`` and ``sweeps/`` folders are shipped inside the
package as ``jaxrec/configs`` and ``jaxrec/sweeps``; in an editable install they are read
from the repository.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_PACKAGED = _PACKAGE / "configs"  # wheel: pyproject force-includes configs/ here
CONFIG_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGE.parent / "configs"  # repository
SWEEPS_DIR = _PACKAGE / "sweeps" if _PACKAGED.is_dir() else _PACKAGE.parent / "sweeps"
