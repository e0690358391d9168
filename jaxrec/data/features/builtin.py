"""Built-in fields: item fields of ``Interactions`` and user fields of its user attributes."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from jaxrec.data.features.bags import _Field
from jaxrec.data.features.kinds import (
    _bucket_field,
    _categorical_field,
    _matrix_field,
    _numeric_field,
    _options,
    _text_field,
)
from jaxrec.data.interactions import DataError, Interactions

ITEM_FIELDS = ("genres", "year", "tags", "title")
USER_FIELDS = ("age", "gender", "occupation", "zip")
AGE_BAND_EDGES = (18, 25, 35, 45, 50, 56)  # ml-1m's bands; its age codes are their lower bounds
AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_TITLE_YEAR = re.compile(r"\(\d{4}(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


def item_field(inter: Interactions, name: str, opts: Any = None) -> _Field:
    """One built-in item field of ``inter`` (``genres``, ``year``, ``tags``, ``title`` or any
    other name in ``inter.item_features``)."""
    where = f"data.features.item.{name}"
    if name == "title":
        o = _options(name, opts, ("max_tokens", "min_count", "max_vocab", "pool"), where)
        if inter.item_titles is None:
            raise DataError(f"{where}: {inter.name or 'the data'} has no item titles")
        titles = [_TITLE_YEAR.sub("", str(t)) for t in inter.item_titles]  # year: own field
        return _text_field(name, titles, where=where, **o)
    if name not in inter.item_features:
        raise DataError(f"{where}: {inter.name or 'the data'} has no item feature {name!r} "
                        f"(has: {', '.join(sorted(inter.item_features) + ['title']) or 'none'})")
    values = np.asarray(inter.item_features[name])
    if values.ndim == 2:
        o = _options(name, opts, ("tfidf", "max_per_row", "min_count", "pool"), where)
        vocab = inter.feature_vocab.get(name) or [str(c) for c in range(values.shape[1])]
        return _matrix_field(name, values, vocab, where=where, **o)
    if np.issubdtype(values.dtype, np.integer):  # year-like: bucketed, 0 = unknown
        o = _options(name, opts, ("width", "bins", "unknown"), where)
        o.setdefault("width", 5 if name == "year" else None)
        return _bucket_field(name, values, where=where, **o)
    _options(name, opts, (), where)
    return _numeric_field(name, values, where=where)


def age_band(age: float) -> str | None:
    """The ml-1m age band of ``age`` years (or of an ml-1m age code); None for <= 0."""
    return AGE_BANDS[int(np.searchsorted(AGE_BAND_EDGES, age, side="right"))] if age > 0 else None


def user_field(inter: Interactions, name: str, opts: Any = None) -> _Field:
    """One built-in user field of ``inter`` (``age``, ``gender``, ``occupation``, ``zip``)."""
    where = f"data.features.user.{name}"
    if not inter.user_attributes:
        raise DataError(f"{where}: {inter.name or 'the data'} has no user attributes; built-in "
                        "user fields come from ml-100k's u.user and ml-1m's users.dat (for other "
                        "data give user features as a table, side: user)")
    if name not in USER_FIELDS:
        raise DataError(f"{where}: unknown built-in user field (valid: {', '.join(USER_FIELDS)})")
    attrs = inter.user_attributes
    if name == "age":
        o = _options(name, opts, ("width", "bins"), where)
        if "age_band" in attrs:  # ml-1m: a band code, categorical
            if o:
                raise DataError(f"{where}.{next(iter(o))}: {inter.name or 'the data'} gives age "
                                "as a band code (ml-1m users.dat), so only the bands apply")
            return _categorical_field(name, [age_band(a) for a in inter.user_attribute("age_band")])
        years = inter.user_attribute(_present(inter, "age", where))
        if o:
            return _bucket_field(name, years, where=where, **o)
        return _categorical_field(name, [age_band(a) for a in years])
    values = inter.user_attribute(_present(inter, name, where))
    if name == "zip":
        digits = _options(name, opts, ("digits",), where).get("digits", 1)
        if not isinstance(digits, int) or digits < 1:
            raise DataError(f"{where}.digits={digits!r} must be an integer >= 1")
        values = [str(v)[:digits].upper() for v in values]
    else:
        _options(name, opts, (), where)
    return _categorical_field(name, values)


def _present(inter: Interactions, name: str, where: str) -> str:
    if name not in inter.user_attributes:
        raise DataError(f"{where}: {inter.name or 'the data'} has no user attribute {name!r} "
                        f"(has: {', '.join(sorted(inter.user_attributes))})")
    return name

