"""jaxrec: a JAX research toolkit for deep-learning recommender systems.

The Python API (`jaxrec.api`) is re-exported lazily, so ``import jaxrec`` stays cheap:
``jaxrec.run([...overrides])``, ``jaxrec.compose([...])``, ``jaxrec.Recommender.load(run)``.
"""

__version__ = "0.1.0"

_API = ("run", "compose", "Recommender")


def __getattr__(name: str):
    if name in _API:
        from jaxrec import api

        return getattr(api, name)
    raise AttributeError(f"module 'jaxrec' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
