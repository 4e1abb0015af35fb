"""The paper's findings tested on our tables: the separation rule, each table's finding, the Markdown."""

from __future__ import annotations

import math

import pytest

from vdm.report import findings, tables
from vdm.report.findings import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED


def row(value, low, high, **keys):
    return {"value": value, "interval_low": low, "interval_high": high, "n_generated": 64, "n_real": 256,
            "run": keys.pop("run", "img8"), **keys}


@pytest.mark.parametrize("better, worse, verdict", [
    ((100, 90, 110), (200, 180, 220), REPRODUCED),  # separated, the expected order
    ((200, 180, 220), (100, 90, 110), NOT_REPRODUCED),  # separated, the opposite order
    ((100, 90, 150), (120, 110, 130), INCONCLUSIVE),  # overlapping intervals
    ((100, 90, 110), (110, 110, 120), INCONCLUSIVE),  # touching counts as overlapping
    ((100, math.nan, math.nan), (200, 180, 220), INCONCLUSIVE),  # no interval: cannot tell
])
def test_separation_rule(better, worse, verdict):
    assert findings.compare(row(*better), row(*worse)) == verdict


def test_joint_training_compares_most_and_fewest_images():
    rows = [row(300, 250, 350, images_per_video=0, run="img0"), row(120, 100, 140, images_per_video=8)]
    f = findings.finding_of("joint_training", rows)
    assert f.verdict == REPRODUCED and "8 images per video 120.0 [100.0, 140.0]" in f.text
    rows[1].update(value=400, interval_low=380, interval_high=420)
    assert findings.finding_of("joint_training", rows).verdict == NOT_REPRODUCED


def test_guidance_tests_the_largest_weight_against_the_best_smaller_one():
    rows = [row(200, 180, 220, guidance_weight=0.0), row(100, 90, 110, guidance_weight=1.0),
            row(300, 280, 320, guidance_weight=3.0)]
    f = findings.finding_of("guidance", rows)
    assert f.verdict == REPRODUCED and "(w = 3)" in f.text and "(w = 1)" in f.text
    rows[2].update(value=50, interval_low=40, interval_high=60)  # the largest weight is the best
    assert findings.finding_of("guidance", rows).verdict == NOT_REPRODUCED
    rows[2].update(value=105, interval_low=95, interval_high=115)
    assert findings.finding_of("guidance", rows).verdict == INCONCLUSIVE


def test_conditioning_pairs_each_reconstruction_arm_with_its_replacement_arm():
    common = dict(sampler="ancestral", steps=32, guidance_weight=0.0)
    rows = [row(500, 450, 550, cond_method="replacement", **common),
            row(200, 180, 220, cond_method="reconstruction", w_r=2.0, **common),
            row(510, 470, 560, cond_method="reconstruction", w_r=5.0, **common)]
    f = findings.finding_of("conditioning", rows)
    assert f.verdict == INCONCLUSIVE and "disagree" in f.text  # w_r 2 separated, w_r 5 not
    f = findings.finding_of("conditioning", rows[:2])
    assert f.verdict == REPRODUCED and "w_r = 2.0" in f.text
    other = dict(common, guidance_weight=1.0)  # a replacement arm at another weight is not its pair
    assert findings.finding_of("conditioning", [row(100, 90, 110, cond_method="replacement", **other), rows[1]]) is None


def test_training_states_the_ratio_to_step_0():
    rows = [row(2000, 1900, 2100, step=0), row(500, 450, 550, step=250), row(150, 130, 170, step=1000)]
    f = findings.finding_of("training", rows)
    assert f.verdict == "" and "ratio 0.075 (≤ 1/10)" in f.text and "separated" in f.text
    rows[2].update(value=1950, interval_low=1850, interval_high=2050)
    assert "ratio 0.975 (> 1/10), intervals not separated" in findings.finding_of("training", rows).text


def test_a_table_markdown_states_its_finding(tmp_path):
    from test_report import guidance_spec

    spec = guidance_spec(tmp_path)  # FVD 100, 110, 120, 130 at w = 0, 1, 2, 5, each ±5
    md = tables.to_markdown(tables.build_rows(spec), spec)
    assert "**Finding.** Paper (Table 5)" in md
    assert "**reproduced** at this scale" in md  # w = 5 [125, 135] is separated from w = 0 [95, 105]
    assert findings.finding_of("main", tables.build_rows(spec)) is None


def test_registry_tables_have_a_paper_table_and_their_plot_axis_is_a_varied_key():
    from vdm.report import plots, registry

    known = {r["table"] for r in tables.paper_table_rows()}
    for name, t in registry.TABLES.items():
        assert not t.paper_table or t.paper_table in known, (name, t.paper_table)
        assert set(t.varies) <= set(registry.KEY_COLUMNS), name
        if t.axis is not None:
            assert t.axis[0] in t.varies and plots.LINE_AXES[name] == t.axis
    assert set(findings.FINDINGS) <= set(registry.TABLES)
    assert tables.TABLE_TITLES["guidance"] == registry.TABLES["guidance"].title
