"""jaxrec: a JAX research toolkit for deep-learning recommender systems."""

__version__ = "0.1.0"
