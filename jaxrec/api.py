"""A short Python API for notebooks: run a config, load a run, recommend and score.

    import jaxrec

    results = jaxrec.run(["model=mf", "trainer.epochs=5"])      # = jaxrec train ...
    rec = jaxrec.Recommender.load(results["run_dir"])
    rec.recommend(user=1, k=10)              # DataFrame: item, title, score (unseen items)
    rec.recommend(history=[1, 50, 260])      # a live session (sequential, fold-in models)
    rec.recommend(user=1, history=[1, 50])   # the user's known sequence, then the session
    rec.score(users=[1, 1], items=[1, 50])   # model scores of (user, item) pairs
    rec.evaluate("eval.ks=[5,50]")           # like `jaxrec evaluate RUN eval.ks=[5,50]`

Ids are the dataset's raw ids (``"1"`` and ``1`` both match).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, open_dict


def compose(overrides: Sequence[str] = (), *, output_dir: str | Path | None = None
            ) -> DictConfig:
    """The training config ``jaxrec train <overrides>`` would run (checked against the
    typed schema). Its run folder is ``output_dir``, else the CLI's default
    ``outputs/<model>-<loss>/<date>/<time>`` under the working directory."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from jaxrec.config import register_configs
    from jaxrec.paths import CONFIG_DIR

    register_configs()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    if output_dir is None:
        now = datetime.now()
        output_dir = (Path("outputs") / f"{choices.model}-{choices.loss}"
                      / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S"))
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(Path(output_dir).absolute())
    return cfg


def run(overrides: Sequence[str] = (), *, output_dir: str | Path | None = None
        ) -> dict[str, Any]:
    """Train and evaluate one config, as ``jaxrec train <overrides>`` does; returns the
    contents of its ``results.json`` plus ``run_dir``."""
    from jaxrec.runner import train

    cfg = compose(overrides, output_dir=output_dir)
    return {**train(cfg), "run_dir": cfg.paths.output_dir}


class Recommender:
    """A trained run's best model, for recommendations and scores in Python."""

    def __init__(self, loaded):
        from flax import nnx

        self.loaded = loaded
        self.model = nnx.merge(loaded.graphdef, *loaded.state)

    @classmethod
    def load(cls, run_dir: str | Path, *eval_overrides: str) -> Recommender:
        """The run in ``run_dir``; ``eval_overrides`` (``eval.ks=[5,50]``, ``eval=beyond``)
        change what :meth:`evaluate` computes."""
        from jaxrec.assembly import load_run

        return cls(load_run(run_dir, eval_overrides=list(eval_overrides)))

    @property
    def dataset(self):
        return self.loaded.dataset

    def recommend(self, user: Any = None, k: int = 10, *, history: Sequence[Any] | None = None,
                  replace: bool = False, exclude_seen: bool = True):
        """The ``k`` best items for a known ``user`` (without the items they interacted
        with, in any split), or after a live session ``history`` of raw item ids in time
        order: sequential models (SASRec) score the next item after the user's known
        sequence with ``history`` appended (or ``history`` alone: no ``user``, or
        ``replace=True``); fold-in models (EASE, iALS, Mult-VAE) fold the user's items plus
        ``history`` in (`jaxrec.recommend.recommend_session`).

        Returns a DataFrame with columns ``item``, ``title`` and ``score``, best first.
        """
        import pandas as pd

        from jaxrec.recommend import item_indices, recommend, recommend_session, user_index

        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if user is None and history is None:
            raise ValueError("recommend: give a user, a history, or both")
        if history is None:
            rows = recommend(self.loaded, user, k, model=self.model, exclude_seen=exclude_seen)
        else:
            rows = recommend_session(
                self.loaded, item_indices(self.loaded, history), k, model=self.model,
                user=None if user is None else user_index(self.loaded, user), replace=replace,
                exclude_seen=exclude_seen)
        return pd.DataFrame(rows, columns=["item", "title", "score"])

    def score(self, users: Sequence[Any], items: Sequence[Any]) -> np.ndarray:
        """The model's scores of the (user, item) pairs, given as raw ids."""
        import jax.numpy as jnp

        from jaxrec.recommend import index_of

        train = self.dataset.train
        if len(users) != len(items):
            raise ValueError(f"score: {len(users)} users but {len(items)} items")
        rows = []
        for user in users:
            index = index_of(train.user_index, user)
            if index is None:
                raise ValueError(f"score: user {user!r} is not a user of "
                                 f"{self.dataset.info.name}")
            rows.append(index)
        return np.asarray(self.model(jnp.asarray(rows, jnp.int32),
                                     jnp.asarray(self._items(items), jnp.int32)))

    def evaluate(self, split: str = "all") -> dict[str, float]:
        """The run's metrics recomputed from the best checkpoint (``all``, ``valid`` or
        ``test``), under the evaluation overrides given to :meth:`load`."""
        from jaxrec.metrics.scoring import evaluate

        if split not in ("all", "valid", "test"):
            raise ValueError(f"evaluate: split must be all, valid or test, got {split!r}")
        run = self.loaded.run
        parts = {"valid": run.valid_evals, "test": run.test_evals}
        if split != "all" and not parts[split]:
            raise ValueError(f"run {self.loaded.run_dir} has no {split} split")
        metrics: dict[str, float] = {}
        for name, evaluators in parts.items():
            if split in ("all", name):
                metrics.update(evaluate(evaluators, self.loaded.graphdef, self.loaded.state))
        return metrics

    def _items(self, raw_items: Sequence[Any]) -> np.ndarray:
        from jaxrec.recommend import item_indices

        return item_indices(self.loaded, raw_items)
