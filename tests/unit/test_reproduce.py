"""jaxrec.reproduce: aggregation over folds, tolerance verdicts, the table and its files,
the reproduce block's checks, and main() with the training replaced by canned results."""

from __future__ import annotations

import csv
import json
import math

import pytest
from omegaconf import OmegaConf

from jaxrec import reproduce
from jaxrec.config import ReproduceConfig
from jaxrec.io import atomic_write_json
from jaxrec.reproduce import PresetRun, ReproduceError

BLOCK = ReproduceConfig(paper="Someone 2020, Table 1", protocol="leave-one-out, 99 negatives",
                        dataset="ml-1m", published={"test/hit@10": 0.730, "test/ndcg@10": 0.447},
                        tolerance={"test/hit@10": 0.02}, folds=3, local_data="tiny")


def fake_run(values: list[dict[str, float]], *, local=False, error=None) -> PresetRun:
    return PresetRun(preset="paper_x", reproduce=BLOCK, dataset_run="ncf-ml-1m", local=local,
                     results=[{"metrics": v, "protocol": "sampled"} for v in values],
                     run_dirs=[f"run{k}" for k in range(len(values))], overrides=[],
                     split_method="predefined", error=error)


FOLDS = [{"test/hit@10": 0.72, "test/ndcg@10": 0.44}, {"test/hit@10": 0.75, "test/ndcg@10": 0.45},
         {"test/hit@10": 0.78, "test/ndcg@10": 0.43}]


def test_mean_std_is_the_population_std():
    mean, std = reproduce.mean_std([0.9, 1.0, 1.1])
    assert mean == pytest.approx(1.0) and std == pytest.approx(math.sqrt(0.02 / 3))
    assert reproduce.mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        reproduce.mean_std([])


@pytest.mark.parametrize(("value", "expected"), [(0.745, True), (0.715, True), (0.7451, False),
                                                 (0.7149, False), (0.730, True)])
def test_within_tolerance_is_inclusive(value, expected):
    assert reproduce.within_tolerance(value, 0.730, 0.015) is expected


def test_rows_average_the_folds_and_judge_the_mean():
    hit, ndcg = reproduce.rows_of(fake_run(FOLDS))
    assert (hit.metric, hit.folds, hit.protocol) == ("test/hit@10", 3, "sampled, split=predefined")
    assert hit.mean == pytest.approx(0.75) and hit.std == pytest.approx(math.sqrt(0.0006))
    assert hit.delta == pytest.approx(0.02) and hit.within is True
    assert hit.verdict() == "yes (±0.02)"
    assert ndcg.mean == pytest.approx(0.44) and ndcg.delta == pytest.approx(-0.007)
    assert ndcg.within is None and ndcg.verdict() == "n/a (no tolerance)"
    # just outside: 0.76 - 0.73 = 0.03 > 0.02
    far = reproduce.rows_of(fake_run([{"test/hit@10": 0.76, "test/ndcg@10": 0.4}]))[0]
    assert far.within is False and far.verdict() == "no (±0.02)" and far.std == 0.0


def test_local_rows_are_not_judged_and_failures_show():
    hit, _ = reproduce.rows_of(fake_run(FOLDS, local=True))
    assert hit.within is None and hit.verdict() == "n/a (other dataset)"
    assert hit.mean == pytest.approx(0.75)  # the number is still reported
    failed, _ = reproduce.rows_of(fake_run([], error="exit 1: boom"))
    assert failed.mean is None and failed.delta is None and failed.verdict() == "failed"
    assert reproduce.fmt_value(failed) == "failed: exit 1: boom"


def test_missing_published_metric_is_an_error():
    with pytest.raises(ReproduceError, match=r"run1 has no metric 'test/ndcg@10'.*fix reproduce"):
        reproduce.rows_of(fake_run([FOLDS[0], {"test/hit@10": 0.7}]))


def test_markdown_table_cells():
    rows = reproduce.rows_of(fake_run(FOLDS))
    lines = reproduce.markdown_table(rows).splitlines()
    assert lines[0] == ("| preset | paper dataset | dataset run | protocol | metric | published "
                        "| jaxrec | delta | within tolerance |")
    assert lines[2] == ("| paper_x | ml-1m | ncf-ml-1m | sampled, split=predefined | test/hit@10 "
                        "| 0.7300 | 0.7500 ± 0.0245 (3 folds) | +0.0200 | yes (±0.02) |")
    one = reproduce.rows_of(fake_run([FOLDS[0]]))[1]
    assert reproduce.table_cells(one)[6:8] == ["0.4400", "-0.0070"]
    text = reproduce.text_table(rows).splitlines()
    assert len(text) == 3 and text[0].startswith("preset") and "0.7500 ± 0.0245" in text[1]


def test_write_outputs_md_csv_json(tmp_path):
    runs = [fake_run(FOLDS)]
    rows = reproduce.rows_of(runs[0])
    paths = reproduce.write_outputs(tmp_path, rows, runs, command="python scripts/reproduce.py x")
    md = paths["md"].read_text()
    assert "python scripts/reproduce.py x" in md and "| paper_x |" in md
    assert "Someone 2020, Table 1. Protocol: leave-one-out, 99 negatives." in md
    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert [r["metric"] for r in table] == ["test/hit@10", "test/ndcg@10"]
    assert float(table[0]["jaxrec_mean"]) == pytest.approx(0.75)
    assert table[0]["within_tolerance"] == "True" and table[1]["within_tolerance"] == ""
    data = json.loads(paths["json"].read_text())
    assert data["rows"][0]["protocol"] == "sampled, split=predefined"
    assert data["runs"][0]["protocol"] == ["sampled"] * 3
    assert data["runs"][0]["reproduce"]["published"]["test/ndcg@10"] == 0.447
    if paths.get("png"):  # with matplotlib (the sweep extra): published vs jaxrec
        assert paths["png"].name == "reproduce.png" and paths["png"].stat().st_size > 1000


def test_section_replaces_only_its_markers(tmp_path):
    from jaxrec import benchmarks

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n")
    rows = reproduce.rows_of(fake_run(FOLDS))
    for _ in range(2):  # the second write replaces the first
        section = reproduce.render_section(rows, [fake_run(FOLDS)], command="cmd",
                                           machine="Machine: test.")
        benchmarks.write_section(doc, section, reproduce.SECTION)
    text = doc.read_text()
    assert "keep me" in text and text.count("<!-- reproduce:start -->") == 1
    assert "## Paper reproductions" in text and "| paper_x |" in text


def test_run_overrides_local_and_fold():
    assert reproduce.run_overrides(BLOCK, "p", local=False, extra=["a=1"], fold=2) == [
        *reproduce.RUN_OVERRIDES, "a=1", "data.split.fold=2"]
    local = reproduce.run_overrides(BLOCK, "p", local=True)
    assert local[-2:] == ["data=tiny", "eval.negatives_file=null"]
    with pytest.raises(ReproduceError, match="p: reproduce.local_data is empty"):
        reproduce.run_overrides(ReproduceConfig(paper="x"), "p", local=True)


def block_of(**reproduce_node):
    return reproduce.reproduce_block(OmegaConf.create({"reproduce": reproduce_node}), "p")


def test_reproduce_block_checks():
    ok = block_of(paper="x", published={"test/rmse": 0.9}, tolerance={"test/rmse": 0.01})
    assert ok.published == {"test/rmse": 0.9} and ok.folds == 1
    for node, message in [
        ({"paper": ""}, "p has no reproduce.paper"),
        ({"paper": "x"}, "reproduce.published is empty"),
        ({"paper": "x", "published": 0.9}, "reproduce.published must map metric keys"),
        ({"paper": "x", "published": {"test/rmse": "high"}}, "'test/rmse' must be a number"),
        ({"paper": "x", "published": {"a": 1.0}, "tolerance": {"b": 0.1}},
         "tolerance has 'b', which is not in reproduce.published"),
        ({"paper": "x", "published": {"a": 1.0}, "tolerance": {"a": -0.1}}, "must be >= 0"),
        ({"paper": "x", "published": {"a": 1.0}, "folds": 0}, "reproduce.folds=0"),
    ]:
        with pytest.raises(ReproduceError, match=message):
            block_of(**node)


def test_preset_without_a_paper_and_unknown_preset_fail(tmp_path, capsys):
    with pytest.raises(ReproduceError, match="experiment=mf_ml-latest-small has no "
                                             "reproduce.paper"):
        reproduce.run_preset("mf_ml-latest-small", out_dir=tmp_path)
    assert reproduce.main(["paper_nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'paper_nope'" in err and "paper_recbole_ease_ml-1m" in err
    assert reproduce.main(["paper_recbole_ease_ml-1m", "--set", "trainer.epochz=1",
                           "--out", str(tmp_path)]) == 2
    assert "epochz" in capsys.readouterr().err


def test_paper_presets_are_found():
    presets = reproduce.paper_presets()
    assert {"paper_ncf_neumf_ml-1m", "paper_ncf_mf_ml-1m", "paper_recbole_bpr_ml-1m",
            "paper_recbole_neumf_ml-1m", "paper_recbole_ease_ml-1m"} <= set(presets)
    assert all(p.startswith("paper_") for p in presets)


def test_main_runs_each_fold_and_writes_the_table(tmp_path, monkeypatch, capsys):
    """Training replaced by canned results: fold k reports ndcg 0.28 + 0.01 k."""
    calls = []

    def fake(preset, overrides, run_dir):
        fold = next(int(o.split("=")[1]) for o in overrides if o.startswith("data.split.fold="))
        calls.append((preset, overrides, run_dir))
        return {"metrics": {"test/ndcg@10": 0.28 + 0.01 * fold}, "protocol": "full_ranking"}

    monkeypatch.setattr(reproduce.runs, "_run_in_process", fake)
    doc = tmp_path / "benchmarks.md"
    status = reproduce.main(["paper_recbole_ease_ml-1m", "--in-process", "--local",
                             "--set", "reproduce.folds=3", "--out", str(tmp_path / "out"),
                             "--write", "--doc", str(doc)])
    assert status == 0
    assert [c[2].name for c in calls] == ["fold0", "fold1", "fold2"]
    assert all("data=ml-latest-small-recbole" in c[1] and "reproduce.folds=3" in c[1]
               for c in calls)
    out = capsys.readouterr().out
    assert "0.2900 ± 0.0082 (3 folds)" in out and "n/a (other dataset)" in out
    rows = json.loads((tmp_path / "out" / "reproduce.json").read_text())["rows"]
    assert rows[0]["jaxrec_mean"] == pytest.approx(0.29)
    assert rows[0]["dataset_run"] == "ml-latest-small-recbole"
    assert "| paper_recbole_ease_ml-1m | ml-1m | ml-latest-small-recbole |" in doc.read_text()


def test_main_reports_a_failed_run_and_goes_on(tmp_path, monkeypatch, capsys):
    def fake(preset, overrides, run_dir):
        if "ease" in preset:
            raise RuntimeError("exit 1: out of memory")
        return {"metrics": {"test/ndcg@10": 0.25}, "protocol": "full_ranking"}

    monkeypatch.setattr(reproduce.runs, "_run_in_process", fake)
    status = reproduce.main(["paper_recbole_ease_ml-1m", "paper_recbole_bpr_ml-1m",
                             "--in-process", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "failed: exit 1: out of memory" in out and "yes (±0.015)" in out  # 0.25 vs 0.2523


def test_rating_metrics_name_the_rating_protocol():
    results = {"protocol": "full_ranking"}
    assert reproduce.protocol_of(results, "kfold", "test/rmse") == "rating, split=kfold"
    assert reproduce.protocol_of(results, "kfold", "test/mae") == "rating, split=kfold"
    assert reproduce.protocol_of(results, "kfold", "test/ndcg@10") == "full_ranking, split=kfold"
    assert reproduce.protocol_of(results) == "full_ranking"


def test_resume_reuses_only_finished_runs_of_the_same_overrides(tmp_path, monkeypatch):
    trained = []

    def fake_subprocess(preset, overrides, run_dir):
        trained.append(run_dir.name)
        atomic_write_json(run_dir / "results.json",
                          {"metrics": {"test/ndcg@10": 0.3}, "protocol": "full_ranking"})
        return {"metrics": {"test/ndcg@10": 0.3}, "protocol": "full_ranking"}

    monkeypatch.setattr(reproduce.runs, "_run_subprocess", fake_subprocess)
    preset = "paper_recbole_ease_ml-1m"
    reproduce.run_preset(preset, out_dir=tmp_path, local=True)
    assert trained == ["run"]
    again = reproduce.run_preset(preset, out_dir=tmp_path, local=True, resume=True)
    assert trained == ["run"] and again.results[0]["metrics"]["test/ndcg@10"] == 0.3
    reproduce.run_preset(preset, out_dir=tmp_path, local=True, resume=True,
                         extra=["model.l2=300"])  # other overrides: trained again
    assert trained == ["run", "run"]
    run_dir = tmp_path / "runs" / f"{preset}-local" / "run"
    (run_dir / "results.json").unlink()  # died before finishing: trained again
    reproduce.run_preset(preset, out_dir=tmp_path, local=True, resume=True,
                         extra=["model.l2=300"])
    assert trained == ["run", "run", "run"]


def test_identical_local_runs_of_two_presets_train_once(tmp_path, monkeypatch, capsys):
    """The Surprise ml-100k and ml-1m presets run the same folds on ml-latest-small."""
    calls = []

    def fake(preset, overrides, run_dir):
        calls.append((preset, run_dir.name))
        return {"metrics": {"test/rmse": 0.9, "test/mae": 0.7}, "protocol": "full_ranking"}

    monkeypatch.setattr(reproduce.runs, "_run_in_process", fake)
    status = reproduce.main(["paper_surprise_svd_ml-100k", "paper_surprise_svd_ml-1m",
                             "--in-process", "--local", "--set", "reproduce.folds=2",
                             "--out", str(tmp_path)])
    assert status == 0
    assert calls == [("paper_surprise_svd_ml-100k", "fold0"),
                     ("paper_surprise_svd_ml-100k", "fold1")]
    err = capsys.readouterr().err
    assert "paper_surprise_svd_ml-1m: fold 2/2 is the run" in err and "[2/2, " in err
    rows = json.loads((tmp_path / "reproduce.json").read_text())["rows"]
    assert {r["preset"] for r in rows} == {"paper_surprise_svd_ml-100k",
                                           "paper_surprise_svd_ml-1m"}
    # on the papers' own data (no --local) the two presets differ: both train
    calls.clear()
    reproduce.main(["paper_surprise_svd_ml-100k", "paper_surprise_svd_ml-1m", "--in-process",
                    "--set", "reproduce.folds=1", "--out", str(tmp_path / "paper")])
    assert [c[0] for c in calls] == ["paper_surprise_svd_ml-100k", "paper_surprise_svd_ml-1m"]
