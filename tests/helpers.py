"""Compose and run configs from tests (no Hydra runtime needed)."""

from __future__ import annotations

from jaxrec.api import compose

# the sequential models at test size (their configs read the last 200 items)
TINY_MODELS = {"bert4rec": {"dim": 16, "ffn_dim": 32, "max_len": 8},
               "gru4rec": {"dim": 16, "max_len": 8},
               "hstu": {"dim": 16, "attention_dim": 16, "linear_dim": 16, "max_len": 8},
               "sasrec": {"max_len": 8}}


def compose_train(overrides: list[str], output_dir) -> object:
    return compose(["logger.console=false", *overrides], output_dir=output_dir)


def run_train(overrides: list[str], output_dir) -> dict:
    from jaxrec.runner import train

    return train(compose_train(overrides, output_dir))


def device_data(users, items, *, num_users: int, num_items: int, ratings=None,
                rows: str = "interactions", pool=None):
    """`jaxrec.data.device.TrainData` for training rows given as index arrays (tests)."""
    import numpy as np

    from jaxrec.data.device import train_data
    from jaxrec.data.interactions import Interactions

    users = np.asarray(users, np.int32)
    items = np.asarray(items, np.int32)
    ratings = np.ones(len(users), np.float32) if ratings is None else np.asarray(
        ratings, np.float32)
    inter = Interactions(users=users, items=items, ratings=ratings,
                         timestamps=np.zeros(len(users), np.int64),
                         user_ids=np.arange(num_users), item_ids=np.arange(num_items))
    pool = np.arange(num_items, dtype=np.int32) if pool is None else np.asarray(pool, np.int32)
    return train_data(inter, pool, rows=rows)


def build(cfg):
    """``(dataset, model, loss)`` of a composed config, as the run assembly builds them."""
    from jaxrec.assembly import assemble

    run = assemble(cfg, evaluate=False, training=False)
    return run.dataset, run.model, run.loss
