"""Result files honour the umask: colleagues on a shared machine can read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from jaxrec.io import atomic_write_json, atomic_write_text, atomic_write_with


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_get_the_mode_open_would_give(umask, tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "results.json", {"a": 1})
    atomic_write_with(tmp_path / "per_user_test.parquet",
                      lambda tmp: pd.DataFrame({"u": [1]}).to_parquet(tmp, index=False))
    with open(tmp_path / "plain.txt", "w") as f:  # the reference: a plain open
        f.write("x")
    want = 0o666 & ~umask
    assert _mode(tmp_path / "plain.txt") == want
    for name in ("a.txt", "results.json", "per_user_test.parquet"):
        assert _mode(tmp_path / name) == want, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_run_and_sweep_files_are_readable_by_the_group_and_others(tmp_path):
    from omegaconf import OmegaConf

    from jaxrec.runner import write_config
    from jaxrec.sweep.spec import SweepOptions, load_spec
    from jaxrec.sweep.study import Study

    old = os.umask(0o022)
    try:
        write_config(OmegaConf.create({"paths": {"output_dir": str(tmp_path / "run")}, "a": 1}))
        study = Study(load_spec(Path(__file__).parents[2] / "sweeps" / "mf_lr_l2.yaml"),
                      SweepOptions(dir=str(tmp_path / "study")), [])
        study.write_results()
    finally:
        os.umask(old)
    for path in (tmp_path / "run" / "config.yaml", study.dir / "results.csv",
                 study.dir / "study.json", study.dir / "spec.yaml"):
        assert _mode(path) == 0o644, path
