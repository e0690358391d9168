"""scripts/bench_scale.py: sizes, the growth exponent, the doc section, one tiny real run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_scale.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_scale", None)


def _row(scale, train, seconds, devices=1):
    return {"scale": scale, "users": 10, "items": 20, "train": train, "test": 5,
            "devices": devices, "mesh": {"data": devices, "model": 1}, "data_seconds": 1.0,
            "seconds_per_epoch": seconds, "eval_seconds": seconds / 2, "eval_users": 10,
            "peak_rss_gb": 0.5, "ndcg": 0.25}


def test_scale_one_is_ml20m_shape(bench):
    users, items, per_user = bench.shape(1.0)
    assert (users, items) == (138_493, 26_744)
    assert 19e6 < users * per_user < 21e6
    args = bench.parse_args([])
    assert args.scales == [0.01, 0.1, 1.0] and args.devices == [1, 8]
    assert "trainer.mesh.data=-1" in bench.overrides(0.01, args)


def test_growth_exponent_and_section(bench):
    rows = [_row(0.01, 1000, 1.0), _row(0.1, 10_000, 10.0), _row(1.0, 100_000, 100.0),
            _row(0.01, 1000, 2.0, devices=8)]
    assert bench.growth_exponent(rows[:3]) == pytest.approx(1.0)
    assert bench.growth_exponent(rows[3:]) is None
    section = bench.render_section(rows, command="python scripts/bench_scale.py",
                                   args=bench.parse_args([]))
    assert section.startswith("<!-- bench_scale:start -->")
    assert section.endswith("<!-- bench_scale:end -->")
    assert ("epoch time on 1 device(s) (mf/bpr, ml-20m, data 1 x model 1, dense updates) grows as "
            "interactions^1.00 (3 sizes)") in section  # rows without "updates": dense
    assert "| 8 (data 8 x model 1) | dense |" in section
    lazy = [{**r, "updates": "row-sparse"} for r in rows[:2]]
    assert "ml-20m, data 1 x model 1, row-sparse updates) grows as interactions^1.00 (2 sizes)" in \
        bench.render_section(rows[:3] + lazy, command="c", args=bench.parse_args([]))


def test_larger_catalogue_two_tower_and_write_keeps_unmeasured_rows(bench, tmp_path):
    users, items, per_user = bench.shape(1.0, 10)
    assert (users, per_user) == (138_493, 144) and items == 267_440 and items % 8 == 0
    args = bench.parse_args(["--arch", "two_tower", "--items-factor", "10"])
    assert "model=two_tower" in bench.overrides(0.01, args)
    old = [_row(0.01, 1000, 1.0), _row(0.1, 10_000, 10.0), _row(0.01, 1000, 2.0, devices=8)]
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n\n"
                   + bench.render_section(old, command="c", args=bench.parse_args([])) + "\n")
    parsed = bench.rows_from_section(doc.read_text())
    assert [bench.key(r) for r in parsed] == [bench.key(r) for r in old]
    assert parsed[1]["seconds_per_epoch"] == 10.0 and parsed[1]["eval_users"] == 10
    new = [{**_row(0.1, 10_000, 7.0), "block_mb": 2.5, "item_sharded": True},  # measured again
           {**_row(0.01, 1000, 3.0), "arch": "two_tower", "items_factor": 10.0, "items": 200},
           {**_row(0.1, 10_000, 30.0), "arch": "two_tower", "items_factor": 10.0, "users": 100,
            "items": 600}]
    merged = bench.merge_rows(parsed, new)
    assert len(merged) == 5 and sorted(r["seconds_per_epoch"] for r in merged) == \
        [1.0, 2.0, 3.0, 7.0, 30.0]  # the 0.1 row replaced, the other two kept
    section = bench.render_section(merged, command="c", args=bench.parse_args([]))
    assert "| two_tower/sampled_softmax | 10x items | 0.01 |" in section
    assert "2.5 (items split)" in section
    assert "(users x items)^" in section
    bench.benchmarks.write_section(doc, section, bench.NAME)
    text = doc.read_text()
    assert "<!-- other:start -->\nkept\n<!-- other:end -->" in text  # only its own section
    assert len(bench.rows_from_section(text)) == 5


def test_measure_a_tiny_size(bench, tmp_path):
    args = bench.parse_args(["--epochs", "1", "--dim", "8", "--batch-size", "512"])
    row = bench.measure(bench.overrides(0.0005, args), str(tmp_path))
    assert row["devices"] == 1 and row["mesh"] == {"data": 1, "model": 1}
    assert row["train"] > 0 and row["eval_users"] > 0 and 0 <= row["ndcg"] <= 1


def test_implicit_peer_column_round_trips_and_reports_the_ratio(bench, tmp_path):
    rows = [{**_row(1.0, 100_000, 30.0), "peer_seconds": 10.0}, _row(0.1, 10_000, 10.0)]
    section = bench.render_section(rows, command="c", args=bench.parse_args(["--peer"]))
    assert "30.00 s vs 10.00 s per epoch, 3.00x (target <= 1.5x: not met)" in section
    parsed = bench.rows_from_section(section)
    assert sorted(r["peer_seconds"] or 0.0 for r in parsed) == [0.0, 10.0]
