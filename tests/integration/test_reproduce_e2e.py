"""Every paper preset end to end through scripts/reproduce.py's entry point, on tiny data
written in the paper dataset's own file format.

Presets are globbed (``configs/experiment/paper_*.yaml``), so a new one is covered
without editing this file. For each, a tiny dataset in its loader's original format
(MovieLens ml-100k ``u.data``/``u.item``/``u.user``, ml-1m ``ratings.dat``/``movies.dat``/
``users.dat``, the CSV variants ``ratings.csv``/``movies.csv``, NCF's three files) is
written under ``paths.data_dir``, and the preset runs with tiny overrides (one epoch,
4-8 wide layers, held-out user counts as fractions, two folds) in this process; the
table must carry the published numbers and a finite jaxrec value per metric.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxrec import reproduce

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PRESETS = reproduce.paper_presets()
NUM_USERS, NUM_ITEMS = 60, 150


def _ratings(rng, *, half_stars: bool, density: float = 0.35):
    """(user, item, rating, timestamp) rows, 1-based ids; most ratings high (k-cores hold)."""
    rows = []
    for u in range(1, NUM_USERS + 1):
        items = rng.choice(np.arange(1, NUM_ITEMS + 1), int(density * NUM_ITEMS), replace=False)
        for i in items:
            r = rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.05, 0.2, 0.4, 0.3])
            if half_stars and rng.random() < 0.3:
                r -= 0.5
            rows.append((u, int(i), r, int(rng.integers(9e8, 1e9))))
    return rows


def write_movielens(root: Path, variant: str, rng) -> None:
    folder = root / variant
    folder.mkdir(parents=True, exist_ok=True)
    genres = ["Action", "Comedy", "Drama"]
    if variant == "ml-100k":
        rows = _ratings(rng, half_stars=False)
        (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
        (folder / "u.item").write_text("".join(
            f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|" + "|".join(
                "1" if g == 1 + i % 3 else "0" for g in range(19)) + "\n"
            for i in range(1, NUM_ITEMS + 1)), encoding="latin-1")
        (folder / "u.user").write_text("".join(f"{u}|{20 + u % 40}|{'MF'[u % 2]}|writer|0{u:04d}\n"
                                               for u in range(1, NUM_USERS + 1)))
    elif variant == "ml-1m":
        rows = _ratings(rng, half_stars=False)
        (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n"
                                                    for u, i, r, t in rows))
        (folder / "movies.dat").write_text("".join(
            f"{i}::Movie {i} (1995)::{genres[i % 3]}\n" for i in range(1, NUM_ITEMS + 1)),
            encoding="latin-1")
        (folder / "users.dat").write_text("".join(f"{u}::{'MF'[u % 2]}::25::4::0{u:04d}\n"
                                                  for u in range(1, NUM_USERS + 1)))
    else:  # ml-latest-small, ml-20m, ml-25m: CSV
        rows = _ratings(rng, half_stars=True)
        (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
            f"{u},{i},{float(r)},{t}\n" for u, i, r, t in rows))
        (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
            f"{i},Movie {i} (1995),{genres[i % 3]}\n" for i in range(1, NUM_ITEMS + 1)))


def write_ncf(root: Path, dataset: str, rng) -> None:
    """NCF's files: 0-based ids, latest rating per user in .test.rating, 99 negatives."""
    folder = root / "ncf"
    folder.mkdir(parents=True, exist_ok=True)
    train, test, negatives = [], [], []
    for u in range(NUM_USERS):
        items = rng.choice(NUM_ITEMS, 20, replace=False)
        times = np.sort(rng.choice(10**6, 20, replace=False)) + 9 * 10**8
        train += [f"{u}\t{i}\t4\t{t}\n" for i, t in zip(items[:-1], times[:-1], strict=True)]
        test.append(f"{u}\t{items[-1]}\t5\t{times[-1]}\n")
        free = np.setdiff1d(np.arange(NUM_ITEMS), items)
        negs = rng.choice(free, 99, replace=False)
        negatives.append(f"({u},{items[-1]})\t" + "\t".join(map(str, negs)) + "\n")
    (folder / f"{dataset}.train.rating").write_text("".join(train))
    (folder / f"{dataset}.test.rating").write_text("".join(test))
    (folder / f"{dataset}.test.negative").write_text("".join(negatives))


def write_dataset(cfg, root: Path, rng) -> None:
    """The files of ``cfg.data.dataset``'s loader, in its original format, under ``root``."""
    target = str(cfg.data.dataset._target_)
    if target.endswith("load_movielens"):
        write_movielens(root, str(cfg.data.dataset.variant), rng)
    elif target.endswith("load_ncf"):
        write_ncf(root, str(cfg.data.dataset.dataset), rng)
    else:
        pytest.fail(f"{target}: add a tiny-data writer for this loader to {__file__}")


def tiny_overrides(cfg) -> list[str]:
    """One epoch, narrow layers, fractions instead of user counts, at most two folds."""
    out = ["trainer.epochs=1", "trainer.patience=0", "logger.console=false",
           "eval.save_per_user=false"]
    for key, value in cfg.model.items():
        if (key.endswith("dim") or key == "latent") and isinstance(value, int):
            out.append(f"model.{key}=4")
        elif key == "hidden" and value is not None and len(value) > 0:
            out.append(f"model.{key}=[8]")
    for key in ("test", "valid"):
        if cfg.data.split.get(key) is not None and cfg.data.split[key] >= 1:
            out.append(f"data.split.{key}=0.2")  # a number of held-out users, too many here
    if cfg.reproduce.folds > 1:
        out.append("reproduce.folds=2")
    return out


def published_rows(out_dir: Path) -> list[dict]:
    return json.loads((out_dir / "reproduce.json").read_text())["rows"]


@pytest.mark.parametrize("preset", PRESETS)
def test_paper_preset_end_to_end(preset, tmp_path):
    data_dir = tmp_path / "data"
    base = [f"paths.data_dir={data_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    cfg, _ = reproduce.compose(preset, base)
    block = reproduce.reproduce_block(cfg, preset)
    write_dataset(cfg, data_dir, np.random.default_rng(0))
    sets = [a for o in base + tiny_overrides(cfg) for a in ("--set", o)]
    out = tmp_path / "out"
    assert reproduce.main([preset, "--in-process", "--out", str(out), *sets]) == 0
    rows = published_rows(out)
    assert [r["metric"] for r in rows] == list(block.published)
    for row in rows:
        assert row["published"] == block.published[row["metric"]]
        assert row["jaxrec_mean"] is not None and math.isfinite(row["jaxrec_mean"]), row
        assert row["folds"] == min(block.folds, 2) and row["paper_dataset"] == block.dataset
        assert row["verdict"].startswith(("yes", "no", "n/a (no tolerance)"))
        assert row["protocol"].split(",")[0] in ("full_ranking", "sampled", "strong", "rating")
    results = json.loads(next((out / "runs").glob(f"{preset}/*/results.json")).read_text())
    assert rows[0]["protocol"] == reproduce.protocol_of(results, cfg.data.split.method,
                                                        rows[0]["metric"])


def test_script_runs_a_local_preset_in_subprocesses(tmp_path):
    """scripts/reproduce.py itself: --local swaps the data, each run is its own process."""
    data_dir = tmp_path / "data"
    write_movielens(data_dir, "ml-latest-small", np.random.default_rng(1))
    doc = tmp_path / "benchmarks.md"
    sets = ["paths.data_dir=" + str(data_dir), f"paths.cache_dir={tmp_path / 'cache'}",
            "model.l2=50"]
    cmd = [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "paper_recbole_ease_ml-1m",
           "--local", "--out", str(tmp_path / "out"), "--write", "--doc", str(doc),
           *[a for o in sets for a in ("--set", o)]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "JAXREC_DATA_DIR": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "n/a (other dataset)" in proc.stdout
    (row,) = published_rows(tmp_path / "out")
    assert row["dataset_run"] == "ml-latest-small-recbole" and row["published"] == 0.2865
    assert (tmp_path / "out" / "runs" / "paper_recbole_ease_ml-1m-local" / "run" /
            "train.log").is_file()
    assert "<!-- reproduce:start -->" in doc.read_text()
