"""One-line checks of model hyperparameters, raised before anything is built."""

from __future__ import annotations

from collections.abc import Sequence


def _is_positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def check_positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """``values`` as a tuple of positive ints, or a one-line error naming ``model.<name>``."""
    out = tuple(values)
    if not all(_is_positive_int(v) for v in out):
        raise ValueError(f"model.{name}={list(out)!r} must be positive ints")
    return out


def check_positive_int(name: str, value: int) -> int:
    """``value`` if a positive int, else a one-line error naming ``model.<name>``."""
    if not _is_positive_int(value):
        raise ValueError(f"model.{name}={value!r} must be a positive int")
    return value
