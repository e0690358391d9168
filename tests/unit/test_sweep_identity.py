"""Studies never mix silently: a study is its spec plus its fixed (non-swept) overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxrec.sweep.identity import fingerprint, fixed_overrides
from jaxrec.sweep.report import report
from jaxrec.sweep.spec import SpecError, SweepOptions, load_spec
from jaxrec.sweep.study import Study

SPEC = load_spec(Path(__file__).resolve().parents[2] / "sweeps" / "mf_lr_l2.yaml")


def test_fixed_overrides_leave_out_what_changes_no_result():
    fixed = fixed_overrides(SPEC, ["trainer.epochs=20", "logger.wandb=false",
                                   "trainer.progress=true", "name=x", "trainer.epochs=30"])
    assert fixed == ["experiment=mf_ml-latest-small", "trainer.epochs=30"]


def test_other_fixed_overrides_open_another_study(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fifty = Study(SPEC, SweepOptions(), ["trainer.epochs=50"])
    assert fifty.dir == tmp_path / "outputs" / "sweeps" / "mf_lr_l2"
    assert json.loads((fifty.dir / "study.json").read_text())["fixed"] == [
        "experiment=mf_ml-latest-small", "trainer.epochs=50"]

    twenty = Study(SPEC, SweepOptions(), ["trainer.epochs=20"])
    fixed20 = ["experiment=mf_ml-latest-small", "trainer.epochs=20"]
    assert twenty.dir == tmp_path / "outputs" / "sweeps" / f"mf_lr_l2-{fingerprint(fixed20)}"
    assert "fixed overrides differ" in capsys.readouterr().err

    # the same command again resumes its own study; cosmetic overrides change nothing
    assert Study(SPEC, SweepOptions(), ["trainer.epochs=20"]).dir == twenty.dir
    assert Study(SPEC, SweepOptions(), ["trainer.epochs=50", "logger.wandb=false",
                                        "trainer.progress=true"]).dir == fifty.dir
    assert fifty.meta["id"] != twenty.meta["id"]


def test_an_explicit_dir_holding_another_study_is_refused(tmp_path):
    opts = SweepOptions(dir=str(tmp_path / "study"))
    Study(SPEC, opts, ["trainer.epochs=50"])
    with pytest.raises(SpecError, match=r"^sweep\.dir=.*holds a study with other fixed "
                                        r"overrides .*trainer\.epochs=20.*choose another"):
        Study(SPEC, opts, ["trainer.epochs=20"])


def test_the_report_shows_the_fixed_overrides(tmp_path):
    study = Study(SPEC, SweepOptions(dir=str(tmp_path / "s")), ["trainer.epochs=20"])
    study.write_results()
    text = report(study.dir, plots=False)
    assert "fixed (not swept): experiment=mf_ml-latest-small trainer.epochs=20" in text
