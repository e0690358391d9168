"""GMF / MLP / NeuMF and LightGCN on real data, on a shortened budget (slow tier).

The full presets (``configs/experiment/{gmf,mlp,neumf,lightgcn}_ml-latest-small.yaml``)
take minutes; these runs cut their epochs and check what a short run must already
show on ml-latest-small (implicit, per-user 80/20, seed 0): LightGCN well above the
popularity baseline (test NDCG@10 0.183, Recall@20 0.119), and NeuMF started from
trained GMF and MLP run directories (the paper's pre-training, through
``model.pretrained_gmf`` / ``model.pretrained_mlp``) at least as good as either
branch alone. Together ~60 s on a 2-core CPU.
"""

import pytest

from tests.helpers import run_train

pytestmark = pytest.mark.slow

POPULARITY = {"test/ndcg@10": 0.183, "test/recall@20": 0.119}


def _train(preset, out, *overrides):
    res = run_train([f"experiment={preset}_ml-latest-small", "trainer.progress=false",
                     *overrides], out)
    assert res["data"]["users"] == 610 and res["data"]["items"] == 9724
    return res["metrics"]


def test_lightgcn_short_run_beats_popularity(data_dir, tmp_path):
    m = _train("lightgcn", tmp_path, "trainer.epochs=15", "trainer.eval_every=5",
               "trainer.save_checkpoint=false")
    # measured: 0.2634 / 0.1849 (the full preset: 0.301 / 0.231)
    assert m["test/ndcg@10"] >= 0.253, m
    assert m["test/recall@20"] >= 0.175, m
    for key, value in POPULARITY.items():
        assert m[key] > value + 0.05, (key, m[key])


def test_neumf_from_pretrained_gmf_and_mlp_runs(data_dir, tmp_path):
    gmf = _train("gmf", tmp_path / "gmf", "model.dim=128", "trainer.epochs=12")
    mlp = _train("mlp", tmp_path / "mlp", "trainer.epochs=8")
    neumf = _train("neumf", tmp_path / "neumf", "model.gmf_dim=128", "optim.lr=0.001",
                   "trainer.epochs=3", "trainer.save_checkpoint=false",
                   f"model.pretrained_gmf={tmp_path / 'gmf'}",
                   f"model.pretrained_mlp={tmp_path / 'mlp' / 'checkpoints' / 'best'}")
    # measured valid / test NDCG@10: GMF 0.1131 / 0.2403, MLP 0.0911 / 0.1906,
    # NeuMF 0.1161 / 0.2424 (test Recall@20 0.1640, 0.1367, 0.1753)
    for key in ("valid/ndcg@10", "test/ndcg@10", "test/recall@20"):
        assert neumf[key] >= max(gmf[key], mlp[key]) - 0.005, (key, gmf[key], mlp[key],
                                                                neumf[key])
    for key, value in POPULARITY.items():
        assert neumf[key] > value + 0.05, (key, neumf[key])
