"""``jaxrec sweep report`` on a Hydra multirun folder (``jaxrec train -m ...``): jobs are
trials, the overrides that differ are the swept parameters; and the report's plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrec.sweep.multirun import load_multirun
from jaxrec.sweep.report import ReportError, report

LRS, L2S = [0.002, 0.005, 0.02], [0.01, 0.1]


def write_multirun(root: Path, *, missing: int | None = None) -> dict[str, float]:
    """Job folders as Hydra and jaxrec write them; returns valid/rmse per job."""
    (root / "multirun.yaml").write_text("hydra: {}\n")
    want = {}
    for n, (lr, l2) in enumerate((lr, l2) for lr in LRS for l2 in L2S):
        job = root / str(n)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- data=synthetic\n- trainer.progress=False\n- optim.lr={lr}\n- loss.l2={l2}\n")
        if n == missing:
            continue
        rmse = 1.0 + abs(lr - 0.005) + l2 / 10
        want[str(n)] = rmse
        (job / "results.json").write_text(json.dumps({
            "monitor": "valid/rmse", "best_epoch": 3, "total_seconds": 2.5,
            "metrics": {"valid/rmse": rmse, "test/rmse": rmse + 0.01}}))
        (job / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "valid/rmse": rmse + 0.1 / s, "train/loss": 1.0 / s}) + "\n"
            for s in (1, 2, 3)))
    return want


def test_jobs_are_trials_and_differing_overrides_are_swept(tmp_path):
    want = write_multirun(tmp_path, missing=4)
    meta, frame = load_multirun(tmp_path)
    assert meta["metric"] == "valid/rmse" and meta["goal"] == "minimize"
    assert sorted(meta["swept"]) == ["loss.l2", "optim.lr"]
    assert sorted(meta["fixed"]) == ["data=synthetic", "trainer.progress=False"]
    assert frame["trial"].tolist() == [str(n) for n in range(6)]
    assert frame.set_index("trial")["optim.lr"].to_dict()["5"] == 0.02
    ok = frame[frame["status"] == "ok"].set_index("trial")["valid/rmse"].to_dict()
    assert ok == want
    assert frame.set_index("trial").loc["4", "status"] == "failed"
    text = report(tmp_path, plots=False)
    best = min(want, key=want.get)
    ranked_trials = [line.split()[0] for line in text.splitlines()[4:9]]
    assert ranked_trials[0] == best and sorted(ranked_trials) == sorted(want)
    assert "4: failed: no results.json" in text


def test_report_plots_a_heatmap_for_two_swept_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    write_multirun(tmp_path)
    text = report(tmp_path, plots=True)
    for name in ("metric_vs_params.png", "metric_heatmap.png", "learning_curves.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000, name
        assert name in text


def test_a_folder_that_is_neither_is_one_line(tmp_path):
    with pytest.raises(ReportError, match="has no study.json / results.csv"):
        report(tmp_path, plots=False)


@pytest.mark.slow
def test_a_real_multirun_is_reported(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "train", "-m", "data=synthetic",
                           "trainer.epochs=1", "model.dim=4", "trainer.progress=false",
                           "eval.save_per_user=false", "optim.lr=0.005,0.05",
                           f"hydra.sweep.dir={tmp_path / 'mr'}"], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-m", "jaxrec.cli", "sweep", "report",
                           str(tmp_path / "mr"), "--no-plots"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(hydra multirun): 2 trials, 2 ok; valid/rmse" in proc.stdout
    results = {n: json.loads((tmp_path / "mr" / n / "results.json").read_text())["metrics"]
               for n in ("0", "1")}
    best = min(results, key=lambda n: results[n]["valid/rmse"])
    first_row = proc.stdout.splitlines()[4].split()
    assert first_row[0] == best and float(first_row[2]) == pytest.approx(
        results[best]["valid/rmse"], rel=1e-3)
