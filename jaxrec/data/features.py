"""Item and user features as fixed-shape padded bags, built from a feature spec.

Every feature field becomes a *bag*: per row (item or user) a padded list of
feature ids with weights. A categorical value is a bag of one id (weight 1); a
multi-hot or counted field (genres, tags) a bag of its non-zero columns; text
a bag of tokens; a numeric value one id whose weight is the standardised
value (the factorisation-machine convention). The fields of one side are
concatenated into one :class:`FeatureBag` over a joint vocabulary (id 0 is
padding, weight 0), so a model embeds any mix of fields with one table::

    vec_r = sum_l weights[r, l] * E[ids[r, l]]          (ids, weights: [R, L])

``FeatureBag.slots`` gives each field's column range, for models that pool
per field (DeepFM, DCN).

The spec (``data.features`` in the config) is a list of built-in item fields or
a mapping::

    features:
      item: {genres: {}, year: {width: 5}, tags: {tfidf: true}, title: {}}
      user: {age: {}, gender: {}, occupation: {}, zip: {digits: 1}}
      tables:                       # extra CSV / parquet tables, any dataset
        - {path: users.csv, side: user, key: userId,
           columns: {age: bucket, gender: categorical, occupation: categorical}}

Built-in item fields come from :class:`~jaxrec.data.interactions.Interactions`:
``genres`` (multi-hot), ``year`` (bucketed), ``tags`` (counts, optional TF-IDF)
and ``title`` (word tokens of ``item_titles``, the trailing "(1995)" removed).
Built-in user fields come from ``Interactions.user_attributes`` (ml-100k ``u.user``,
ml-1m ``users.dat``), each one categorical id per user: ``age`` (the ml-1m age
bands ``<18``, ``18-24``, ``25-34``, ``35-44``, ``45-49``, ``50-55``, ``56+``: ml-1m's
band code, ml-100k's years banded alike; ml-100k also takes ``width`` or ``bins``),
``gender``, ``occupation`` and ``zip`` (its first ``digits`` characters, default 1).
A user the user file does not list gets no id for the field; a dataset without
user attributes is an error naming the field.
Column kinds of a table: ``categorical``, ``multi_categorical`` (split on
``sep``, default ``|``), ``numeric`` (standardised), ``bucket`` (quantile
buckets of a number) and ``text`` (word tokens).

:func:`build_features` also records which items and users have training
interactions (``item_warm``, ``user_warm``) and each user's history profile
(the mean of the feature bags of the user's training items), so content and
hybrid models can score cold items from their features.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxrec.data.interactions import DataError, Interactions

ITEM_FIELDS = ("genres", "year", "tags", "title")
USER_FIELDS = ("age", "gender", "occupation", "zip")
AGE_BAND_EDGES = (18, 25, 35, 45, 50, 56)  # ml-1m's bands; its age codes are their lower bounds
AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
COLUMN_KINDS = ("categorical", "multi_categorical", "numeric", "bucket", "text")
_TOKEN = re.compile(r"[a-z0-9]+")
_TITLE_YEAR = re.compile(r"\(\d{4}(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
_STOPWORDS = frozenset("the a an of and in on to for with at from by is".split())


@dataclasses.dataclass(frozen=True)
class FeatureBag:
    """The features of one side (items or users) as padded id / weight lists.

    Attributes:
      ids: int32 ``[R, L]`` feature ids in ``[0, vocab_size)``; 0 is padding.
      weights: float32 ``[R, L]``; 0 on padding.
      fields: field names, in column order.
      slots: ``(start, end)`` columns of each field in ``ids``.
      vocab: ``vocab_size`` names, ``"<field>=<value>"`` (``vocab[0] = "<pad>"``).
    """

    ids: np.ndarray
    weights: np.ndarray
    fields: tuple[str, ...]
    slots: tuple[tuple[int, int], ...]
    vocab: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_rows(self) -> int:
        return self.ids.shape[0]

    def dense(self) -> np.ndarray:
        """float32 ``[R, vocab_size]`` (column 0, padding, is all zero)."""
        out = np.zeros((self.num_rows, self.vocab_size), np.float32)
        rows = np.broadcast_to(np.arange(self.num_rows)[:, None], self.ids.shape)
        np.add.at(out, (rows, self.ids), self.weights)
        out[:, 0] = 0.0
        return out


@dataclasses.dataclass(frozen=True)
class Features:
    """What feature-aware models are built from (see :func:`build_features`).

    Attributes:
      item: item feature bag ``[N, L]``, or None.
      user: user feature bag ``[U, L_u]``, or None.
      item_warm: bool ``[N]``, items with at least one training interaction.
      user_warm: bool ``[U]``, users with at least one training interaction.
      history: the users' history profiles over the item vocabulary ``[U, S]``
        (the mean item bag of their training items), or None without item features.
    """

    item: FeatureBag | None
    user: FeatureBag | None
    item_warm: np.ndarray
    user_warm: np.ndarray
    history: FeatureBag | None = None


@dataclasses.dataclass(frozen=True)
class _Field:
    """One field before concatenation: per row a list of (token, weight)."""

    name: str
    rows: list[list[tuple[str, float]]]


def id_bag(n: int, name: str = "id") -> FeatureBag:
    """A bag holding only the row's own id: the featureless fallback (one id per row)."""
    return FeatureBag(ids=np.arange(1, n + 1, dtype=np.int32)[:, None],
                      weights=np.ones((n, 1), np.float32), fields=(name,), slots=((0, 1),),
                      vocab=("<pad>",) + tuple(f"{name}={i}" for i in range(n)))


def concat_fields(fields: Sequence[_Field], num_rows: int) -> FeatureBag | None:
    """Concatenate per-field token lists into one bag over a joint vocabulary."""
    if not fields:
        return None
    vocab: list[str] = ["<pad>"]
    index: dict[str, int] = {}
    slots, widths = [], []
    start = 0
    for f in fields:
        width = max([len(r) for r in f.rows] + [1])
        slots.append((start, start + width))
        widths.append(width)
        start += width
        for tokens in f.rows:
            for tok, _ in tokens:
                key = f"{f.name}={tok}"
                if key not in index:
                    index[key] = len(vocab)
                    vocab.append(key)
    ids = np.zeros((num_rows, start), np.int32)
    weights = np.zeros((num_rows, start), np.float32)
    for f, (s, _) in zip(fields, slots, strict=True):
        for r, tokens in enumerate(f.rows):
            for j, (tok, w) in enumerate(tokens):
                ids[r, s + j] = index[f"{f.name}={tok}"]
                weights[r, s + j] = w
    return FeatureBag(ids, weights, tuple(f.name for f in fields), tuple(slots), tuple(vocab))


# ---------------------------------------------------------------- field builders


def _pool(rows: list[list[tuple[str, float]]], pool: str, where: str):
    if pool == "sum":
        return rows
    if pool != "mean":
        raise DataError(f"{where}.pool={pool!r} must be mean or sum")
    out = []
    for tokens in rows:
        total = sum(abs(w) for _, w in tokens)
        out.append([(t, w / total) for t, w in tokens] if total > 0 else tokens)
    return out


def _matrix_field(name: str, matrix: np.ndarray, vocab: Sequence[str], *, tfidf: bool = False,
                  max_per_row: int = 32, min_count: int = 1, pool: str = "mean",
                  where: str) -> _Field:
    """A multi-hot / count matrix ``[R, C]`` -> the non-zero columns of each row."""
    m = np.asarray(matrix, np.float32)
    df = (m > 0).sum(0)
    keep_col = df >= min_count
    if tfidf:  # smoothed idf (scikit-learn's default): log((1 + R) / (1 + df)) + 1
        m = m * (np.log((1 + m.shape[0]) / (1 + df)) + 1.0)[None, :]
    rows = []
    for r in range(m.shape[0]):
        cols = np.flatnonzero((m[r] != 0) & keep_col)
        cols = cols[np.argsort(-m[r, cols], kind="stable")][:max_per_row]
        rows.append([(str(vocab[c]), float(m[r, c])) for c in sorted(cols)])
    return _Field(name, _pool(rows, pool, where))


def _bucket_field(name: str, values: np.ndarray, *, width: float | None = None,
                  bins: int = 10, unknown: float | None = 0, where: str) -> _Field:
    """Numbers -> one bucket id per row (fixed ``width`` or ``bins`` quantiles); unknown -> none."""
    v = np.asarray(values, np.float64)
    known = np.isfinite(v) & ((v != unknown) if unknown is not None else True)
    rows: list[list[tuple[str, float]]] = [[] for _ in range(len(v))]
    if not known.any():
        return _Field(name, rows)
    if width is not None:
        if not width > 0:
            raise DataError(f"{where}.width={width} must be > 0")
        bucket = np.floor(v / width) * width
        labels = [f"{b:g}" for b in bucket]
    else:
        edges = np.unique(np.quantile(v[known], np.linspace(0, 1, bins + 1)[1:-1]))
        bucket = np.searchsorted(edges, v, side="right")
        labels = [f"q{b}" for b in bucket]
    for r in np.flatnonzero(known):
        rows[r] = [(labels[r], 1.0)]
    return _Field(name, rows)


def _numeric_field(name: str, values: np.ndarray, *, where: str) -> _Field:
    v = np.asarray(values, np.float64)
    known = np.isfinite(v)
    mu, sd = (v[known].mean(), v[known].std()) if known.any() else (0.0, 1.0)
    sd = sd if sd > 0 else 1.0
    return _Field(name, [[("value", float((x - mu) / sd))] if ok else []
                         for x, ok in zip(v, known, strict=True)])


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, stopwords dropped."""
    return [t for t in _TOKEN.findall(str(text).lower()) if t not in _STOPWORDS]


def _text_field(name: str, texts: Sequence[str], *, max_tokens: int = 8, min_count: int = 2,
                max_vocab: int = 5000, pool: str = "mean", where: str) -> _Field:
    tokens = [tokenize(t)[:max_tokens] for t in texts]
    counts = Counter(t for toks in tokens for t in set(toks))
    kept = {t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
            if c >= min_count}
    rows = [[(t, 1.0) for t in dict.fromkeys(toks) if t in kept] for toks in tokens]
    return _Field(name, _pool(rows, pool, where))


def _categorical_field(name: str, values: Sequence[Any], *, sep: str | None = None) -> _Field:
    rows = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            rows.append([])
        elif sep is None:
            rows.append([(str(v).strip(), 1.0)])
        else:
            parts = list(dict.fromkeys(p.strip() for p in str(v).split(sep) if p.strip()))
            rows.append([(p, 1.0 / len(parts)) for p in parts])
    return _Field(name, rows)


def _options(name: str, opts: Any, allowed: Sequence[str], where: str) -> dict:
    if opts is None:
        return {}
    if not isinstance(opts, Mapping):
        raise DataError(f"{where}: options must be a mapping, got {opts!r}")
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise DataError(f"{where}: unknown option {unknown[0]!r} (valid: {', '.join(allowed)})")
    return dict(opts)


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


# ---------------------------------------------------------------- tables


def _read_table(path: Path, *, sep: str | None, names: Sequence[str] | None,
                encoding: str, where: str):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{where}.path: missing file {path}")
    try:
        if path.suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        options: dict[str, Any] = dict(sep=sep or ",", encoding=encoding, dtype=str,
                                       keep_default_na=False, engine="python")
        if names:
            options.update(header=None, names=list(names))
        return pd.read_csv(path, **options)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({str(e).strip().splitlines()[0]})") from e


def table_fields(spec: Mapping[str, Any], inter: Interactions, where: str
                 ) -> tuple[str, list[_Field]]:
    """Read one extra feature table -> ``(side, fields)``; rows follow the vocabulary.

    Spec keys: ``path`` (csv / parquet), ``side`` (item | user), ``key`` (the id
    column), ``columns`` (column -> kind or ``{kind: ..., <options>}``), optional
    ``sep``, ``names`` (header for header-less files), ``encoding`` and
    ``unknown_ids`` (``error``, the default, or ``ignore``).
    """
    allowed = ("path", "side", "key", "columns", "sep", "names", "encoding", "unknown_ids")
    spec = _options("table", spec, allowed, where)
    for req in ("path", "key", "columns"):
        if req not in spec:
            raise DataError(f"{where}: missing key {req!r}")
    side = spec.get("side", "item")
    if side not in ("item", "user"):
        raise DataError(f"{where}.side={side!r} must be item or user")
    path = Path(str(spec["path"])).expanduser()
    df = _read_table(path, sep=spec.get("sep"), names=spec.get("names"),
                     encoding=spec.get("encoding", "utf-8"), where=where)
    columns = spec["columns"]
    if not isinstance(columns, Mapping) or not columns:
        raise DataError(f"{where}.columns: expected a non-empty mapping column -> kind")
    for col in [spec["key"], *columns]:
        if col not in df.columns:
            raise DataError(f"{path}: missing column {col!r} (header: "
                            f"{', '.join(map(str, df.columns))})")
    ids = inter.item_ids if side == "item" else inter.user_ids
    index = inter.item_index if side == "item" else inter.user_index
    raw = df[spec["key"]].to_numpy()
    if np.issubdtype(ids.dtype, np.integer):
        keys = np.asarray(raw).astype(str)
        bad = ~np.char.isdigit(np.char.lstrip(keys, "-"))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: column {spec['key']!r} has non-integer id "
                            f"{str(keys[row])!r} at row {row + 1}")
        raw = keys.astype(np.int64)
    pos = np.array([index.get(k, -1) for k in raw.tolist()], np.int64)
    unknown_mode = spec.get("unknown_ids", "error")
    if unknown_mode not in ("error", "ignore"):
        raise DataError(f"{where}.unknown_ids={unknown_mode!r} must be error or ignore")
    if (pos < 0).any() and unknown_mode == "error":
        row = int(np.argmax(pos < 0))
        bad_id = raw[row].item() if isinstance(raw[row], np.generic) else raw[row]
        raise DataError(f"{path}: {side} id {bad_id!r} (row {row + 1}) is not in the data "
                        f"({int((pos < 0).sum())} unknown; set unknown_ids: ignore to skip them)")
    keep = pos >= 0
    n = len(ids)
    fields = []
    for col, kind_spec in columns.items():
        cwhere = f"{where}.columns.{col}"
        opts = {"kind": kind_spec} if isinstance(kind_spec, str) else dict(kind_spec)
        kind = opts.pop("kind", None)
        if kind not in COLUMN_KINDS:
            raise DataError(f"{cwhere}: kind {kind!r} is not one of {', '.join(COLUMN_KINDS)}")
        values = np.full(n, None, dtype=object)
        values[pos[keep]] = df[col].to_numpy(object)[keep]
        if kind in ("numeric", "bucket"):
            num = np.full(n, np.nan)
            present = np.array([v is not None and str(v).strip() != "" for v in values])
            try:
                num[present] = np.asarray([float(v) for v in values[present]])
            except ValueError as e:
                raise DataError(f"{path}: column {col!r} has a non-numeric value "
                                f"({e}) for kind {kind}") from None
            if kind == "numeric":
                _options(col, opts, (), cwhere)
                fields.append(_numeric_field(col, num, where=cwhere))
            else:
                o = _options(col, opts, ("width", "bins"), cwhere)
                fields.append(_bucket_field(col, num, unknown=None, where=cwhere, **o))
        elif kind == "text":
            o = _options(col, opts, ("max_tokens", "min_count", "max_vocab", "pool"), cwhere)
            fields.append(_text_field(col, ["" if v is None else str(v) for v in values],
                                      where=cwhere, **o))
        else:
            o = _options(col, opts, ("sep",), cwhere)
            sep = o.get("sep", "|") if kind == "multi_categorical" else None
            fields.append(_categorical_field(col, values, sep=sep))
    return side, fields


# ---------------------------------------------------------------- spec -> Features


def _normalise_spec(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(spec, DictConfig | ListConfig):
            spec = OmegaConf.to_container(spec, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list | tuple):
        spec = {"item": list(spec)}
    if not isinstance(spec, Mapping):
        raise DataError(f"data.features: expected a list of item fields or a mapping, got {spec!r}")
    unknown = sorted(set(spec) - {"item", "user", "tables", "history_len"})
    if unknown:
        raise DataError(f"data.features: unknown key {unknown[0]!r} "
                        "(valid: item, user, tables, history_len)")
    out = dict(spec)
    for side in ("item", "user"):
        fields = out.get(side) or {}
        if isinstance(fields, str):
            fields = [fields]
        if isinstance(fields, list | tuple):
            fields = {f: {} for f in fields}
        out[side] = dict(fields)
    return out


def history_profiles(item_bag: FeatureBag, train: Interactions, *, max_len: int = 128,
                     weights: np.ndarray | None = None) -> FeatureBag:
    """Each user's mean item bag over its training items, as a ``[U, S]`` bag (S <= max_len,
    the largest-weight features kept). Users without training rows get an empty bag."""
    num_users = train.num_users
    w_E = np.ones(len(train), np.float64) if weights is None else np.asarray(weights, np.float64)
    rows_E = np.repeat(train.users, item_bag.ids.shape[1])
    ids_E = item_bag.ids[train.items].reshape(-1)
    vals_E = (item_bag.weights[train.items] * w_E[:, None]).reshape(-1)
    keep = (ids_E > 0) & (vals_E != 0)
    key = rows_E[keep].astype(np.int64) * item_bag.vocab_size + ids_E[keep]
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, weights=vals_E[keep])
    users_k, feats_k = uniq // item_bag.vocab_size, uniq % item_bag.vocab_size
    totals = np.bincount(train.users, weights=w_E, minlength=num_users)
    sums = sums / np.maximum(totals[users_k], 1e-12)
    order = np.lexsort((-np.abs(sums), users_k))
    counts = np.bincount(users_k, minlength=num_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - starts[users_k[order]]
    width = max(1, min(max_len, int(counts.max(initial=0))))
    sel = rank < width
    ids = np.zeros((num_users, width), np.int32)
    vals = np.zeros((num_users, width), np.float32)
    ids[users_k[sel], rank[sel]] = feats_k[sel]
    vals[users_k[sel], rank[sel]] = sums[sel]
    return FeatureBag(ids, vals, ("history",), ((0, width),), item_bag.vocab)


def build_features(full: Interactions, train: Interactions, spec: Any) -> Features | None:
    """The :class:`Features` of a dataset from a ``data.features`` spec (None -> None).

    Args:
      full: all interactions (vocabularies, item features, titles).
      train: the training part (warm items / users and history profiles).
      spec: see the module docstring.

    Raises:
      DataError: an unknown field, option or column kind, or a bad table, naming it.
    """
    spec = _normalise_spec(spec)
    if not spec:
        return None
    item_fields = [item_field(full, name, opts) for name, opts in spec["item"].items()]
    user_fields = [user_field(full, name, opts) for name, opts in spec["user"].items()]
    tables = spec.get("tables") or []
    if not isinstance(tables, list | tuple):
        raise DataError("data.features.tables: expected a list of table specs")
    for t, table in enumerate(tables):
        side, fields = table_fields(table, full, f"data.features.tables[{t}]")
        (item_fields if side == "item" else user_fields).extend(fields)
    item_bag = concat_fields(item_fields, full.num_items)
    user_bag = concat_fields(user_fields, full.num_users)
    item_warm = np.bincount(train.items, minlength=full.num_items) > 0
    user_warm = np.bincount(train.users, minlength=full.num_users) > 0
    history = None
    if item_bag is not None:
        history = history_profiles(item_bag, train, max_len=int(spec.get("history_len", 128)))
    return Features(item=item_bag, user=user_bag, item_warm=item_warm, user_warm=user_warm,
                    history=history)


def featureless(num_users: int, num_items: int) -> Features:
    """The fallback when a model is built without features: ids are the only features."""
    return Features(item=None, user=None, item_warm=np.ones(num_items, bool),
                    user_warm=np.ones(num_users, bool), history=None)
