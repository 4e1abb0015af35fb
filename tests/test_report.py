"""Report: tables (our value, interval, N, the paper's value), plots, GIF grids, provenance.

Unit tests on synthetic metrics/sample files; the real counterpart is the end-to-end workflow run in
tests/test_workflow.py, whose tables are built from real FVD metrics files.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vdm.artifacts import ArtifactError
from vdm.artifacts.metrics import read_metrics
from vdm.report import plots, tables
from vdm.report.provenance import config_hash, provenance, seeds_summary

REPO = Path(__file__).resolve().parents[1]


def write_metrics(path: Path, value: float, interval=(1.0, 3.0), n_gen=32, n_real=64) -> Path:
    path.write_text(json.dumps({"metric": "fvd", "value": value, "interval": interval, "n_real": n_real,
                                "n_generated": n_gen, "detector_id": "i3d", "settings": {}}))
    return path


def write_samples(path: Path, n=4, t=5, h=8, w=8, c=1, seed0=10) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, videos=rng.integers(0, 255, (n, t, h, w, c), dtype=np.uint8),
             seeds=np.arange(seed0, seed0 + n), settings=json.dumps({"sampler": "ancestral", "steps": 4}))
    return path


def guidance_spec(tmp_path: Path, weights=(0.0, 1.0, 2.0, 5.0)) -> dict:
    rows = []
    for i, w in enumerate(weights):
        m = write_metrics(tmp_path / f"m{i}.json", 100.0 + 10 * i, interval=[95.0 + 10 * i, 105.0 + 10 * i])
        s = write_samples(tmp_path / f"s{i}.npz", t=5 + i)
        rows.append({"keys": {"guidance_weight": w}, "run": "img8", "setting": f"ancestral-32-w{w:g}",
                     "metrics": str(m), "samples": str(s)})
    return {"table": "guidance", "experiment": "x", "note": "Moving MNIST, not the paper's data.",
            "paper": {"table": "T5_cfg", "metric": "FVD_val", "setting_contains": "frameskip 1"},
            "rows": rows, "gif_videos": 3}


# --------------------------------------------------------------------------------------------
# Paper lookup
# --------------------------------------------------------------------------------------------
def test_packaged_paper_csv_equals_shared_copy_and_is_documented():
    here = tables.PAPER_CSV.read_bytes()
    note = (tables.PAPER_CSV.parent / "paper_tables.md").read_text()
    import hashlib

    assert hashlib.sha256(here).hexdigest() in note  # the note names the exact file it describes
    assert len(tables.paper_table_rows()) == 138


@pytest.mark.parametrize(
    "ref, keys, expected",
    [
        ({"table": "T5_cfg", "metric": "FVD_val", "setting_contains": "frameskip 1"}, {"guidance_weight": 2.0}, 48.79),
        ({"table": "T5_cfg", "metric": "FVD_val", "setting_contains": "frameskip 4"}, {"guidance_weight": 5.0}, 176.82),
        ({"table": "T4_joint_training", "metric": "FVD_val"}, {"images_per_video": 4}, 70.74),
        ({"table": "T4_joint_training", "metric": "FVD_train"}, {"images_per_video": 0}, 202.28),
        ({"table": "T2_BAIR", "metric": "FVD"}, {"sampler": "langevin", "steps": 16}, 66.92),
        ({"table": "T2_BAIR", "metric": "FVD"}, {"sampler": "ancestral", "steps": 32}, 68.19),
        ({"table": "T6_recon_vs_replacement", "metric": "FVD_val"},
         {"guidance_weight": 5.0, "cond_method": "replacement"}, 441.93),
        ({"table": "T6_recon_vs_replacement", "metric": "FVD_val"},
         {"guidance_weight": 2.0, "cond_method": "reconstruction", "w_r": 2.0}, 134.55),
    ],
)
def test_paper_match_picks_the_row_with_the_same_settings(ref, keys, expected):
    row = tables.paper_match(ref, keys)
    assert row is not None and float(row["value"]) == pytest.approx(expected)


def test_paper_match_none_when_the_paper_has_no_such_setting_or_it_is_ambiguous():
    ref = {"table": "T5_cfg", "metric": "FVD_val", "setting_contains": "frameskip 1"}
    assert tables.paper_match(ref, {"guidance_weight": 0.0}) is None  # the paper has no w = 0 row
    # Without the frameskip filter two rows (frameskip 1 and 4) fit w = 2: no guess.
    assert tables.paper_match({"table": "T5_cfg", "metric": "FVD_val"}, {"guidance_weight": 2.0}) is None
    assert tables.paper_match(None, {"guidance_weight": 2.0}) is None


def test_paper_match_names_unknown_table_and_metric():
    with pytest.raises(tables.ReportError, match="T9_nope"):
        tables.paper_match({"table": "T9_nope", "metric": "FVD"}, {})
    with pytest.raises(tables.ReportError, match="FVD_typo"):
        tables.paper_match({"table": "T5_cfg", "metric": "FVD_typo"}, {})


# --------------------------------------------------------------------------------------------
# Metrics files
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "interval, low, high",
    [([1.0, 3.0], 1.0, 3.0), ({"low": 1.5, "high": 2.5}, 1.5, 2.5), (0.5, 1.5, 2.5), (None, math.nan, math.nan)],
)
def test_read_metrics_reads_every_interval_form(tmp_path, interval, low, high):
    m = read_metrics(write_metrics(tmp_path / "m.json", 2.0, interval=interval))
    assert m["value"] == 2.0
    for got, want in ((m["interval_low"], low), (m["interval_high"], high)):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_read_metrics_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"metric": "fvd"}))
    with pytest.raises(ArtifactError, match=r"bad\.json.*'value'"):
        read_metrics(bad)
    with pytest.raises(ArtifactError, match="not found"):
        read_metrics(tmp_path / "missing.json")
    (tmp_path / "garbage.json").write_text("{")
    with pytest.raises(ArtifactError, match="garbage.json"):
        read_metrics(tmp_path / "garbage.json")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def test_table_csv_and_markdown_hold_value_interval_n_and_paper_column(tmp_path):
    spec = guidance_spec(tmp_path)
    rows = tables.build_rows(spec)
    tables.write_csv(rows, tmp_path / "t.csv")
    tables.write_markdown(rows, spec, tmp_path / "t.md")
    with open(tmp_path / "t.csv") as f:
        got = list(csv.DictReader(f))
    assert [float(r["guidance_weight"]) for r in got] == [0.0, 1.0, 2.0, 5.0]
    assert [float(r["value"]) for r in got] == [100.0, 110.0, 120.0, 130.0]
    assert [float(r["interval_low"]) for r in got] == [95.0, 105.0, 115.0, 125.0]
    assert {r["n_generated"] for r in got} == {"32"} and {r["n_real"] for r in got} == {"64"}
    # The paper has w = 1, 2, 5 (frameskip 1, FVD against the validation set), no w = 0.
    assert [r["paper_value"] for r in got] == ["", "43.7", "48.79", "160.21"]
    md = (tmp_path / "t.md").read_text()
    assert "Moving MNIST, not the paper's data." in md
    assert "paper T5_cfg FVD_val" in md
    assert "| 2.0 | 120.00 | [115.00, 125.00] | 32 / 64 | `img8/ancestral-32-w2` | 48.79 |" in md


def test_table_without_paper_reference_has_no_paper_values(tmp_path):
    spec = guidance_spec(tmp_path)
    spec["paper"] = None
    rows = tables.build_rows(spec)
    assert all(math.isnan(r["paper_value"]) for r in rows)
    header = next(line for line in tables.to_markdown(rows, spec).splitlines() if line.startswith("| guidance w"))
    assert "paper" not in header


def test_empty_spec_is_an_error():
    with pytest.raises(tables.ReportError, match="no rows"):
        tables.build_rows({"table": "guidance", "rows": []})


# --------------------------------------------------------------------------------------------
# Plots and GIF grids
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", ["guidance", "joint_training", "sampler", "conditioning", "main"])
def test_plot_writes_a_png_for_every_table_kind(tmp_path, table):
    keys = {
        "guidance": [{"guidance_weight": w} for w in (0.0, 1.0, 2.0)],
        "joint_training": [{"images_per_video": k} for k in (0, 4, 8)],
        "sampler": [{"sampler": "ancestral", "steps": 32}, {"sampler": "langevin", "steps": 16}],
        "conditioning": [{"guidance_weight": w, "cond_method": m, **({"w_r": 2.0} if m == "reconstruction" else {})}
                         for w in (2.0, 5.0) for m in ("replacement", "reconstruction")],
        "main": [{"images_per_video": 8}],
    }[table]
    rows = [{**k, "run": "img8", "setting": f"s{i}", "metric": "fvd", "value": 10.0 + i, "interval_low": 9.0 + i,
             "interval_high": 11.0 + i, "paper_value": 50.0 if i == 1 else math.nan, "paper_metric": "FVD_val"}
            for i, k in enumerate(keys)]
    out = tmp_path / f"{table}.png"
    plots.plot_table(table, rows, out, title=table)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("table", ["training", "conditioning", "main"])
def test_plot_draws_an_interval_that_does_not_contain_the_value(tmp_path, table):
    """An interval above its value (e.g. a plain bootstrap percentile interval at small N) is drawn as it
    is, from low to high, instead of failing or being clipped to the value."""
    import matplotlib

    matplotlib.use("Agg")
    keys = {"training": [{"step": s} for s in (0, 250)],
            "conditioning": [{"guidance_weight": 0.0, "cond_method": "replacement"}],
            "main": [{"images_per_video": 8}]}[table]
    rows = [{**k, "run": "img8", "setting": f"s{i}", "metric": "fvd", "value": 100.0, "interval_low": 120.0,
             "interval_high": 140.0, "paper_value": math.nan} for i, k in enumerate(keys)]
    drawn = []
    real_errorbar = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, yerr=None, **kw):
        drawn.append((np.asarray(y) - np.asarray(yerr), np.asarray(y) + np.asarray(yerr)))
        return real_errorbar(self, x, y, yerr=yerr, **kw)

    matplotlib.axes.Axes.errorbar = spy
    try:
        plots.plot_table(table, rows, tmp_path / "p.png")
    finally:
        matplotlib.axes.Axes.errorbar = real_errorbar
    assert (tmp_path / "p.png").is_file()
    (lo, hi), = drawn
    assert np.allclose(lo, 120.0) and np.allclose(hi, 140.0)


def test_line_plot_uses_a_log_axis_when_values_span_orders_of_magnitude(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    scales = []
    real = matplotlib.axes.Axes.set_yscale
    monkeypatch.setattr(matplotlib.axes.Axes, "set_yscale",
                        lambda self, v, **kw: (scales.append(v), real(self, v, **kw)))
    for values in ((10000.0, 200.0, 120.0), (130.0, 120.0, 110.0)):
        rows = [{"step": s, "run": "img8", "setting": "s", "metric": "fvd", "value": v, "interval_low": v * 0.9,
                 "interval_high": v * 1.1, "paper_value": math.nan} for s, v in zip((0, 250, 1000), values)]
        plots.plot_table("training", rows, tmp_path / "t.png")
    assert scales == ["log"]  # only the first set spans more than LOG_SCALE_SPAN


def test_gif_grid_has_one_row_per_sample_set_and_the_longest_video_length(tmp_path):
    from PIL import Image

    a = write_samples(tmp_path / "a.npz", n=4, t=5)
    b = write_samples(tmp_path / "b.npz", n=2, t=7)
    plots.gif_grid([a, b], ["w=0", "w=2"], tmp_path / "g.gif", n=3)
    im = Image.open(tmp_path / "g.gif")
    assert im.n_frames == 7
    # 2 rows of 16-pixel (2x upscaled 8-pixel) frames with 2-pixel padding
    assert im.size[1] == 2 * (16 + 2) + 2


def test_gif_grid_rejects_a_file_without_videos(tmp_path):
    np.savez(tmp_path / "x.npz", frames=np.zeros((1, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="no 'videos'"):
        plots.load_videos(tmp_path / "x.npz", 2)


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------
def test_config_hash_ignores_comments_and_key_order_but_not_values(tmp_path):
    (tmp_path / "a.yaml").write_text("# comment\nsample: {steps: 4, sampler: ancestral}\nseed: 0\n")
    (tmp_path / "b.yaml").write_text("seed: 0\nsample:\n  sampler: ancestral\n  steps: 4\n")
    (tmp_path / "c.yaml").write_text("seed: 0\nsample:\n  sampler: ancestral\n  steps: 5\n")
    assert config_hash(tmp_path / "a.yaml") == config_hash(tmp_path / "b.yaml")
    assert config_hash(tmp_path / "a.yaml") != config_hash(tmp_path / "c.yaml")


def test_seeds_summary():
    assert seeds_summary(np.arange(5, 9)) == {"count": 4, "first": 5, "last": 8, "contiguous": True}
    assert seeds_summary(np.array([3, 1])) == {"count": 2, "values": [3, 1], "contiguous": False}


def test_provenance_record_names_config_code_seeds_and_versions(tmp_path):
    import torch

    from vdm.artifacts.export import save_export
    from vdm.diffusion.config import DiffusionConfig
    from vdm.model.config import named_size

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"seed": 7, "sample": {"steps": 4}}))
    model = tmp_path / "m.pt"
    save_export(model, {"w": torch.zeros(2)}, named_size("tiny"), DiffusionConfig(), {"step": 6})
    rec = provenance(cfg, cfg, model, write_samples(tmp_path / "s.npz", seed0=100),
                     write_metrics(tmp_path / "m.json", 3.0))
    assert rec["config"]["sha256"] == config_hash(cfg) and len(rec["config"]["sha256"]) == 64
    assert rec["seed"] == 7
    assert rec["samples"]["seeds"] == {"count": 4, "first": 100, "last": 103, "contiguous": True}
    assert rec["samples"]["settings"] == {"sampler": "ancestral", "steps": 4}
    assert rec["export"]["meta"] == {"step": 6}
    assert rec["metrics"]["value"] == 3.0
    assert rec["packages"]["torch"] == torch.__version__
    assert rec["packages"]["numpy"] == np.__version__
    # the commit of the code that produced it (this checkout), found from the package, not the cwd
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert rec["git"]["commit"] == head


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def test_cli_table_and_index(tmp_path):
    spec = guidance_spec(tmp_path)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    out = tmp_path / "report"
    r = subprocess.run(
        [sys.executable, "-m", "vdm", "report", "table", "--spec", f"@{spec_file}",
         "--csv", str(out / "tables/guidance.csv"),
         "--md", str(out / "tables/guidance.md"), "--plot", str(out / "plots/guidance.png"),
         "--gif", str(out / "gifs/guidance.gif")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    for p in ("tables/guidance.csv", "tables/guidance.md", "plots/guidance.png", "gifs/guidance.gif"):
        assert (out / p).stat().st_size > 0, p
    r = subprocess.run(
        [sys.executable, "-m", "vdm", "report", "index", "--title", "T", "--note", "N", "--tables",
         str(out / "tables/guidance.md"), "--out", str(out / "README.md")], capture_output=True, text=True,
        cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    index = (out / "README.md").read_text()
    assert "(plots/guidance.png)" in index and "(gifs/guidance.gif)" in index and "48.79" in index


def test_cli_table_error_names_the_missing_metrics_file(tmp_path):
    spec = guidance_spec(tmp_path)
    spec["rows"][1]["metrics"] = str(tmp_path / "nowhere.json")
    r = subprocess.run(
        [sys.executable, "-m", "vdm", "report", "table", "--spec", json.dumps(spec), "--csv", str(tmp_path / "a.csv"),
         "--md", str(tmp_path / "a.md")], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2 and "nowhere.json" in r.stderr  # bad input (vdm.cliargs)
    assert not (tmp_path / "a.csv").exists()


def test_cascade_figures_pair_each_low_resolution_video_with_its_super_resolution(tmp_path):
    from PIL import Image

    from vdm.report.cascade import cascade_figures, magnify
    from vdm.report.cli import main as report_main

    rng = np.random.default_rng(0)
    low = rng.integers(0, 256, (3, 6, 4, 4, 1), dtype=np.uint8)
    high = rng.integers(0, 256, (3, 6, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "low.npz", videos=low)
    np.savez(tmp_path / "high.npz", videos=high)
    big = magnify(low, 2)
    assert big.shape == (3, 6, 8, 8, 1)
    assert np.array_equal(big[:, :, ::2, ::2], low) and np.array_equal(big[:, :, 1::2, 1::2], low)
    cascade_figures(tmp_path / "low.npz", tmp_path / "high.npz", tmp_path / "c.gif", tmp_path / "c.png", videos=2,
                    frames_shown=3)
    gif = Image.open(tmp_path / "c.gif")
    assert gif.n_frames == 6
    png = np.asarray(Image.open(tmp_path / "c.png"))
    scale = 64 // 8
    # two videos x (low, high) rows of 3 frames, 2-pixel padding, magnified to 64-pixel frames
    assert png.shape == (4 * (8 + 2) * scale, (3 * (8 + 2) - 2) * scale)
    assert np.array_equal(png[:8 * scale:scale, :8 * scale:scale], big[0, 0, :, :, 0])  # video 0, frame 0, low
    assert np.array_equal(png[10 * scale:18 * scale:scale, :8 * scale:scale], high[0, 0, :, :, 0])  # its high
    np.savez(tmp_path / "odd.npz", videos=rng.integers(0, 256, (3, 5, 8, 8, 1), dtype=np.uint8))
    rc = report_main(["cascade", "--low", str(tmp_path / "low.npz"), "--high", str(tmp_path / "odd.npz"),
                      "--gif", str(tmp_path / "x.gif"), "--png", str(tmp_path / "x.png")])
    assert rc == 2 and not (tmp_path / "x.gif").exists()


def test_further_metrics_get_their_own_columns_or_a_not_computed_note(tmp_path):
    """The metrics JSON's "also" (e.g. StyleGAN-V's fvd2048_16f): value, interval and N in their own CSV
    columns and one Markdown column; where it was not computed, the reason instead of a number."""
    base = {"metric": "fvd", "value": 100.0, "interval": [90.0, 110.0], "n_real": 64, "n_generated": 32}
    done = {**base, "also": {"fvd2048_16f": {"computed": True, "value": 95.5, "interval": [80.0, 111.0],
                                             "n_generated": 32, "n_real": 64, "full_convention": False,
                                             "convention_n": 2048}}}
    skipped = {**base, "also": {"fvd2048_16f": {"computed": False, "reason": "needs 16-frame videos (these have 10)"}}}
    rows = []
    for name, m in (("a", done), ("b", skipped)):
        (tmp_path / f"{name}.json").write_text(json.dumps(m))
        rows.append({"keys": {"guidance_weight": 1.0 if name == "a" else 2.0}, "run": "img0", "setting": name,
                     "metrics": str(tmp_path / f"{name}.json"), "samples": ""})
    spec = {"table": "guidance", "experiment": "t", "rows": rows, "paper": None}
    built = tables.build_rows(spec)
    tables.write_csv(built, tmp_path / "t.csv")
    csv_rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert float(csv_rows[0]["fvd2048_16f"]) == 95.5 and float(csv_rows[0]["fvd2048_16f_low"]) == 80.0
    assert csv_rows[0]["fvd2048_16f_note"] == "32 / 64 videos, not the convention's 2048"
    assert csv_rows[1]["fvd2048_16f"] == "" and csv_rows[1]["fvd2048_16f_note"].startswith("not computed: needs 16")
    md = tables.to_markdown(built, spec)
    assert "FVD 2048/16f (StyleGAN-V convention)" in md
    assert "95.50 [80.00, 111.00], N 32 / 64" in md and "not computed: needs 16-frame videos (these have 10)" in md


def test_further_metrics_carry_the_papers_number_of_the_same_metric(tmp_path):
    """Table 4 (images per video 0): FID-avg vs test sits beside the paper's FID-avg on its validation set
    (37.40), IS-avg (1 split) beside 7.91; fvd2048_16f has no paper number (no column)."""
    m = {"metric": "fvd", "value": 100.0, "interval": [90.0, 110.0], "n_real": 64, "n_generated": 32,
         "also": {"fid_avg_test": {"computed": True, "value": 50.0, "interval": [45.0, 55.0], "n_generated": 32,
                                   "n_real": 64},
                  "is_avg_1": {"computed": True, "value": 3.0, "interval": None, "n_generated": 32, "n_real": 0},
                  "fvd2048_16f": {"computed": False, "reason": "needs 16-frame videos (these have 10)"}}}
    (tmp_path / "m.json").write_text(json.dumps(m))
    spec = {"table": "joint_training", "experiment": "t", "paper": {"table": "T4_joint_training", "metric": "FVD_val"},
            "rows": [{"keys": {"images_per_video": 0}, "run": "img0", "setting": "s",
                      "metrics": str(tmp_path / "m.json"), "samples": ""}]}
    rows = tables.build_rows(spec)
    assert rows[0]["paper_value"] == 205.42
    assert rows[0]["fid_avg_test_paper"] == 37.40 and rows[0]["is_avg_1_paper"] == 7.91
    assert math.isnan(rows[0]["fvd2048_16f_paper"])
    md = tables.to_markdown(rows, spec)
    assert "| paper FID_avg_val |" in md and "| paper IS_avg_1split |" in md and "paper fvd2048" not in md
    assert "| 37.40 |" in md
