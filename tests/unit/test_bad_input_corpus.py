"""The bad-input corpus: every bad file or config value a user can hit gives one line.

Each case runs through a real entry point in-process -- ``jaxrec data info`` (`jaxrec.cli.main`,
the same load + preprocess path as ``train``), `jaxrec.assembly.assemble` (what ``train``
checks before compiling) or ``jaxrec sweep`` option parsing -- and must fail with a single
line naming the file or field and the value. ``scripts/reliability_corpus.py`` prints the
table of `CASES` with the actual messages for ``docs/reliability.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = "user_id,item_id,rating,ts"
GOOD = [HEADER, "u1,a,4.0,100", "u1,b,3.0,101", "u2,a,5.0,102", "u2,c,1.0,103", "u3,b,2.0,104"]
ML_HEADER = "userId,movieId,rating,timestamp"
ML_GOOD = [ML_HEADER, "1,10,4.0,100", "1,20,3.5,101", "2,10,5.0,102", "2,20,0.5,103"]
ML_MOVIES = "movieId,title,genres\r\n10,Toy Story (1995),Animation\r\n20,Heat (1995),Action\r\n"


@dataclasses.dataclass(frozen=True)
class Case:
    """One corpus entry: ``run(tmp)`` must fail with one line holding every ``expect`` part
    (``{tmp}`` in a part is the case's folder)."""

    name: str
    command: str  # what a user types (shown in docs/reliability.md)
    run: Callable[[Path], object]
    expect: tuple[str, ...]


def cli(*argv: str) -> None:
    """``jaxrec ARGV`` in-process; its one-line error comes out as SystemExit's message."""
    from jaxrec.cli import main

    main(list(argv))


def table_info(tmp: Path, lines: list[str] | None = None, *overrides: str, raw: bytes | None = None,
               name: str = "r.csv") -> None:
    path = tmp / name
    if raw is not None:
        path.write_bytes(raw)
    elif lines is not None:
        path.write_text("\n".join(lines) + "\n")
    cli("data", "info", "table", f"data.dataset.path={path}", "data.dataset.columns.rating=rating",
        "data.dataset.columns.timestamp=ts", f"paths.cache_dir={tmp / 'cache'}", *overrides)


def movielens_info(tmp: Path, ratings: bytes, *overrides: str) -> None:
    folder = tmp / "ml-latest-small"
    folder.mkdir(exist_ok=True)
    if ratings is not None:
        (folder / "ratings.csv").write_bytes(ratings)
    (folder / "movies.csv").write_bytes(ML_MOVIES.encode())
    cli("data", "info", "ml-latest-small", f"paths.data_dir={tmp}",
        f"paths.cache_dir={tmp / 'cache'}", *overrides)


def ml_lines(*rows: str, end: str = "\r\n") -> bytes:
    return ("\r\n".join([*ML_GOOD, *rows]) + end).encode()


def assemble_with(*overrides: str) -> Callable[[Path], object]:
    def run(tmp: Path):
        from jaxrec.assembly import assemble
        from tests.helpers import compose_train

        return assemble(compose_train(["data=synthetic", "model.dim=4", "trainer.epochs=1",
                                       *overrides], tmp / "run"), training=False)
    return run


def sweep_options(*words: str) -> Callable[[Path], object]:
    def run(tmp: Path):
        from jaxrec.sweep.spec import parse_options

        return parse_options(list(words))
    return run


def folder_as_file(tmp: Path) -> None:
    (tmp / "r.csv").mkdir()
    table_info(tmp)


def folder_as_ratings(tmp: Path) -> None:
    (tmp / "ml-latest-small" / "ratings.csv").mkdir(parents=True)
    movielens_info(tmp, None)


R = "{tmp}/r.csv"
ML = "{tmp}/ml-latest-small/ratings.csv"
CASES = [
    # ---------------------------------------------------------------- data files (data=table)
    Case("truncated mid-line", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, raw=("\n".join(GOOD) + "\nu4,d").encode()),
         (R, "line 7", "truncated")),
    Case("missing column", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, ["user_id,item_id,stars,ts", "u1,a,4,1"]), (R, "'rating'")),
    Case("wrong separator", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [line.replace(",", ";") for line in GOOD]), (R, "'user_id'")),
    Case("header only", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [HEADER]), (R, "no interactions")),
    Case("empty file", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, raw=b""), (R,)),
    Case("NaN rating", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, "u4,d,nan,105"]), (R, "line 7", "'nan'", "'rating'")),
    Case("negative rating", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, "u4,d,-3,105"]), (R, "line 7", "-3", "[0, 1e+06]")),
    Case("huge rating", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, "u4,d,1e30,105"]), (R, "line 7", "1e+30", "rating")),
    Case("infinite rating", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, "u4,d,inf,105"]), (R, "line 7", "'inf'")),
    Case("non-numeric rating", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, "u4,d,five,105"]), (R, "line 7", "'five'")),
    Case("empty id", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, ",d,4,105"]), (R, "line 7", "'user_id'", "an id")),
    Case("bad timestamp", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, [*GOOD, "u4,d,4,yesterday"]), (R, "line 7", "'yesterday'")),
    Case("wrong encoding", "jaxrec data info table data.dataset.path=r.csv",
         lambda t: table_info(t, raw=("\n".join(GOOD) + "\nJos\xe9,d,4,105\n").encode("latin-1")),
         (R, "line 7", "\\xe9", "latin-1")),
    Case("a folder where the file should be", "jaxrec data info table data.dataset.path=r.csv",
         folder_as_file, (R, "is a folder")),
    Case("empty after k-core", "... data.preprocess.min_user_interactions=50",
         lambda t: table_info(t, GOOD, "data.preprocess.min_user_interactions=50"),
         ("min_user_interactions", "removed every interaction")),
    Case("empty after threshold", "... data.preprocess.rating_threshold=9",
         lambda t: table_info(t, GOOD, "data.preprocess.rating_threshold=9"),
         ("rating_threshold", "removed every interaction")),
    # ---------------------------------------------------------------- MovieLens files
    Case("MovieLens truncated mid-line", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, ml_lines("2,3", end="")), (ML, "line 6", "truncated")),
    Case("MovieLens negative rating", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, ml_lines("3,10,-3,104")), (ML, "line 6", "'-3'")),
    Case("MovieLens huge rating", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, ml_lines("3,10,1e30,104")), (ML, "line 6", "1e+30")),
    Case("MovieLens infinite rating", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, ml_lines("3,10,inf,104")), (ML, "line 6", "'inf'")),
    Case("MovieLens NaN rating", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, ml_lines("3,10,NaN,104")), (ML, "line 6", "NaN")),
    Case("MovieLens non-integer id", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, ml_lines("x3,10,4,104")), (ML, "line 6", "'x3'")),
    Case("MovieLens missing column", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, b"userId,movieId,timestamp\r\n1,10,100\r\n"),
         (ML, "'rating'")),
    Case("MovieLens header only", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, (ML_HEADER + "\r\n").encode()), (ML, "no rating rows")),
    Case("MovieLens empty file", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, b""), (ML,)),
    Case("MovieLens BOM and wrong encoding", "jaxrec data info ml-latest-small paths.data_dir=D",
         lambda t: movielens_info(t, b"\xef\xbb\xbf" + ml_lines("3,10,4,\xe9".encode("latin-1")
                                                               .decode("latin-1"))),
         (ML, "line 6")),
    Case("MovieLens ratings.csv is a folder", "jaxrec data info ml-latest-small paths.data_dir=D",
         folder_as_ratings, (ML, "is a folder")),
    # ---------------------------------------------------------------- config values
    Case("split ratio 0", "jaxrec train data.split.test=0", assemble_with("data.split.test=0"),
         ("split.test=0", "(0, 1)")),
    Case("split ratio 1", "jaxrec train data.split.test=1", assemble_with("data.split.test=1"),
         ("split.test=1", "[0, 1)")),
    Case("negative split ratio", "jaxrec train data.split.valid=-0.1",
         assemble_with("data.split.valid=-0.1"), ("split.valid=-0.1",)),
    Case("eval.ks <= 0", "jaxrec train eval.ks=[0]", assemble_with("eval.ks=[0]"),
         ("eval.ks", "0")),
    Case("model.dim <= 0", "jaxrec train model.dim=0", assemble_with("model.dim=0"),
         ("model.dim", "0")),
    Case("fractional model.dim", "jaxrec train model.dim=2.5", assemble_with("model.dim=2.5"),
         ("model.dim", "2.5")),
    Case("batch size 0", "jaxrec train trainer.batch_size=0",
         assemble_with("trainer.batch_size=0"), ("trainer.batch_size", "0")),
    Case("unknown model keyword", "jaxrec train +model.dimm=4", assemble_with("+model.dimm=4"),
         ("dimm",)),
    Case("unknown key", "jaxrec data info ml-latest-small trainer.foo=1",
         lambda t: cli("data", "info", "ml-latest-small", "trainer.foo=1"), ("trainer.foo",)),
    Case("wrong type", "jaxrec data info ml-latest-small trainer.epochs=abc",
         lambda t: cli("data", "info", "ml-latest-small", "trainer.epochs=abc"),
         ("trainer.epochs", "abc")),
    Case("unknown model", "jaxrec data info ml-latest-small model=nosuch",
         lambda t: cli("data", "info", "ml-latest-small", "model=nosuch"), ("model", "nosuch")),
    Case("unknown loss", "jaxrec data info ml-latest-small loss=nosuch",
         lambda t: cli("data", "info", "ml-latest-small", "loss=nosuch"), ("loss", "nosuch")),
    Case("unknown dataset", "jaxrec data info nosuch", lambda t: cli("data", "info", "nosuch"),
         ("nosuch",)),
    Case("sweep option not a number", "jaxrec sweep S.yaml sweep.run_cap=abc",
         sweep_options("sweep.run_cap=abc"), ("sweep.run_cap=abc", "integer")),
    Case("unknown sweep option", "jaxrec sweep S.yaml sweep.runcap=3",
         sweep_options("sweep.runcap=3"), ("sweep.runcap",)),
]


def failure(case: Case, tmp: Path) -> str:
    """The one-line message ``case`` fails with (its SystemExit text, or its exception's)."""
    try:
        case.run(tmp)
    except SystemExit as err:
        return str(err.code)
    except Exception as err:  # noqa: BLE001 - the message is what is checked
        return str(err)
    raise AssertionError(f"{case.name}: no error")


@pytest.fixture(autouse=True)
def _no_env_data(monkeypatch):
    monkeypatch.delenv("JAXREC_DATA_DIR", raising=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_one_line(case, tmp_path):
    message = failure(case, tmp_path)
    assert "\n" not in message, message
    assert "Traceback" not in message
    for part in case.expect:
        assert part.format(tmp=tmp_path) in message, (part, message)


def test_batch_larger_than_the_data_is_allowed(tmp_path):
    """A batch size above the training rows is one padded batch per epoch, not an error."""
    run = assemble_with("trainer.batch_size=1000000")(tmp_path)
    assert run.trainer.batch_size > len(run.dataset.train)


def test_unreadable_file_names_it(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file")
    path = tmp_path / "r.csv"
    path.write_text("\n".join(GOOD) + "\n")
    path.chmod(0)
    try:
        message = failure(Case("unreadable", "", lambda t: table_info(t), ()), tmp_path)
    finally:
        path.chmod(0o644)
    assert "\n" not in message and str(path) in message
