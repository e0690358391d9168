"""GMF, MLP, NeuMF (He et al. 2017) and LightGCN (He et al. 2020).

Beyond tests/unit/test_models.py (which builds every model without a graph):
LightGCN's propagation against a dense numpy reference, scoring and training
with a real graph, NeuMF's pre-trained initialisation (in memory and from run
directories), and ``jaxrec.train.build`` handing the training split to LightGCN.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from omegaconf import OmegaConf

from jaxrec.losses import BCE, BPR
from jaxrec.models import GMF, NCFMLP, LightGCN, NeuMF
from jaxrec.models.base import ModelContext
from jaxrec.models.lightgcn import normalized_edges
from jaxrec.training.step import epoch_order, init_state, make_epoch_fn, make_train_step
from jaxrec.types import DataInfo
from tests.helpers import compose_train, device_data

INFO = DataInfo(num_users=9, num_items=14, num_train=60, rating_mean=1.0, rating_min=1.0,
                rating_max=1.0, implicit=True, name="tiny")


class Edges:  # the two fields LightGCN reads from an Interactions
    def __init__(self, users, items):
        self.users, self.items = np.asarray(users, np.int32), np.asarray(items, np.int32)


def _graph(rng, n=60):
    users = rng.integers(0, INFO.num_users - 1, n)  # the last user stays isolated
    items = rng.integers(0, INFO.num_items - 1, n)  # and so does the last item
    users[:3], items[:3] = 0, 5  # duplicate pairs count once
    return Edges(users, items)


def _dense_lightgcn(user_emb, item_emb, users, items, num_layers):
    """Reference: E^(k+1) = D^-1/2 A D^-1/2 E^(k) with a dense (U+N)^2 adjacency."""
    nu, ni = user_emb.shape[0], item_emb.shape[0]
    r = np.zeros((nu, ni))
    r[users, items] = 1.0
    a = np.block([[np.zeros((nu, nu)), r], [r.T, np.zeros((ni, ni))]])
    deg = a.sum(1)
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    a_hat = inv_sqrt[:, None] * a * inv_sqrt[None, :]
    e = np.concatenate([user_emb, item_emb]).astype(np.float64)
    layers = [e]
    for _ in range(num_layers):
        layers.append(a_hat @ layers[-1])
    final = np.mean(layers, axis=0)
    return final[:nu], final[nu:]


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_lightgcn_propagation_matches_dense_reference(num_layers):
    graph = _graph(np.random.default_rng(0))
    model = LightGCN(ModelContext(INFO, train=graph), dim=5, num_layers=num_layers, init_std=1.0,
                     rngs=nnx.Rngs(0))
    users_UxD, items_NxD = jax.jit(lambda m: m.propagate())(model)
    ref_u, ref_i = _dense_lightgcn(np.asarray(model.user_emb_UxD[...]),
                                   np.asarray(model.item_emb_NxD[...]),
                                   graph.users, graph.items, num_layers)
    np.testing.assert_allclose(users_UxD, ref_u, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(items_NxD, ref_i, rtol=1e-5, atol=1e-5)
    # isolated nodes keep E^(0) / (K + 1)
    np.testing.assert_allclose(users_UxD[-1], model.user_emb_UxD[...][-1] / (num_layers + 1),
                               rtol=1e-6)


@pytest.mark.parametrize("chunk", [None, 0, 1, 7, 64])
def test_edge_sum_matches_a_dense_product_and_its_gradient(chunk):
    from jaxrec.models.layers.ops import edge_sum

    rng = np.random.default_rng(2)
    src, dst = rng.integers(0, 9, 40), rng.integers(0, 5, 40)
    weight = rng.random(40).astype(np.float32)
    table = rng.normal(size=(9, 3)).astype(np.float32)
    dense = np.zeros((5, 9), np.float32)
    np.add.at(dense, (dst, src), weight)

    def f(t):
        return edge_sum(t, jnp.asarray(src), jnp.asarray(dst), jnp.asarray(weight), 5,
                        chunk=chunk)

    np.testing.assert_allclose(jax.jit(f)(jnp.asarray(table)), dense @ table, rtol=1e-5,
                               atol=1e-5)
    cot = rng.normal(size=(5, 3)).astype(np.float32)
    grad = jax.grad(lambda t: jnp.sum(f(t) * cot))(jnp.asarray(table))
    np.testing.assert_allclose(grad, dense.T @ cot, rtol=1e-5, atol=1e-5)


def test_lightgcn_symmetric_gradient_equals_autodiff():
    from jaxrec.models.lightgcn import EDGE_KEYS, _layers, _propagate

    graph = _graph(np.random.default_rng(3))
    model = LightGCN(ModelContext(INFO, train=graph), dim=4, num_layers=2, init_std=1.0,
                     rngs=nnx.Rngs(0))
    g = {key: getattr(model, f"{key}_E")[...] for key in EDGE_KEYS}
    u0, i0 = model.user_emb_UxD[...], model.item_emb_NxD[...]
    rng = np.random.default_rng(4)
    cu, ci = rng.normal(size=u0.shape), rng.normal(size=i0.shape)

    def loss(fn):
        return lambda u, i: jnp.sum(jnp.tanh(fn(u, i)[0]) * cu) + jnp.sum(fn(u, i)[1] ** 2 * ci)

    want = jax.grad(loss(lambda u, i: _layers(u, i, g, 2)), argnums=(0, 1))(u0, i0)
    got = jax.jit(jax.grad(loss(lambda u, i: _propagate(u, i, g, 2)), argnums=(0, 1)))(u0, i0)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_normalized_edges_dedups_and_weights():
    e = normalized_edges(np.array([0, 0, 0, 1]), np.array([2, 2, 1, 2]), 3, 4)
    np.testing.assert_array_equal(e["by_user_users"], [0, 0, 1])
    np.testing.assert_array_equal(e["by_user_items"], [1, 2, 2])
    np.testing.assert_allclose(e["by_user_weight"], [1 / np.sqrt(2 * 1), 1 / np.sqrt(2 * 2),
                                                     1 / np.sqrt(1 * 2)], rtol=1e-6)
    np.testing.assert_array_equal(e["by_item_items"], [1, 2, 2])
    with pytest.raises(ValueError, match="model.train"):
        normalized_edges(np.array([3]), np.array([0]), 3, 4)


def _models():
    graph = _graph(np.random.default_rng(1))
    return {
        "gmf": GMF(ModelContext(INFO), dim=6, rngs=nnx.Rngs(0)),
        "mlp": NCFMLP(ModelContext(INFO), dim=4, hidden=[8, 4], init_std=0.3, rngs=nnx.Rngs(0)),
        "neumf": NeuMF(ModelContext(INFO), gmf_dim=3, mlp_dim=4, hidden=[6, 2], init_std=0.3,
                       rngs=nnx.Rngs(0)),
        "lightgcn": LightGCN(ModelContext(INFO, train=graph), dim=6, num_layers=2,
                             rngs=nnx.Rngs(0)),
    }


@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf", "lightgcn"])
def test_shapes_and_score_all_match_pairwise(name):
    model = _models()[name]
    users_U = jnp.array([0, 4, 8], jnp.int32)
    all_UxN = model.score_all(users_U)
    assert all_UxN.shape == (3, INFO.num_items)
    items_UxN = jnp.broadcast_to(jnp.arange(INFO.num_items), (3, INFO.num_items))
    np.testing.assert_allclose(all_UxN, model(users_U[:, None], items_UxN), rtol=1e-5,
                               atol=1e-6)
    assert model(users_U, users_U).shape == (3,)
    assert model(users_U[:, None], items_UxN[:, :4]).shape == (3, 4)
    assert np.ptp(np.asarray(all_UxN)) > 0  # not constant
    assert all(r.shape[0] == 3 for r in model.l2_rows(users_U, users_U))


def _implicit_data(rng, graph):
    u, i = graph.users, graph.items
    keys = np.unique(u.astype(np.int64) * INFO.num_items + i)
    u, i = (keys // INFO.num_items).astype(np.int32), (keys % INFO.num_items).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=INFO.num_users))])
    return {"users": u, "items": i, "ratings": np.ones(len(u), np.float32),
            "indptr": indptr.astype(np.int32), "indices": i}


@pytest.mark.parametrize(("name", "loss"), [("gmf", BCE(num_negatives=4)),
                                            ("mlp", BCE(num_negatives=4)),
                                            ("neumf", BCE(num_negatives=4)),
                                            ("lightgcn", BPR(num_negatives=1, l2=1e-4))])
def test_a_few_steps_lower_the_loss(name, loss):
    rng = np.random.default_rng(0)
    graph = _graph(np.random.default_rng(1))  # the graph LightGCN propagates over
    implicit = _implicit_data(rng, graph)
    data = device_data(implicit["users"], implicit["items"], num_users=INFO.num_users,
                       num_items=INFO.num_items)
    model = _models()[name]
    tx = optax.adam(0.05)
    graphdef, state = init_state(model, tx)
    epoch = make_epoch_fn(make_train_step(graphdef, loss, tx))
    n = data["users"].shape[0]
    losses = []
    for e in range(12):
        perm, mask = epoch_order(rng, n, 16)
        state, value = epoch(state, data, {}, perm, mask, jax.random.key(e))
        losses.append(float(value))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses


@pytest.mark.parametrize("alpha", [0.5, 0.2])
def test_neumf_init_from_gmf_and_mlp_reproduces_the_combined_score(alpha):
    gmf = GMF(ModelContext(INFO), dim=3, init_std=0.5, rngs=nnx.Rngs(1))
    mlp = NCFMLP(ModelContext(INFO), dim=4, hidden=[6, 2], init_std=0.5, rngs=nnx.Rngs(2))
    gmf.out_bias[...] = jnp.asarray(0.3)
    mlp.out_bias[...] = jnp.asarray(-0.7)
    neumf = NeuMF(ModelContext(INFO), gmf_dim=3, mlp_dim=4, hidden=[6, 2], rngs=nnx.Rngs(3))
    neumf.init_from(gmf, mlp, alpha=alpha)
    users_U = jnp.arange(INFO.num_users)
    expected_UxN = alpha * gmf.score_all(users_U) + (1 - alpha) * mlp.score_all(users_U)
    np.testing.assert_allclose(neumf.score_all(users_U), expected_UxN, rtol=1e-5, atol=1e-6)
    items = jnp.array([0, 5, 13], jnp.int32)
    np.testing.assert_allclose(neumf(users_U[:3], items),
                               alpha * gmf(users_U[:3], items) + (1 - alpha) * mlp(users_U[:3],
                                                                                  items),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="model.gmf_dim"):
        NeuMF(ModelContext(INFO), gmf_dim=5, mlp_dim=4, hidden=[6, 2],
              rngs=nnx.Rngs(3)).init_from(gmf, mlp)
    with pytest.raises(ValueError, match="model.mlp_dim / model.hidden"):
        NeuMF(ModelContext(INFO), gmf_dim=3, mlp_dim=4, hidden=[6, 3],
              rngs=nnx.Rngs(3)).init_from(gmf, mlp)


SYNTHETIC = ["data=synthetic", "data.dataset.num_users=20", "data.dataset.num_items=25",
             "data.dataset.interactions_per_user=6", "loss=bce"]


def _fake_run(tmp_path, name, overrides, seed):
    """A run directory as ``jaxrec train`` leaves it: config.yaml, data.json and
    checkpoints/best."""
    from jaxrec.data.fingerprint import fingerprint
    from jaxrec.io import atomic_write_json
    from jaxrec.training.checkpoint import save_params
    from tests.helpers import build

    run_dir = tmp_path / name
    cfg = compose_train([*SYNTHETIC, *overrides], run_dir)
    dataset, model, _ = build(cfg)
    params = nnx.state(model, nnx.Param)
    params = jax.tree.map(lambda x: x + 0.2 * jax.random.normal(jax.random.key(seed), x.shape),
                          params)  # "trained": anything but the fresh initialisation
    nnx.update(model, params)
    run_dir.mkdir()
    atomic_write_json(run_dir / "data.json", fingerprint(dataset))
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.to_container(cfg,
                                                                                  resolve=True)))
    save_params(run_dir / "checkpoints" / "best", params)
    return run_dir, model


@pytest.mark.slow  # three assembled runs; end to end in test_ncf_lightgcn_quality.py too
def test_neumf_loads_pretrained_runs(tmp_path):
    from tests.helpers import build

    gmf_dir, gmf = _fake_run(tmp_path, "gmf", ["model=gmf", "model.dim=3"], 1)
    mlp_dir, mlp = _fake_run(tmp_path, "mlp", ["model=mlp", "model.dim=4", "model.hidden=[4,2]"],
                             2)
    neumf_over = [*SYNTHETIC, "model=neumf", "model.gmf_dim=3", "model.mlp_dim=4",
                  "model.hidden=[4,2]"]
    cfg = compose_train([*neumf_over, f"model.pretrained_gmf={gmf_dir}",
                         f"model.pretrained_mlp={mlp_dir}/checkpoints/best"], tmp_path / "n")
    dataset, neumf, _ = build(cfg)
    users_U = jnp.arange(dataset.info.num_users)
    np.testing.assert_allclose(neumf.score_all(users_U),
                               0.5 * gmf.score_all(users_U) + 0.5 * mlp.score_all(users_U),
                               rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match="give both"):
        build(compose_train([*neumf_over, f"model.pretrained_gmf={gmf_dir}"], tmp_path / "n"))
    with pytest.raises(ValueError, match="expected NCFMLP"):
        build(compose_train([*neumf_over, f"model.pretrained_gmf={gmf_dir}",
                             f"model.pretrained_mlp={gmf_dir}"], tmp_path / "n"))
    with pytest.raises(ValueError, match="other data"):
        build(compose_train([*neumf_over, "data.dataset.num_users=21",
                             f"model.pretrained_gmf={gmf_dir}",
                             f"model.pretrained_mlp={mlp_dir}"], tmp_path / "n"))
    with pytest.raises(ValueError, match="not a jaxrec run"):
        build(compose_train([*neumf_over, f"model.pretrained_gmf={tmp_path}",
                             f"model.pretrained_mlp={mlp_dir}"], tmp_path / "n"))


def test_build_gives_lightgcn_the_training_graph(tmp_path):
    from tests.helpers import build

    dataset, model, _ = build(compose_train([*SYNTHETIC, "model=lightgcn", "model.dim=4",
                                             "loss=bpr"], tmp_path))
    train = dataset.train
    pairs = np.unique(train.users.astype(np.int64) * train.num_items + train.items)
    assert model.by_user_users_E[...].shape == (len(pairs),)
    ref_u, ref_i = _dense_lightgcn(np.asarray(model.user_emb_UxD[...]),
                                   np.asarray(model.item_emb_NxD[...]), train.users,
                                   train.items, model.num_layers)
    users_UxD, items_NxD = model.propagate()
    np.testing.assert_allclose(users_UxD, ref_u, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(items_NxD, ref_i, rtol=1e-4, atol=1e-5)
