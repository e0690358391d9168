"""The paper_{multvae,multdae,ease}_ml-20m presets end to end on a tiny ml-20m-format dataset.

The data has two taste groups of 60 movies each; every user rates 25 movies of their
group 4-5 stars and 5 movies of the other group 0.5-3 stars (dropped by the paper's
``rating > 3.5``), and three users have only 3 positives (dropped by ``>= 5``). Each
preset runs with its own data config (``data=ml-20m-strong``), only the user counts,
the epochs and the widths shrunk (slow tier, well under a minute on a 2-core CPU).
"""

import math

import numpy as np
import pytest

from tests.helpers import run_train
from tests.unit.test_data_movielens import write_csv_variant

pytestmark = pytest.mark.slow

GROUP_ITEMS, USERS_PER_GROUP, HELD_OUT = 60, 50, 20
KEYS = ("test/recall_min@20", "test/recall_min@50", "test/ndcg@100")
SHRINK = {
    "paper_ease_ml-20m": [],
    "paper_multvae_ml-20m": ["model.hidden=[32]", "model.latent=16", "trainer.batch_size=20",
                             "trainer.epochs=20", "trainer.eval_every=10", "optim.lr=0.01"],
    "paper_multdae_ml-20m": ["model.latent=16", "trainer.batch_size=20", "trainer.epochs=20",
                             "trainer.eval_every=10", "optim.lr=0.01"],
}


@pytest.fixture(scope="module")
def ml20m_dir(tmp_path_factory):
    """``<dir>/ml-20m/{ratings,movies}.csv`` and the users / movies the paper's filter keeps."""
    rng = np.random.default_rng(0)
    rows, positives = ["userId,movieId,rating,timestamp"], {}
    for user in range(1, 2 * USERS_PER_GROUP + 4):
        group = user % 2
        mine = group * GROUP_ITEMS + 1 + rng.choice(GROUP_ITEMS, 3 if user > 2 *
                                                    USERS_PER_GROUP else 25, replace=False)
        other = (1 - group) * GROUP_ITEMS + 1 + rng.choice(GROUP_ITEMS, 5, replace=False)
        for movie in mine:
            rows.append(f"{user},{movie},{rng.choice([4.0, 4.5, 5.0])},{1000 + len(rows)}")
        for movie in other:
            rows.append(f"{user},{movie},{rng.choice([0.5, 2.0, 3.0, 3.5])},{1000 + len(rows)}")
        positives[user] = set(mine.tolist())
    movies = ["movieId,title,genres"] + [f"{m},Movie {m} (2000),Drama"
                                         for m in range(1, 2 * GROUP_ITEMS + 1)]
    root = tmp_path_factory.mktemp("data")
    write_csv_variant(root, "ml-20m", ratings=rows, movies=movies, tags=[])
    kept = {u: items for u, items in positives.items() if len(items) >= 5}
    return root, len(kept), len(set().union(*kept.values()))


@pytest.mark.parametrize("preset", sorted(SHRINK))
def test_paper_preset_runs_end_to_end(preset, ml20m_dir, tmp_path):
    root, num_users, num_items = ml20m_dir
    res = run_train([f"experiment={preset}", f"paths.data_dir={root}",
                     f"paths.cache_dir={tmp_path / 'cache'}", f"data.split.test={HELD_OUT}",
                     f"data.split.valid={HELD_OUT}", "trainer.save_checkpoint=false",
                     "trainer.progress=false", *SHRINK[preset]], tmp_path / "run")
    assert res["data"]["name"] == "ml-20m"
    assert (res["data"]["users"], res["data"]["items"]) == (num_users, num_items)
    assert res["protocol"] == "strong"
    assert res["protocol_details"]["held_out_users"] == {"test": HELD_OUT, "valid": HELD_OUT}
    # each held-out user has 25 kept movies: floor(0.2 * 25) = 5 targets (none dropped here,
    # every movie has some training user)
    assert res["data"]["test"] == res["data"]["valid"] == 5 * HELD_OUT
    m = res["metrics"]
    assert all(math.isfinite(m[k]) and 0.0 <= m[k] <= 1.0 for k in KEYS), m
    # 5 targets among the ~100 unseen movies: random recall_min@20 ~ 0.2; the user's own
    # group (~40 unseen): ~0.5
    assert m["test/recall_min@20"] > 0.33, m
