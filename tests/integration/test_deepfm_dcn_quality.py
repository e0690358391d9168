"""DeepFM and DCN-V2 on the real ml-latest-small item cold-start split: scored from their
features, cold items are ranked clearly better than by popularity."""

import pytest

from tests.helpers import run_train

pytestmark = pytest.mark.slow
QUIET = ["trainer.progress=false", "trainer.save_checkpoint=false", "eval.save_per_user=false",
         "eval.metrics=[ndcg,recall]", "eval.ks=[10]"]
POPULARITY_COLD_NDCG = 0.071  # test/cold_item/ndcg@10 of experiment=popularity_cold_item


@pytest.mark.parametrize(("preset", "epochs", "margin"), [
    ("deepfm_cold_item", 6, 2.0),  # 6 epochs: 0.194 (the full preset, best epoch 10: 0.186)
    ("dcn_v2_cold_item", 6, 1.5),  # 6 epochs: 0.132 (= the full preset's best epoch)
])
def test_beats_popularity_on_cold_items(data_dir, tmp_path, preset, epochs, margin):
    # a fixed number of epochs, evaluated once at the end (no validation passes)
    res = run_train([f"experiment={preset}", f"paths.data_dir={data_dir}",
                     f"trainer.epochs={epochs}", f"trainer.eval_every={epochs}", *QUIET], tmp_path)
    assert res["metrics"]["test/cold_item/ndcg@10"] > margin * POPULARITY_COLD_NDCG, res["metrics"]
