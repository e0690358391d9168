"""scripts/bench_train.py: argument parsing, table and doc formatting, one tiny real run.

Nothing here asserts on wall-clock time (benchmarks only report it).
"""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_train"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_train", None)


def fake_run(spe: float, *, key: str = "test/rmse", value: float = 0.85, batch: int = 4096,
             compile_s: float = 1.0) -> dict:
    return {"seconds_per_epoch": spe, "compile_seconds": compile_s, "eval_seconds": 0.02,
            "eval_users": 544, "rank_all_seconds": 0.03, "rank_all_users": 610,
            "num_users": 610, "num_items": 9724, "peak_rss_mb": 500.0, "test_key": key,
            "test_value": value, "test_rmse": value if key == "test/rmse" else None,
            "best_epoch": 20, "epochs_run": 20, "train_rows": 76636, "batch_size": batch,
            "optim": "adam lr 0.005, loss l2 0.12", "model": "MF", "dim": 64,
            "split_digest": "abc", "device": "cpu"}


def rows_for(bench):
    by_key = {c.key: c for c in bench.CONFIGS}
    return [(by_key["mf-mse"], bench.summarise([fake_run(s) for s in (0.03, 0.02, 0.05)])),
            (by_key["mf-mse-b1024"], bench.summarise([fake_run(0.06, batch=1024)])),
            (by_key["mf-bpr"], bench.summarise([fake_run(0.1, key="test/ndcg@10", value=0.2,
                                                         compile_s=70.0)]))]


def test_parse_args_defaults_and_choices(bench):
    args = bench.parse_args([])
    assert (args.repeats, args.epochs, args.peer_factors, args.write) == (3, 20, 64, False)
    assert args.worker is None and args.only is None
    args = bench.parse_args(["--repeats", "1", "--only", "mf-mse", "mf-bpr", "--no-peer"])
    assert args.only == ["mf-mse", "mf-bpr"] and args.no_peer
    assert bench.parse_args(["--worker", "loss=bpr"]).worker == ["loss=bpr"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "nope"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])


def test_summary_is_the_median_and_the_table_shows_it(bench):
    rows = rows_for(bench)
    assert rows[0][1]["seconds_per_epoch"] == pytest.approx(0.03)
    assert (rows[0][1]["spe_min"], rows[0][1]["spe_max"]) == (0.02, 0.05)
    table = bench.format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "| 30.0 (20.0-50.0) |" in lines[2]
    assert "test/ndcg@10 0.2000" in lines[4]


def test_findings_compare_with_targets_and_peer(bench):
    rows = rows_for(bench)
    peer = bench.summarise([{"surprise_version": "1.1.5", "seconds_per_epoch": 0.04,
                             "fit_seconds": 0.8, "test_rmse": 0.9, "test_rmse_clipped": 0.89,
                             "train_rows": 76636, "test_rows": 20167, "peak_rss_mb": 300.0}])
    peer["split_check"] = "digest abc matches"
    text = bench.format_findings(rows, peer, "", epochs=20, factors=64)
    assert "batch 4096) <= 45 ms: 30.0 ms median, meets it" in text
    assert "batch 1024) <= 45 ms: 60.0 ms median, MISSES it" in text
    assert "30.0 ms, meets it" in text and "610 users x 9,724 items" in text
    assert "Compile outlier: mf/bpr" in text
    assert "seconds per epoch 0.75 on medians (jaxrec faster)" in text
    assert "seconds per epoch 1.50 on medians (Surprise faster)" in text
    missing = bench.format_findings(rows, None, "scikit-surprise could not be installed",
                                    epochs=20, factors=64)
    assert "Peer: scikit-surprise could not be installed" in missing
    assert "Ratio" not in missing


def test_replace_section_keeps_other_sections(bench):
    section = bench.render_section(command="python scripts/bench_train.py", machine={
        "nproc": "2", "cpu": "cpu", "jax": "0", "python": "3", "load": (1.0, 1.0, 1.0)},
        table="| t |", findings="- f", epochs=20, repeats=3, load_end=(1.0, 1.0, 1.0))
    assert section.startswith(bench.MARK_START) and section.endswith(bench.MARK_END)
    fresh = bench.replace_section("", section)
    assert fresh.startswith("# Benchmarks") and fresh.count(bench.MARK_START) == 1
    other = "\n## Sweeps\n\n<!-- sweeps:start -->\nsweep table\n<!-- sweeps:end -->\n"
    doc = fresh + other
    updated = bench.replace_section(doc, section.replace("| t |", "| new |"))
    assert "| new |" in updated and "| t |" not in updated
    assert updated.endswith(other) and updated.count(bench.MARK_START) == 1
    appended = bench.replace_section("# Benchmarks\n" + other, section)
    assert appended.index("sweep table") < appended.index(bench.MARK_START)


@pytest.mark.slow  # one real (tiny) training run: ~5-15 s with the evaluators' compiles
def test_measure_on_synthetic_data(bench, tmp_path):
    result = bench.measure(["data=synthetic", "model.dim=4", "trainer.batch_size=512"],
                           epochs=2, output_dir=str(tmp_path), rank_repeats=1)
    assert result["epochs_run"] == 2 and result["batch_size"] == 512 and result["dim"] == 4
    assert result["test_key"] == "test/rmse" and result["test_value"] > 0
    assert 0 < result["rank_all_users"] <= result["num_users"]
    for key in ("seconds_per_epoch", "compile_seconds", "eval_seconds", "rank_all_seconds",
                "peak_rss_mb"):
        assert result[key] > 0
    assert bench.format_table([(bench.CONFIGS[0], bench.summarise([result]))]).count("\n") == 2


def test_bench_content_tables_per_split():
    spec = importlib.util.spec_from_file_location("bench_content", SCRIPT.parent /
                                                  "bench_content.py")
    content = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(content)
    assert content.preset("mf", "warm") == "mf_bpr_ml-latest-small"
    assert content.preset("hybrid", "cold_item") == "hybrid_cold_item"
    for name in content.MODELS:  # every listed model has a preset for every split
        for split in content.SPLITS:
            assert (SCRIPT.parents[1] / "configs" / "experiment" /
                    f"{content.preset(name, split)}.yaml").exists(), (name, split)
    row = {"sec_epoch": 1.5, "epochs": 3, "best": 2, "notes": []}
    rows = [{**row, "name": "mf", "split": "cold_item", "cold_ndcg": float("nan"),
             "cold_recall": float("nan"), "ndcg": 0.2, "recall": 0.1,
             "notes": ["MF cannot score cold items"]},
            {**row, "name": "hybrid", "split": "warm", "cold_ndcg": None, "cold_recall": None,
             "ndcg": 0.25, "recall": 0.2},
            {"name": "tfidf", "split": "warm", "error": "ValueError: boom"}]
    text = content.section(rows)
    assert "### Item cold start" in text and "### Warm split" in text
    assert "| mf | unable | unable | 0.200 | 0.100 | 1.5 | 3 (2) |" in text
    assert ("| hybrid | 0.250 | 0.200 | 1.5 | 3 (2) | `jaxrec train experiment=hybrid_warm` |"
            in text)
    assert "| tfidf | error: ValueError: boom | | | | | `jaxrec train experiment=tfidf_warm` |" \
        in text
    assert "Note: MF cannot score cold items" in text
    assert text.startswith(content.MARK_START) and text.endswith(content.MARK_END)


def test_bench_sequential_table_section_and_reuse(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_sequential", SCRIPT.parent /
                                                  "bench_sequential.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [{"row": r, "overrides": " ".join(bench.ROWS[r]), "ndcg10": v, "hit10": 2 * v,
             "valid_ndcg10": None, "ndcg10_train_input": None, "epochs_run": 3,
             "best_epoch": 2, "train_seconds": 1.0,
             "test_input": "train+valid"} for r, v in (("popularity", 0.01), ("sasrec_gbce", 0.03))]
    table = bench.format_table(rows)
    assert table.index("sasrec_gbce") < table.index("popularity")  # best first
    section = bench.render_section(command="python scripts/bench_sequential.py", machine="m",
                                   table=table)
    assert section.startswith("<!-- bench_sequential:start -->")
    assert section.endswith("<!-- bench_sequential:end -->")
    assert not bench.same_config(tmp_path / "missing", bench.ROWS["popularity"])


def test_zoo_speed_findings_compare_per_epoch_with_implicit():
    spec = importlib.util.spec_from_file_location(
        "bench_zoo", SCRIPT.parent / "bench_zoo.py")
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    row = {"model": "MF", "dim": 64, "batch_size": 4096, "negatives": 4, "ndcg10": 0.27,
           "process_seconds": 12.0}
    rows = [{**row, "preset": "mf_bpr", "seconds_per_epoch": 0.05},
            {**row, "preset": "ials", "model": "IALS", "seconds_per_epoch": 0.2},
            {**row, "preset": "ease", "model": "EASE", "eval_seconds": 0.5}]
    peer = {"factors": 64, "ndcg10": 0.25, "fit_on": "train"}
    peers = [{**peer, "algo": "BPR", "seconds_per_iteration": 0.1},
             {**peer, "algo": "ALS", "seconds_per_iteration": 0.1},
             {**peer, "algo": "ALS", "fit_on": "train+valid", "seconds_per_iteration": 9.0}]
    text = "\n".join(zoo.speed_findings(rows, peers))
    assert "50.0 ms vs 100.0 ms per epoch, 0.50x (target <= 1x: met)" in text
    assert "200.0 ms vs 100.0 ms per epoch, 2.00x (target <= 1.5x: not met)" in text
    assert "EASE validation pass" in text and "0.500 s (target <= 0.3 s: not met)" in text
    assert "mf_bpr 12.0 s, ials 12.0 s, ease 12.0 s" in text
    # iALS at its own dimension and CG steps: the speed fit is timed against it
    rows[1].update(dim=128, cg_steps=4)
    assert zoo.speed_fits(rows, 64) == "ALS:128:4"
    peers.append({**peer, "algo": "ALS", "fit_on": "train (speed)", "factors": 128,
                  "cg_steps": 4, "seconds_per_iteration": 0.4})
    text = "\n".join(zoo.speed_findings(rows, peers))
    assert "dim 128 / 128 factors" in text and "200.0 ms vs 400.0 ms per epoch, 0.50x" in text
    assert "(4 / 4 conjugate-gradient steps)" in text
    # BPR: the one-negative timing row replaces the preset's
    fast = {**rows[0], "negatives": 1, "seconds_per_epoch": 0.02,
            "overrides": ["loss.num_negatives=1"]}
    text = "\n".join(zoo.speed_findings(rows, peers, [fast]))
    assert "20.0 ms vs 100.0 ms per epoch, 0.20x (target <= 1x: met)" in text
    assert "1 negatives per positive, batch 4096, the preset with loss.num_negatives=1" in text


def test_sweep_section_marks_the_per_trial_target():
    spec = importlib.util.spec_from_file_location("bench_sweep", SCRIPT.parent / "bench_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    results = {"sequential": (32.0, 0.84, "a"), "single": (4.0, 0.85, "b"),
               "vectorised": (16.0, 0.84, "c")}
    text = sweep.render(results, 16, "cpu", [], "sequential,single,vectorised")
    assert "--modes sequential,single,vectorised --write" in text
    assert "2.00 s vs 4.00 s, 0.50x (target <= 1.3x: met)" in text
    assert "All 16 trials vectorised take 4.0x one trial alone" in text
