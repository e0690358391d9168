"""MovieLens user files: ml-100k ``u.user`` and ml-1m ``users.dat`` (see
`jaxrec.data.datasets.movielens` for the format notes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrec.data.interactions import DataError

ML1M_AGE_CODES = (1, 18, 25, 35, 45, 50, 56)  # "Under 18", "18-24", ..., "50-55", "56+"
ML1M_OCCUPATIONS = (
    "other or not specified", "academic/educator", "artist", "clerical/admin",
    "college/grad student", "customer service", "doctor/health care", "executive/managerial",
    "farmer", "homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
    "scientist", "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed",
    "writer")
GENDERS = ("M", "F")

def read_users(path: Path, variant: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parse ml-100k ``u.user`` or ml-1m ``users.dat`` -> ``(raw ids, attributes)``.

    Raises:
      DataError: a line with the wrong field count, a non-integer id or age, an age
        or occupation code outside the README's, a gender other than M / F, or a
        repeated user id -- naming the file, line and value.
    """
    if variant == "ml-100k":
        sep, names = "|", ("user", "age", "gender", "occupation", "zip")
    else:
        sep, names = "::", ("user", "gender", "age", "occupation", "zip")
    ids, ages, genders, jobs, zips = [], [], [], [], []
    seen: dict[int, int] = {}
    for n, line in enumerate(path.read_bytes().decode("latin-1").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != len(names):
            raise DataError(f"{path}: line {n} has {len(parts)} {sep!r}-separated fields, "
                            f"expected {len(names)} ({sep.join(names)})")
        row = dict(zip(names, (p.strip() for p in parts), strict=True))
        user = _int_field(row["user"], path, n, "user id")
        if user in seen:
            raise DataError(f"{path}: line {n}: user id {user} repeats line {seen[user]}")
        seen[user] = n
        age = _int_field(row["age"], path, n, "age")
        if variant == "ml-1m" and age not in ML1M_AGE_CODES:
            raise DataError(f"{path}: line {n}: age code {row['age']!r} is not one of "
                            f"{', '.join(map(str, ML1M_AGE_CODES))}")
        if age < 0:
            raise DataError(f"{path}: line {n}: age {row['age']!r} is negative")
        if row["gender"] not in GENDERS:
            raise DataError(f"{path}: line {n}: gender {row['gender']!r} is not M or F")
        job = row["occupation"]
        if variant == "ml-1m":
            code = _int_field(job, path, n, "occupation code")
            if not 0 <= code < len(ML1M_OCCUPATIONS):
                raise DataError(f"{path}: line {n}: occupation code {job!r} is not in "
                                f"0-{len(ML1M_OCCUPATIONS) - 1}")
            job = ML1M_OCCUPATIONS[code]
        elif not job:
            raise DataError(f"{path}: line {n}: empty occupation")
        ids.append(user)
        ages.append(age)
        genders.append(row["gender"])
        jobs.append(job)
        zips.append(row["zip"])
    strings = lambda xs: np.array(xs, dtype=object).reshape(len(xs))
    attributes = {"age" if variant == "ml-100k" else "age_band": np.array(ages, np.int32),
                  "gender": strings(genders), "occupation": strings(jobs), "zip": strings(zips)}
    return np.array(ids, np.int64), attributes


def _int_field(value: str, path: Path, line: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        shown = "empty value" if value == "" else f"non-integer value {value!r}"
        raise DataError(f"{path}: line {line}: {what} has {shown}") from None
