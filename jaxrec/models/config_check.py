"""Check a ``model`` config node against its class before anything is built.

``configs/model/*.yaml`` are free ``_target_`` nodes (any model, in tree or not), so the
typed schema cannot check them at compose time. :func:`check_model_config` does it from
the constructor: every key must be a keyword of ``Model(ctx, *, ..., rngs)`` and every
value of the type its annotation (or, without one, its default) names: ``int``, ``float``
(an int is accepted), ``bool``, ``str`` (and ``Literal`` choices), sequences, ``None``.
Both failures are one line naming the key, e.g. ``model.dim='abc': GMF.dim expects an
int``.
"""

from __future__ import annotations

import collections.abc
import inspect
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any

_SKIP = frozenset({"ctx", "rngs", "self"})
_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
_NAMES = {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string",
          "sequence": "a list", "none": "null"}


def model_class(node: Mapping[str, Any]) -> type:
    """The class a model node's ``_target_`` names (one-line ``ValueError`` if none)."""
    from hydra.utils import get_class

    target = node.get("_target_")
    try:
        return get_class(str(target))
    except Exception as err:  # ImportError, ValueError: hydra's wording varies
        reason = " ".join(str(err).split())[:200]
        raise ValueError(f"model._target_={target!r}: cannot import it ({reason})") from None


def check_model_config(node: Mapping[str, Any], cls: type | None = None) -> None:
    """One-line ``ValueError`` for a key ``cls`` (default: ``node._target_``) does not take,
    or a value of the wrong simple type.

    Args:
      node: the composed ``cfg.model`` (a ``DictConfig`` or a plain mapping).
      cls: the model class; resolved from ``_target_`` when None.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    cls = model_class(node) if cls is None else cls
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    options = {n: p for n, p in params.items() if n not in _SKIP and p.kind in (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    for key, value in node.items():
        if str(key).startswith("_"):
            continue
        if key not in options:
            if takes_any:
                continue
            raise ValueError(f"model.{key}: {cls.__name__} has no option {key!r} (options: "
                             f"{', '.join(options) or 'none'})")
        if isinstance(value, ListConfig):
            value = list(value)
        problem = _type_problem(value, _expected(cls, options[key]))
        if problem:
            raise ValueError(f"model.{key}={value!r}: {cls.__name__}.{key} expects {problem}")
        _check_size(cls, str(key), value)


def _check_size(cls: type, key: str, value: Any) -> None:
    """Widths (``dim``, ``*_dim``, the ``hidden`` / ``*layers`` size lists) must be >= 1."""
    sizes = value if isinstance(value, list | tuple) and (
        key == "hidden" or key.endswith("layers")) else (
        [value] if key == "dim" or key.endswith("_dim") else [])
    for size in sizes:
        if isinstance(size, int) and not isinstance(size, bool) and size < 1:
            raise ValueError(f"model.{key}={value!r}: {cls.__name__}.{key} must be >= 1 "
                             f"(a layer width), got {size}")


def _expected(cls: type, param: inspect.Parameter) -> tuple[set[str], tuple | None, Any]:
    """``(kinds, literal choices, element type)`` the parameter accepts; ``{"any"}`` when
    neither the annotation nor the default says."""
    hint = _evaluate(cls, param.annotation)
    if hint is not None:
        return _kinds(hint)
    default = param.default
    if default is inspect.Parameter.empty or default is None:
        return {"any"}, None, None
    for kind, types_ in (("bool", bool), ("int", int), ("float", float), ("str", str),
                         ("sequence", (list, tuple))):
        if isinstance(default, types_):
            return {kind}, None, None
    return {"any"}, None, None


def _evaluate(cls: type, annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty:
        return None
    if not isinstance(annotation, str):
        return annotation
    module = sys.modules.get(cls.__module__)
    namespace = {**vars(typing), **vars(collections.abc), **(vars(module) if module else {})}
    try:
        return eval(annotation, namespace)  # noqa: S307  (the class's own annotation)
    except Exception:  # a name only imported for type checking: fall back to the default
        return None


def _kinds(hint: Any) -> tuple[set[str], tuple | None, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds, choices, element = set(), None, None
        for arg in args:
            k, c, e = _kinds(arg)
            kinds |= k
            choices = c or choices
            element = e or element
        return kinds, choices, element
    if origin is typing.Literal:
        return {"str"}, args, None
    if hint is type(None) or hint is None:
        return {"none"}, None, None
    for kind, t in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if hint is t:
            return {kind}, None, None
    if hint in _SEQUENCES or origin in _SEQUENCES:
        element = args[0] if args and args[0] in (int, float, str, bool) else None
        return {"sequence"}, None, element
    return {"any"}, None, None


def _type_problem(value: Any, expected: tuple[set[str], tuple | None, Any]) -> str | None:
    """What is wrong with ``value`` (a phrase after "expects"), or None."""
    kinds, choices, element = expected
    if "any" in kinds:
        return None
    if value is None:
        ok = "none" in kinds
    elif isinstance(value, bool):
        ok = "bool" in kinds
    elif isinstance(value, int):
        ok = bool(kinds & {"int", "float"})
    elif isinstance(value, float):
        ok = "float" in kinds
    elif isinstance(value, str):
        ok = "str" in kinds and (choices is None or value in choices)
        if "str" in kinds and choices is not None and not ok:
            return f"one of {', '.join(map(str, choices))}"
    elif isinstance(value, list | tuple):
        ok = "sequence" in kinds
        if ok and element is not None:
            inner = _kinds(element)
            if any(_type_problem(v, inner) for v in value):
                return f"a list of {_NAMES[next(iter(inner[0]))].split(' ', 1)[-1]}s"
    else:
        ok = False
    if ok:
        return None
    return " or ".join(_NAMES[k] for k in ("int", "float", "bool", "str", "sequence", "none")
                       if k in kinds)
