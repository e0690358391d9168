"""Where the packaged Hydra configs live.

In a wheel the top-level ``configs/`` folder is shipped inside the package as
``jaxrec/configs``; in an editable install it is read from the repository.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_PACKAGED = _PACKAGE / "configs"  # wheel: pyproject force-includes configs/ here
CONFIG_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGE.parent / "configs"  # repository
