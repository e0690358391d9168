"""Missing optional extras fail with the install command, not ModuleNotFoundError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jaxrec.extras import MissingExtra, require

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def test_require_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    with pytest.raises(MissingExtra, match=r"^bayes needs optuna, which is not installed: "
                                           r"pip install 'jaxrec\[sweep\]'$"):
        require("optuna", extra="sweep", purpose="bayes")
    assert require("json", extra="sweep", purpose="x").dumps([]) == "[]"


def test_a_broken_install_is_not_reported_as_missing(monkeypatch):
    # an import error of another package from inside an installed one propagates as is
    import importlib

    def broken(name):
        raise ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="sqlalchemy"):
        require("optuna", extra="sweep", purpose="x")


def test_bayes_sweep_without_optuna_fails_with_one_line(monkeypatch, tmp_path, capsys):
    for name in ("optuna", "optuna.distributions"):
        monkeypatch.setitem(sys.modules, name, None)
    from jaxrec.sweep.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([str(SWEEPS / "mf_bayes.yaml"), f"sweep.dir={tmp_path / 's'}", "sweep.run_cap=2",
              "sweep.wandb=false"])
    assert str(exit_.value) == ("error: jaxrec sweep with method: bayes needs optuna, which is "
                                "not installed: pip install 'jaxrec[sweep]'")


def test_report_without_matplotlib_says_how_to_get_plots(monkeypatch, tmp_path):
    from jaxrec.sweep.report import report
    from jaxrec.sweep.spec import SweepOptions, load_spec
    from jaxrec.sweep.study import Study

    study = Study(load_spec(SWEEPS / "mf_lr_l2.yaml"), SweepOptions(dir=str(tmp_path / "s")), [])
    study.write_results()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    text = report(study.dir, plots=True)
    assert ("plots skipped: jaxrec sweep report plots needs matplotlib, which is not "
            "installed: pip install 'jaxrec[sweep]'") in text
