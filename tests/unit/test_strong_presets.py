"""Strong-generalisation paper presets: EASE's fold-in scoring against numpy, user counts
in the strong split, and the paper_{multvae,multdae,ease}_ml-20m presets' contents."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from jaxrec.config import (  # noqa: E402
    EvalConfig,
    ReproduceConfig,
    SplitConfig,
    TrainerConfig,
    typed,  # noqa: E402
)
from jaxrec.data.datasets.synthetic import make_synthetic  # noqa: E402
from jaxrec.data.interactions import DataError  # noqa: E402
from jaxrec.data.pipeline import load_and_split  # noqa: E402
from jaxrec.data.splits import assign_parts, split, strong_split  # noqa: E402
from jaxrec.losses import NoLoss  # noqa: E402
from jaxrec.models.base import ModelContext  # noqa: E402
from jaxrec.paths import CONFIG_DIR  # noqa: E402
from tests.helpers import compose_train  # noqa: E402
from tests.unit.test_ease_ials import _numpy_ease  # noqa: E402  (float64 closed form)

PRESETS = ("paper_multvae_ml-20m", "paper_multdae_ml-20m", "paper_ease_ml-20m")
PUBLISHED = {  # Liang et al. 2018 Table 2 (ml-20m); Steck 2019 Table 1 (ml-20m)
    "paper_multvae_ml-20m": (0.395, 0.537, 0.426),
    "paper_multdae_ml-20m": (0.387, 0.524, 0.419),
    "paper_ease_ml-20m": (0.391, 0.521, 0.420),
}


def _dense(inter, num_users, num_items):
    x = np.zeros((num_users, num_items))
    x[inter.users, inter.items] = 1.0
    return x


# ---------------------------------------------------------------- EASE fold-in


def test_ease_fits_on_training_users_and_scores_new_histories_like_numpy():
    from jaxrec.metrics.protocols import build_evaluators
    from jaxrec.models import EASE
    from jaxrec.runner import fit_model

    inter = make_synthetic(num_users=70, num_items=30, interactions_per_user=9, seed=3)
    cfg = SplitConfig("strong", test=10, valid=8, seed=1)
    dataset = load_and_split(inter, {"implicit": True}, cfg)
    info, l2 = dataset.info, 5.0
    eval_cfg = EvalConfig(ks=[5, 10], metrics=["recall_min", "ndcg"], protocol="strong")
    evaluators = build_evaluators(dataset, eval_cfg, seed=0)
    result = fit_model(EASE(ModelContext(info), l2=l2, rngs=nnx.Rngs(0)), NoLoss(), dataset,
                       trainer=TrainerConfig(epochs=1, progress=False, save_checkpoint=False),
                       evaluators=evaluators)
    model = nnx.merge(result.graphdef, *result.state)

    # B from the training users' rows only (the held-out users' fold-in rows are not used)
    parts = strong_split(dataset.full, cfg)
    x_train = _dense(dataset.train, info.num_users, info.num_items)
    assert not x_train[np.unique(parts["test"].users)].any()
    want_b = _numpy_ease(x_train[x_train.any(1)], l2)
    np.testing.assert_allclose(model.weights_NxN[...], want_b, rtol=1e-4, atol=1e-5)
    leaked = _dense(dataset.full, info.num_users, info.num_items)  # + held-out users' rows
    assert np.abs(_numpy_ease(leaked, l2) - want_b).max() > 1e-3  # so the check can fail

    # a held-out user's scores: x_u B from the fold-in history, as training users are scored
    x_fold = _dense(parts["test_fold_in"], info.num_users, info.num_items)
    users = np.unique(parts["test_fold_in"].users)
    got = model.score_history(jax.numpy.asarray(x_fold[users], jax.numpy.float32))
    np.testing.assert_allclose(got, x_fold[users] @ want_b, rtol=1e-4, atol=1e-5)
    train_users = np.unique(dataset.train.users)[:5]
    np.testing.assert_allclose(model.score_all(jax.numpy.asarray(train_users)),
                               x_train[train_users] @ want_b, rtol=1e-4, atol=1e-5)
    assert result.metrics["test/ndcg@10"] > 0 and "test/recall_min@5" in result.metrics


# ---------------------------------------------------------------- user counts


def test_strong_split_takes_numbers_of_users():
    inter = make_synthetic(num_users=50, num_items=30, interactions_per_user=8, seed=0)
    parts = strong_split(inter, SplitConfig("strong", test=12, valid=7, seed=2))
    held_test = set(parts["test"].users.tolist()) | set(parts["test_fold_in"].users.tolist())
    held_valid = set(parts["valid"].users.tolist()) | set(parts["valid_fold_in"].users.tolist())
    assert (len(held_test), len(held_valid)) == (12, 7)
    assert len(np.unique(parts["train"].users)) == 50 - 12 - 7
    # a count and the fraction that rounds to it hold out the same users (same permutation)
    same = assign_parts(inter, SplitConfig("strong", test=0.24, valid=7 / 38, seed=2))
    np.testing.assert_array_equal(same, assign_parts(inter, SplitConfig("strong", test=12,
                                                                        valid=7, seed=2)))


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(method="strong", test=2.5), r"split.test=2.5: a number of held-out users must be whole"),
    (dict(method="strong", test=40, valid=11), r"test=40 and split.valid=11 hold out 51 users, "
                                               r"but only 50 have interactions"),
    (dict(method="random", test=2.0), r"split.test=2.0 must be in \[0, 1\)"),
    (dict(method="strong", valid=-1.0), r"split.valid=-1.0 must be in \[0, 1\)"),
])
def test_strong_split_count_errors(kwargs, message):
    inter = make_synthetic(num_users=50, num_items=30, interactions_per_user=8, seed=0)
    with pytest.raises(DataError, match=message):
        split(inter, SplitConfig(**kwargs))


# ---------------------------------------------------------------- presets


@pytest.mark.parametrize("preset", PRESETS)
def test_paper_preset_states_the_paper_protocol_and_numbers(preset, tmp_path):
    cfg = compose_train([f"experiment={preset}"], tmp_path)
    rep = typed(cfg, "reproduce", ReproduceConfig)
    eval_cfg = typed(cfg, "eval", EvalConfig)
    keys = ["test/recall_min@20", "test/recall_min@50", "test/ndcg@100"]
    produced = [f"test/{m}@{k}" for m in eval_cfg.metrics for k in eval_cfg.ks]
    assert set(keys) <= set(produced) and eval_cfg.protocol == "strong"
    assert [rep.published[k] for k in keys] == list(PUBLISHED[preset])
    assert sorted(rep.tolerance) == sorted(keys) and rep.dataset == "ml-20m"
    assert rep.paper and rep.protocol and rep.note
    assert (CONFIG_DIR / "data" / f"{rep.local_data}.yaml").is_file()
    assert cfg.trainer.monitor == "valid/ndcg@100"  # the papers select on NDCG@100

    data = cfg.data
    assert data.dataset.variant == "ml-20m"
    assert OmegaConf.to_container(data.preprocess) == {
        "rating_threshold": 4.0, "implicit": True, "min_user_interactions": 5,
        "min_item_interactions": 0, "dedup": "last"}
    assert (data.split.method, data.split.test, data.split.valid, data.split.fold_in) == (
        "strong", 10000, 10000, 0.8)
    # the local run: the command line's data= wins over the preset's override
    local = compose_train([f"experiment={preset}", f"data={rep.local_data}"], tmp_path)
    assert local.data.dataset.variant == "ml-latest-small"
    assert local.data.preprocess == data.preprocess and local.data.split.method == "strong"


def test_paper_hyperparameters(tmp_path):
    vae, dae, ease = (compose_train([f"experiment={p}"], tmp_path) for p in PRESETS)
    for cfg in (vae, dae):
        assert (cfg.trainer.batch_size, cfg.trainer.epochs, cfg.optim.name, cfg.optim.lr) == (
            500, 200, "adam", 0.001)
        assert cfg.model.dropout == 0.5 and cfg.model.latent == 200
    assert list(vae.model.hidden) == [600] and vae.model.variational
    assert (vae.loss.anneal_cap, vae.loss.total_anneal_steps) == (0.2, 200000)
    assert list(dae.model.hidden) == [] and not dae.model.variational
    assert dae.optim.weight_decay == pytest.approx(2 * 0.01 / 500)  # notebook: lam = 0.01 / 500
    assert ease.model.l2 == 500.0 and ease.trainer.epochs == 1
