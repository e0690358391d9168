"""End-to-end quality on real MovieLens data (slow tier; runs in CI).

Stated targets (issue #2): the default config reaches test RMSE <= 0.850 on the
random 80/20 split of ml-latest-small (Surprise's SVD: 0.873); seed_concat is
about 0.88; mf/bpr on the implicit per-user 80/20 split reaches full-ranking
NDCG@10 and Recall@20 in the range of a tuned BPR-MF.
"""

import pytest

from tests.helpers import run_train

pytestmark = pytest.mark.slow


def test_default_config_reaches_rmse_target(data_dir, tmp_path):
    res = run_train([], tmp_path)
    assert res["data"]["users"] == 610 and res["data"]["items"] == 9724
    assert res["metrics"]["test/rmse"] <= 0.850, res["metrics"]["test/rmse"]
    assert res["metrics"]["test/mae"] < 0.67


def test_seed_concat_rmse(data_dir, tmp_path):
    res = run_train(["model=seed_concat"], tmp_path)
    assert res["metrics"]["test/rmse"] < 0.90, res["metrics"]["test/rmse"]


def test_mf_bpr_full_ranking(data_dir, tmp_path):
    # measured 0.271 / 0.201 with this preset; popularity reaches 0.183 / 0.119
    res = run_train(["experiment=mf_bpr_ml-latest-small"], tmp_path)
    m = res["metrics"]
    assert res["monitor"] == "valid/ndcg@10"
    assert m["test/ndcg@10"] >= 0.26, m
    assert m["test/recall@20"] >= 0.19, m
