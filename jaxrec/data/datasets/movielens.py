"""MovieLens loaders (ml-latest-small, ml-100k, ml-1m, ml-20m, ml-25m).

Harper & Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015.
Formats: ml-100k ``u.data`` (tab-separated) + ``u.item`` (pipe-separated, latin-1,
19 genre flags); ml-1m ``ratings.dat`` / ``movies.dat`` (``::``-separated,
latin-1); the others ``ratings.csv`` / ``movies.csv`` / ``tags.csv`` (UTF-8,
quoted titles). ml-100k's "unknown" genre flag and the CSVs' "(no genres listed)"
both mean an all-zero genre row. Every malformed input raises a one-line
DataError naming the file, column and value.

User attributes (``Interactions.user_attributes``, keyed by raw user id) come from
ml-100k ``u.user`` (``user id|age|gender|occupation|zip code``: age in years,
occupation a name) and ml-1m ``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``:
age a band code, occupation a code 0-20, stored as its name from the ml-1m README).
The user file is optional: without it the data has no user attributes. A rated
user the file does not list gets unknown attributes (no user features).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from jaxrec.data import cache
from jaxrec.data.datasets.convert import RATING_RANGE, check_last_line, out_of_range
from jaxrec.data.datasets.movielens_users import (  # noqa: F401 - re-exported
    GENDERS,
    ML1M_AGE_CODES,
    ML1M_OCCUPATIONS,
    read_users,
)
from jaxrec.data.download import check_variant, download_movielens
from jaxrec.data.interactions import DataError, Interactions

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")
NO_GENRE = frozenset({"", "(no genres listed)", "unknown"})
_REQUIRED = {"ml-100k": ("u.data", "u.item"), "ml-1m": ("ratings.dat", "movies.dat")}
_CSV_REQUIRED = ("ratings.csv", "movies.csv")
USER_FILES = {"ml-100k": "u.user", "ml-1m": "users.dat"}
_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


def load_movielens(variant: str = "ml-latest-small", data_dir: str | None = None,
                   cache_dir: str = "~/.cache/jaxrec", download: bool = True, *,
                   base_url: str | None = None, sha256: str | None = None,
                   max_tags: int = 1000, use_cache: bool = True) -> Interactions:
    """Load a MovieLens variant as :class:`Interactions`.

    Resolution: with ``data_dir``, the extracted files must be in
    ``<data_dir>/<variant>/`` (nothing is downloaded); otherwise the archive is
    downloaded (sha256-verified) and extracted under ``cache_dir``. The parsed
    table is cached as npz under ``<cache_dir>/parsed/`` (never in ``data_dir``,
    which may be read-only), keyed by variant, the source files' contents (a
    blake2b digest, so an edit that keeps size and mtime is seen) and ``max_tags``.

    Args:
      variant: ml-latest-small | ml-100k | ml-1m | ml-20m | ml-25m.
      data_dir: folder holding ``<variant>/`` with the extracted files, or None.
      cache_dir: downloads and parsed caches (``~`` expanded).
      download: allow downloading when ``data_dir`` is None and nothing is cached.
      base_url: where ``<variant>.zip`` lives (default: env ``JAXREC_MOVIELENS_URL``,
        then files.grouplens.org).
      sha256: expected archive digest (default: the official checksum).
      max_tags: keep the most frequent tags (ties by name) as ``tags`` columns.
      use_cache: read and write the parsed npz cache.

    Returns:
      Interactions over the rated movies, users and items indexed in raw-id
      order, with ``item_features`` ``genres`` float32 ``[N, G]`` multi-hot,
      ``year`` int32 ``[N]`` (0 = unknown) and, where the variant has tags,
      ``tags`` float32 ``[N, T]`` counts of normalised (lower-cased, stripped) tags;
      for ml-100k / ml-1m with their user file, ``user_attributes`` (module docstring).
    """
    check_variant(variant)
    cache_root = Path(cache_dir).expanduser()
    folder = _resolve_folder(variant, data_dir, cache_root, download, base_url, sha256)
    required = _REQUIRED.get(variant, _CSV_REQUIRED)
    optional = (USER_FILES[variant],) if variant in _REQUIRED else ("tags.csv",)
    build = lambda: parse_movielens(folder, variant, max_tags=max_tags)
    if not use_cache:
        return build()
    key = cache.content_key([folder / f for f in required + optional], variant=variant,
                            max_tags=max_tags)
    return cache.cached(cache_root / "parsed" / f"movielens-{variant}-{key}.npz", build)


def _resolve_folder(variant, data_dir, cache_root, download, base_url, sha256) -> Path:
    required = _REQUIRED.get(variant, _CSV_REQUIRED)
    cached = cache_root / "movielens" / variant
    if data_dir is not None:
        folder = Path(data_dir).expanduser() / variant
        if not folder.exists() and cached.is_dir():
            return cached  # fetched by `jaxrec data download` while data_dir lacks it
        if not folder.exists():
            raise DataError(f"MovieLens {variant}: no folder {folder} (data_dir={data_dir}: "
                            f"nothing is downloaded); `jaxrec data download {variant}` fetches "
                            f"it into the cache ({cached}), or put its files in {folder}")
        for name in required:
            if (folder / name).is_dir():
                raise DataError(f"{folder / name}: is a folder, expected the file {name}")
            if not (folder / name).is_file():
                raise DataError(f"missing file {folder / name} (MovieLens {variant} is read "
                                f"from data_dir={data_dir}, so nothing is downloaded)")
        return folder
    if cached.is_dir():
        return cached
    if not download:
        raise DataError(f"MovieLens {variant} not found at {cached} and download=False")
    return download_movielens(variant, cache_root, base_url=base_url, sha256=sha256)


def parse_movielens(folder: str | Path, variant: str, *, max_tags: int = 1000) -> Interactions:
    """Parse the extracted files of ``variant`` in ``folder`` (no caching)."""
    check_variant(variant)
    folder = Path(folder)
    if variant == "ml-100k":
        ratings, movies, tags = _read_100k(folder)
    elif variant == "ml-1m":
        ratings, movies, tags = _read_1m(folder)
    else:
        ratings, movies, tags = _read_csv_variant(folder)
    if len(ratings) == 0:
        raise DataError(f"{folder / _REQUIRED.get(variant, _CSV_REQUIRED)[0]}: no rating rows")
    inter = _assemble(ratings, movies, tags, name=variant, max_tags=max_tags)
    if variant in USER_FILES and (folder / USER_FILES[variant]).is_file():
        ids, attributes = read_users(folder / USER_FILES[variant], variant)
        inter = dataclasses.replace(inter, user_attributes=attributes, user_attribute_ids=ids)
    return inter


def _read(path: Path, columns: tuple[str, ...], *, sep: str = ",", header: bool = True,
          encoding: str = "utf-8", text: str | None = None, as_str: bool = False) -> pd.DataFrame:
    """Read a delimited file, checking the file and its columns exist."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    if not path.is_file():
        raise DataError(f"missing file {path}")
    options = dict(sep=sep, encoding=encoding)
    if as_str:
        options.update(dtype=str, keep_default_na=False)
    if not header:  # the .dat / u.* files: no header, no quoting
        options.update(header=None, names=list(columns), quoting=csv.QUOTE_NONE)
    source = io.StringIO(text) if text is not None else path
    try:
        df = pd.read_csv(source, **options)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot parse ({' '.join(str(e).split())})") from None
    except OSError as e:  # permission denied, I/O error: name the file
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    for col in columns:
        if col not in df.columns:
            header = ", ".join(map(str, df.columns))
            raise DataError(f"{path}: missing column {col!r} (header: {header})")
    return df


def _numeric(df: pd.DataFrame, col: str, path: Path, *, integer: bool, first_line: int):
    """Column ``col`` as int64 / float64, or a DataError naming the first bad value."""
    s = df[col]
    if pd.api.types.is_integer_dtype(s) or (not integer and pd.api.types.is_float_dtype(s)
                                            and not s.isna().any()):
        return s.to_numpy(np.int64 if integer else np.float64)
    values = pd.to_numeric(s, errors="coerce")
    bad = values.isna().to_numpy().copy()
    if integer:
        bad |= ~bad & (values.fillna(0) % 1 != 0).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raw = s.iloc[row]
        what = "empty value (or NaN)" if pd.isna(raw) or str(raw).strip() == "" else (
            f"non-{'integer' if integer else 'numeric'} value {str(raw)!r}")
        raise DataError(f"{path}: column {col!r} has {what} at line {row + first_line}")
    return values.to_numpy(np.int64 if integer else np.float64)


def _ratings_frame(df, path, cols, first_line) -> pd.DataFrame:
    user, item, rating, ts = cols
    ratings = _numeric(df, rating, path, integer=False, first_line=first_line)
    row = out_of_range(ratings)  # NaN, inf, negative, absurd: never train on them
    if row is not None:
        raise DataError(f"{path}: column {rating!r} has {f'{ratings[row]:g}'!r} "
                        f"at line {row + first_line}, expected {RATING_RANGE}")
    return pd.DataFrame({
        "user": _numeric(df, user, path, integer=True, first_line=first_line),
        "item": _numeric(df, item, path, integer=True, first_line=first_line),
        "rating": ratings,
        "timestamp": _numeric(df, ts, path, integer=True, first_line=first_line),
    })


def _movies_frame(df, path, first_line, genres) -> pd.DataFrame:
    ids = _numeric(df, "movieId", path, integer=True, first_line=first_line)
    return pd.DataFrame({"item": ids, "title": df["title"].astype(str).to_numpy(object),
                         "genres": np.asarray(genres, dtype=object)})


def _complete(path: Path, sep: str, encoding: str = "utf-8") -> None:
    """A ratings file cut mid-line (truncated download or copy) is an error, not fewer rows."""
    if path.is_file():
        check_last_line(path, sep, 4, encoding=encoding)


def _read_csv_variant(folder: Path):
    cols = ("userId", "movieId", "rating", "timestamp")
    path = folder / "ratings.csv"
    _complete(path, ",")
    ratings = _ratings_frame(_read(path, cols), path, cols, first_line=2)
    path = folder / "movies.csv"
    df = _read(path, ("movieId", "title", "genres"), as_str=True)
    movies = _movies_frame(df, path, 2, df["genres"].to_numpy(object))
    path = folder / "tags.csv"
    tags = None
    if path.is_file():
        df = _read(path, ("movieId", "tag"), as_str=True)
        tags = pd.DataFrame({"item": _numeric(df, "movieId", path, integer=True, first_line=2),
                             "tag": df["tag"].to_numpy(object)})
    return ratings, movies, tags


def _read_100k(folder: Path):
    cols = ("user", "item", "rating", "timestamp")
    path = folder / "u.data"
    _complete(path, "\t")
    ratings = _ratings_frame(_read(path, cols, sep="\t", header=False), path, cols, 1)
    path = folder / "u.item"
    flags = tuple(f"g{i}" for i in range(len(ML100K_GENRES)))
    df = _read(path, ("movieId", "title", "release", "video", "url") + flags, sep="|",
               header=False, encoding="latin-1", as_str=True)
    on = np.stack([_numeric(df, f, path, integer=True, first_line=1) for f in flags], axis=1)
    genres = ["|".join(g for g, b in zip(ML100K_GENRES, row, strict=True) if b) for row in on]
    movies = _movies_frame(df, path, 1, genres)
    release_year = df["release"].str.extract(r"(\d{4})\s*$", expand=False)
    movies["year_hint"] = pd.to_numeric(release_year, errors="coerce").fillna(0).astype(np.int32)
    return ratings, movies, None


def _read_1m(folder: Path):
    for name in ("ratings.dat", "movies.dat"):
        if not (folder / name).is_file():
            raise DataError(f"missing file {folder / name}")
    cols = ("user", "item", "rating", "timestamp")
    path = folder / "ratings.dat"
    _complete(path, "::", encoding="latin-1")
    text = path.read_bytes().decode("latin-1").replace("::", "\t")
    ratings = _ratings_frame(_read(path, cols, sep="\t", header=False, text=text), path, cols, 1)
    path = folder / "movies.dat"
    rows = []  # MovieID::Title::Genres; split by hand so a title may hold "::"
    for n, line in enumerate(path.read_bytes().decode("latin-1").splitlines(), 1):
        parts = line.split("::")
        if len(parts) < 3:
            raise DataError(f"{path}: line {n} has {len(parts)} '::'-separated fields, "
                            "expected 3 (MovieID::Title::Genres)")
        rows.append((parts[0], "::".join(parts[1:-1]), parts[-1]))
    df = pd.DataFrame(rows, columns=["movieId", "title", "genres"], dtype=object)
    return ratings, _movies_frame(df, path, 1, df["genres"].to_numpy(object)), None


def _year(title: str) -> int:
    match = _YEAR.search(title)
    return int(match.group(1)) if match else 0


def _assemble(ratings: pd.DataFrame, movies: pd.DataFrame, tags: pd.DataFrame | None, *,
              name: str, max_tags: int) -> Interactions:
    """Index users/items by sorted raw id and attach titles, genres, year and tags."""
    user_ids, users = np.unique(ratings["user"].to_numpy(), return_inverse=True)
    item_ids, items = np.unique(ratings["item"].to_numpy(), return_inverse=True)
    movies = movies.drop_duplicates("item", keep="first")
    row = pd.Index(movies["item"]).get_indexer(item_ids)
    known = row >= 0
    titles = np.full(len(item_ids), "", dtype=object)
    titles[known] = movies["title"].to_numpy(object)[row[known]]
    genre_lists = [[] for _ in item_ids]
    for i in np.flatnonzero(known):
        raw = movies["genres"].iat[row[i]]
        genre_lists[i] = [g.strip() for g in str(raw).split("|") if g.strip() not in NO_GENRE]
    genre_vocab = sorted({g for gs in genre_lists for g in gs})
    col = {g: j for j, g in enumerate(genre_vocab)}
    genres = np.zeros((len(item_ids), len(genre_vocab)), dtype=np.float32)
    for i, gs in enumerate(genre_lists):
        genres[i, [col[g] for g in gs]] = 1.0
    year = np.array([_year(t) for t in titles], dtype=np.int32)
    if "year_hint" in movies:  # ml-100k: fall back to the release date
        hint = np.zeros(len(item_ids), dtype=np.int32)
        hint[known] = movies["year_hint"].to_numpy()[row[known]]
        year = np.where(year == 0, hint, year)
    features = {"genres": genres, "year": year}
    vocab = {"genres": genre_vocab}
    if tags is not None:
        features["tags"], vocab["tags"] = _tag_counts(tags, item_ids, max_tags)
    return Interactions(
        users=users.astype(np.int32), items=items.astype(np.int32),
        ratings=ratings["rating"].to_numpy(np.float32),
        timestamps=ratings["timestamp"].to_numpy(np.int64),
        user_ids=user_ids.astype(np.int64), item_ids=item_ids.astype(np.int64),
        item_titles=titles, item_features=features, feature_vocab=vocab, name=name)


def _tag_counts(tags: pd.DataFrame, item_ids: np.ndarray, max_tags: int):
    """float32 ``[N, T]`` tag counts over the ``max_tags`` most used tags on rated items."""
    norm = tags["tag"].astype(str).str.lower().str.strip()
    row = pd.Index(item_ids).get_indexer(tags["item"].to_numpy())
    keep = (row >= 0) & (norm != "").to_numpy()
    row, norm = row[keep], norm[keep]
    counts = norm.value_counts()
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max(max_tags, 0)]
    vocab = [tag for tag, _ in order]
    col = pd.Index(vocab).get_indexer(norm.to_numpy())
    matrix = np.zeros((len(item_ids), len(vocab)), dtype=np.float32)
    np.add.at(matrix, (row[col >= 0], col[col >= 0]), 1.0)
    return matrix, vocab
