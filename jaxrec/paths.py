"""Where the packaged Hydra configs live.

In a wheel the top-level ``configs/`` folder is shipped inside the package as
``jaxrec/configs``; in an editable install it is read from the repository.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CONFIG_DIR = _PACKAGE / "configs" if (_PACKAGE / "configs").is_dir() else _PACKAGE.parent / "configs"
