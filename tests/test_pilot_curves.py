"""scripts/pilot_curves.py: the pilots' learning curves drawn again from their recorded points."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import pilot_curves  # noqa: E402


def test_recorded_points_round_trip_and_draw_the_curves(tmp_path, capsys):
    points = tmp_path / "points.csv"
    shutil.copyfile(REPO / "docs" / "pilot_points.csv", points)
    rows, rates = pilot_curves.read_points(points)
    assert {r["pilot"] for r in rows} == {"base", "min_snr", "lr2e-3", "bf16_min_snr"}
    # written again (as for a pilot read from results/), the file reads back to the same points
    pilot_curves.write_points(points, [r for r in rows if r["pilot"] == "min_snr"], rates)
    again, again_rates = pilot_curves.read_points(points)
    key = lambda r: (r["pilot"], r["step"])  # noqa: E731
    assert sorted(again, key=key) == sorted(rows, key=key) and again_rates == rates
    out = tmp_path / "curves.png"
    code = pilot_curves.main(["base", "bf16_min_snr", "--results", str(tmp_path / "none"), "--points", str(points),
                              "--out", str(out)])
    assert code == 0 and out.stat().st_size > 10_000
    table = capsys.readouterr().out
    # the bf16 pilot's unguided step-1,500 point, as docs/pilots.md reports it
    assert "| bf16_min_snr |" in table and "| 1500 | 118.5 [108.9, 128.1] | 0.575 [0.507, 0.641] |" in table
    assert "| min_snr |" not in table  # only the pilots asked for


def test_a_pilot_with_neither_results_nor_points_is_an_error(tmp_path, capsys):
    code = pilot_curves.main(["min_snr", "--results", str(tmp_path), "--out", str(tmp_path / "c.png")])
    assert code == 2 and "min_snr" in capsys.readouterr().err
