"""Significance tests, Holm, bootstrap and `jaxrec compare` against scipy.stats and numpy."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from jaxrec.cli import main as cli_main
from jaxrec.compare import compare, find_runs, format_report, group_systems, load_run
from jaxrec.stats import bootstrap_ci, holm, paired_tests, significance_marker


def holm_loop(p):
    """Holm's step-down procedure as textbooks state it, one rejection step at a time."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * p[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize("seed", range(3))
def test_paired_tests_match_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.random(60)
    b = a - 0.05 * rng.random(60) + 0.02 * rng.normal(size=60)
    res = paired_tests(a, b)
    t, w = stats.ttest_rel(a, b), stats.wilcoxon(a, b)
    assert res.n == 60 and res.mean_diff == pytest.approx(np.mean(a - b))
    assert res.t_statistic == pytest.approx(t.statistic) and res.t_pvalue == pytest.approx(t.pvalue)
    assert res.wilcoxon_statistic == pytest.approx(w.statistic)
    assert res.wilcoxon_pvalue == pytest.approx(w.pvalue)
    # with ties and zero differences (binary hit@k values), as scipy computes it
    ha, hb = (rng.random(200) < 0.4).astype(float), (rng.random(200) < 0.3).astype(float)
    res = paired_tests(ha, hb)
    assert res.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(ha, hb).pvalue)
    assert res.t_pvalue == pytest.approx(stats.ttest_rel(ha, hb).pvalue)


def test_paired_tests_edge_cases():
    same = paired_tests(np.ones(5), np.ones(5))
    assert same.t_pvalue == 1.0 and same.wilcoxon_pvalue == 1.0
    assert np.isnan(paired_tests(np.ones(1), np.zeros(1)).t_pvalue)
    shifted = paired_tests(np.arange(10.0) + 1, np.arange(10.0))
    assert shifted.t_pvalue == 0.0 and shifted.wilcoxon_pvalue < 0.01
    with pytest.raises(ValueError, match="same length"):
        paired_tests(np.ones(3), np.ones(4))


def test_holm_against_the_step_down_loop():
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 12):
        p = rng.random(m) ** 3
        np.testing.assert_allclose(holm(p), holm_loop(list(p)))
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    got = holm([0.01, np.nan, 0.02])
    assert np.isnan(got[1]) and got[[0, 2]].tolist() == pytest.approx([0.02, 0.02])
    assert [significance_marker(p) for p in (0.0001, 0.005, 0.03, 0.2, np.nan)] == [
        "***", "**", "*", "", ""]


def test_bootstrap_ci_agrees_with_a_numpy_bootstrap():
    x = np.random.default_rng(1).exponential(size=300)
    low, high = bootstrap_ci(x, n_resamples=20_000, seed=0)
    rng = np.random.default_rng(1)  # the percentile bootstrap written out, another stream
    means = x[rng.integers(0, len(x), (20_000, len(x)))].mean(1)
    ref_low, ref_high = np.quantile(means, [0.025, 0.975])
    se = x.std() / np.sqrt(len(x))
    assert abs(low - ref_low) < 0.05 * se and abs(high - ref_high) < 0.05 * se
    assert low < x.mean() < high
    assert bootstrap_ci(np.array([0.3])) == (0.3, 0.3)
    assert all(np.isnan(bootstrap_ci(np.array([]))))


def fake_run(path, *, model, seed, per_user, protocol="full_ranking", users=None, lr=0.01,
             metrics=None):
    """A run dir as `jaxrec train` writes it, without training."""
    path.mkdir(parents=True)
    config = {"seed": seed, "name": None, "model": {"_target_": f"jaxrec.models.{model}"},
              "optim": {"lr": lr}, "data": {"split": {"seed": seed}},
              "paths": {"output_dir": str(path)}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    users = np.arange(len(per_user)) if users is None else users
    frame = pd.DataFrame({"user_id": users, "user": users, "test/ndcg@10": per_user})
    frame.to_parquet(path / "per_user_test.parquet")
    results = {"metrics": {"test/ndcg@10": float(np.mean(per_user)), "test/coverage@10": 0.1 +
                           seed / 100, **(metrics or {})}, "monitor": "valid/ndcg@10",
               "protocol": protocol}
    (path / "results.json").write_text(json.dumps(results))


@pytest.fixture()
def study(tmp_path):
    """Three models x three seeds; B is A plus a clear gain, C is A plus noise."""
    rng = np.random.default_rng(0)
    base = rng.random(80)
    values = {}
    for seed in range(3):
        noise = 0.02 * rng.normal(size=80)
        values[("A", seed)] = base + noise
        values[("B", seed)] = base + noise + 0.05 + 0.01 * rng.normal(size=80)
        values[("C", seed)] = base + noise + 0.01 * rng.normal(size=80)
    for (model, seed), v in values.items():
        fake_run(tmp_path / f"study_{model}" / "trials" / f"t{seed}", model=model, seed=seed,
                 per_user=v)
    return tmp_path, values


def test_compare_groups_seeds_and_matches_scipy(study):
    root, values = study
    runs = [load_run(d, str(root)) for d in find_runs(root)]
    systems = group_systems(runs)
    assert [s.label for s in systems] == ["model=A", "model=B", "model=C"]
    assert [sorted(s.seeds) for s in systems] == [[0, 1, 2]] * 3
    report = compare(systems, ["test/ndcg@10", "test/coverage@10"], n_resamples=2000)
    assert report["ci"] == "seeds" and report["protocol"] == "full_ranking"
    block = report["metrics"]["test/ndcg@10"]
    mean_a = np.mean([values[("A", s)] for s in range(3)], axis=0)
    mean_b = np.mean([values[("B", s)] for s in range(3)], axis=0)
    run_means = [values[("A", s)].mean() for s in range(3)]
    row_a = block["systems"][0]
    assert row_a["mean"] == pytest.approx(np.mean(run_means))
    assert row_a["std"] == pytest.approx(np.std(run_means, ddof=1))
    assert row_a["ci_low"] <= row_a["mean"] <= row_a["ci_high"]
    ab = block["pairs"][0]
    assert (ab["a"], ab["b"], ab["units"], ab["users"]) == ("model=A", "model=B", "users", 80)
    assert ab["t_p"] == pytest.approx(stats.ttest_rel(mean_a, mean_b).pvalue)
    assert ab["wilcoxon_p"] == pytest.approx(stats.wilcoxon(mean_a, mean_b).pvalue)
    for test in ("t_p", "wilcoxon_p"):
        np.testing.assert_allclose([p[f"{test}_holm"] for p in block["pairs"]],
                                   holm_loop([p[test] for p in block["pairs"]]))
    # coverage has no per-user values: seed-level statistics only, no paired test
    cov = report["metrics"]["test/coverage@10"]
    assert cov["systems"][0]["mean"] == pytest.approx(0.11)
    assert np.isnan(cov["pairs"][0]["t_p"])
    assert block["higher_is_better"] and block["best"] == "model=B"
    assert ab["better"] == "model=B" and cov["pairs"][0]["better"] is None
    text = format_report(report)
    assert "model=A vs model=B" in text and "***" in text and "Holm" in text
    assert "## test/ndcg@10 (higher is better)" in text and "model=B (best)" in text


def test_compare_reads_each_metric_direction(tmp_path):
    for model, rmse in (("A", 0.9), ("B", 0.8)):
        fake_run(tmp_path / model, model=model, seed=0, per_user=np.ones(5),
                 metrics={"test/rmse": rmse})
    runs = [load_run(d, str(tmp_path)) for d in find_runs(tmp_path)]
    report = compare(group_systems(runs), ["test/rmse"], ci="seeds", n_resamples=100)
    block = report["metrics"]["test/rmse"]
    assert not block["higher_is_better"] and block["best"] == "model=B"
    assert "## test/rmse (lower is better)" in format_report(report)
    with pytest.raises(ValueError, match="metric key 'test/auc@10': unknown metric 'auc'"):
        compare(group_systems(runs), ["test/auc@10"])


def test_compare_cli_by_arg_and_errors(study, tmp_path, capsys):
    root, _ = study
    out = tmp_path / "cmp.json"
    cli_main(["compare", str(root / "study_A"), str(root / "study_B"), "-m", "ndcg@10",
              "--resamples", "500", "--json", str(out)])
    printed = capsys.readouterr().out  # named by the config keys that differ
    assert "## test/ndcg@10" in printed and "model=A vs model=B" in printed
    assert json.loads(out.read_text())["metrics"]["test/ndcg@10"]["pairs"][0]["t_p_holm"] < 1e-3
    pytest.importorskip("matplotlib")
    cli_main(["compare", str(root / "study_A"), str(root / "study_B"), "-m", "ndcg@10",
              "--resamples", "200", "--plot", str(tmp_path / "cmp.png")])
    assert f"plot: {tmp_path / 'cmp.png'}" in capsys.readouterr().out
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    cli_main(["compare", str(root / "study_A" / "trials" / "t0"),
              str(root / "study_A" / "trials" / "t1"), "--by-arg", "--resamples", "200"])
    assert "t0 vs t1" in capsys.readouterr().out  # one system per directory, CI over users
    fake_run(tmp_path / "sampled", model="A", seed=0, per_user=np.ones(80), protocol="sampled")
    with pytest.raises(SystemExit, match="different protocols"):
        cli_main(["compare", str(root / "study_A"), str(tmp_path / "sampled")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no run"):
        cli_main(["compare", str(tmp_path / "empty")])


def test_disjoint_users_pair_on_seed_and_user(tmp_path):
    """Strong generalisation holds out other users per seed: pairs are (seed, user)."""
    rng = np.random.default_rng(2)
    for model, shift in (("A", 0.0), ("B", 0.1)):
        for seed in range(2):
            users = np.arange(30) + 100 * seed
            fake_run(tmp_path / model / str(seed), model=model, seed=seed,
                     per_user=rng.random(30) + shift, users=users)
    runs = [load_run(d, str(tmp_path)) for d in find_runs(tmp_path)]
    report = compare(group_systems(runs), ["test/ndcg@10"], ci="users", n_resamples=500)
    pair = report["metrics"]["test/ndcg@10"]["pairs"][0]
    assert pair["units"] == "seed x user" and pair["users"] == 60
    row = report["metrics"]["test/ndcg@10"]["systems"][0]
    assert row["users"] == 60 and row["ci_low"] < row["mean"] < row["ci_high"]


def test_config_labels_name_classes_and_hide_their_keys():
    from jaxrec.compare.runs import _config_labels

    configs = [{"model._target_": "m.MF", "model.dim": 64, "loss._target_": "l.BPR",
                "optim.lr": 0.01},
               {"model._target_": "m.MF", "model.dim": 32, "loss._target_": "l.BPR",
                "optim.lr": 0.01},
               {"model._target_": "m.Popularity", "loss._target_": "l.NoLoss",
                "optim.lr": 0.003}]
    assert _config_labels(configs) == ["loss=BPR model=MF model.dim=64 optim.lr=0.01",
                                       "loss=BPR model=MF model.dim=32 optim.lr=0.01",
                                       "loss=NoLoss model=Popularity optim.lr=0.003"]
