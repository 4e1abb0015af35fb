"""The paper's findings tested on our tables: the separation rule, each table's finding, the Markdown."""

from __future__ import annotations

import math

import pytest

from vdm.report import findings, tables
from vdm.report.findings import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED


def row(value, low, high, **keys):
    return {"value": value, "interval_low": low, "interval_high": high, "n_generated": 64, "n_real": 256,
            "run": keys.pop("run", "img8"), "setting": keys.pop("setting", "ancestral-32-w0"), **keys}


@pytest.mark.parametrize("better, worse, verdict", [
    ((100, 90, 110), (200, 180, 220), REPRODUCED),  # separated, the expected order
    ((200, 180, 220), (100, 90, 110), NOT_REPRODUCED),  # separated, the opposite order
    ((100, 90, 150), (120, 110, 130), INCONCLUSIVE),  # overlapping intervals
    ((100, 90, 110), (110, 110, 120), INCONCLUSIVE),  # touching counts as overlapping
    ((100, math.nan, math.nan), (200, 180, 220), INCONCLUSIVE),  # no interval: cannot tell
])
def test_separation_rule(better, worse, verdict):
    assert findings.compare(row(*better), row(*worse)) == verdict


def comparisons(*pairs):
    """A `vdm compare` JSON: pairs of (row a, row b, {metric: (Δ, low, high)}), Δ = metric(b) − metric(a)."""
    return {"pairs": [{"a": {"run": a["run"], "setting": a["setting"]}, "b": {"run": b["run"], "setting": b["setting"]},
                       "n": 64, "metrics": {name: {"value": v, "low": lo, "high": hi, "min_detectable": 3.0}
                                            for name, (v, lo, hi) in metrics.items()}} for a, b, metrics in pairs]}


def test_delta_verdict_and_pairs_stored_either_way():
    assert findings.delta_verdict(-5, -1, -1) == REPRODUCED and findings.delta_verdict(1, 5, -1) == CONTRADICTED
    assert findings.delta_verdict(-1, 1, -1) == INCONCLUSIVE and findings.delta_verdict(0.0, 2, +1) == INCONCLUSIVE
    a, b = row(1, 0, 2, setting="s0"), row(2, 1, 3, setting="s1")
    c = comparisons((a, b, {"fvd": (4.0, 1.0, 7.0)}))
    assert findings.deltas(c, a, b)["fvd"]["value"] == 4.0
    assert findings.deltas(c, b, a)["fvd"] == {"value": -4.0, "low": -7.0, "high": -1.0, "min_detectable": 3.0}
    assert findings.deltas(c, a, row(1, 0, 2, setting="other")) is None


def test_joint_training_tests_the_paired_delta_of_most_minus_fewest_images():
    few, many = row(300, 250, 350, images_per_video=0, run="img0"), row(120, 100, 140, images_per_video=8)
    rows = [few, many]
    f = findings.finding_of("joint_training", rows, comparisons((few, many, {"fvd": (-180.0, -200.0, -160.0),
                                                                             "fid_avg_test": (-2.0, -5.0, 1.0)})))
    assert f.verdict == REPRODUCED and "8 images per video 120.0 [100.0, 140.0]" in f.text
    assert "Δ FVD = -180.00 [-200.00, -160.00] (smallest detectable ±3.00): reproduced" in f.text
    assert "Δ FID-avg vs test = -2.00 [-5.00, 1.00] (smallest detectable ±3.00): inconclusive" in f.text
    # overlapping intervals of the arms, and yet a paired Δ that excludes 0: decided by the Δ
    few.update(value=130, interval_low=90, interval_high=170)
    assert findings.compare(many, few) == INCONCLUSIVE
    assert findings.finding_of("joint_training", rows, comparisons((few, many, {"fvd": (-10.0, -14.0, -6.0)}))
                               ).verdict == REPRODUCED
    assert findings.finding_of("joint_training", rows, comparisons((few, many, {"fvd": (10.0, 6.0, 14.0)}))
                               ).verdict == CONTRADICTED
    lost = findings.finding_of("joint_training", rows)  # no comparisons: cannot tell
    assert lost.verdict == INCONCLUSIVE and "no paired comparison" in lost.text


def test_guidance_tests_the_largest_weight_against_the_next_smaller_one():
    rows = [row(200, 180, 220, guidance_weight=0.0, setting="w0"), row(100, 90, 110, guidance_weight=1.0, setting="w1"),
            row(300, 280, 320, guidance_weight=3.0, setting="w3")]
    f = findings.finding_of("guidance", rows, comparisons((rows[1], rows[2], {"fvd": (200.0, 180.0, 220.0)})))
    assert f.verdict == REPRODUCED and "(w = 3)" in f.text and "(w = 1)" in f.text
    # the pair is fixed by the weights, not chosen by the values: w = 0 vs w = 3 is not what is tested
    assert findings.finding_of("guidance", rows, comparisons((rows[0], rows[2], {"fvd": (100.0, 80.0, 120.0)}))
                               ).verdict == INCONCLUSIVE
    assert findings.finding_of("guidance", rows, comparisons((rows[2], rows[1], {"fvd": (-200.0, -220.0, -180.0)}))
                               ).verdict == REPRODUCED  # stored the other way round


def test_conditioning_pairs_each_reconstruction_arm_with_its_replacement_arm():
    common = dict(sampler="ancestral", steps=32, guidance_weight=0.0)
    rows = [row(500, 450, 550, cond_method="replacement", setting="rep", **common),
            row(200, 180, 220, cond_method="reconstruction", w_r=2.0, setting="r2", **common),
            row(510, 470, 560, cond_method="reconstruction", w_r=5.0, setting="r5", **common)]
    c = comparisons((rows[0], rows[1], {"fvd": (-300.0, -320.0, -280.0)}),
                    (rows[0], rows[2], {"fvd": (10.0, -5.0, 25.0)}))
    f = findings.finding_of("conditioning", rows, c)
    assert f.verdict == INCONCLUSIVE and "disagree" in f.text  # w_r 2 decided, w_r 5 not
    f = findings.finding_of("conditioning", rows[:2], c)
    assert f.verdict == REPRODUCED and "w_r = 2.0" in f.text
    other = dict(common, guidance_weight=1.0)  # a replacement arm at another weight is not its pair
    assert findings.finding_of("conditioning", [row(100, 90, 110, cond_method="replacement", **other), rows[1]]) is None


def test_conditioning_decides_on_the_extension_arms_and_states_prediction_beside():
    common = dict(sampler="ancestral", steps=32, guidance_weight=0.0)
    rows = [row(300, 280, 320, task="prediction", cond_method="replacement", setting="p-rep", **common),
            row(305, 285, 325, task="prediction", cond_method="reconstruction", w_r=2.0, setting="p-r2", **common),
            row(500, 450, 550, task="extension", cond_method="replacement", setting="e-rep", **common),
            row(200, 180, 220, task="extension", cond_method="reconstruction", w_r=2.0, setting="e-r2", **common)]
    c = comparisons((rows[0], rows[1], {"fvd": (5.0, -10.0, 20.0)}),  # prediction: no difference
                    (rows[2], rows[3], {"fvd": (-300.0, -320.0, -280.0)}))  # extension: reconstruction lower
    f = findings.finding_of("conditioning", rows, c)
    assert f.verdict == REPRODUCED and "decided on the extension arms" in f.text
    assert "prediction verdict: inconclusive" in f.text and "extension verdict: reproduced" in f.text
    # a task's replacement arm is never the pair of another task's reconstruction arm
    assert findings.finding_of("conditioning", [rows[0], rows[3]], c) is None
    f = findings.finding_of("conditioning", rows[:2], c)  # one task: its own verdict, no task named
    assert f.verdict == INCONCLUSIVE and "verdict:" not in f.text


def test_training_states_the_ratio_to_step_0():
    rows = [row(2000, 1900, 2100, step=0, setting="s0"), row(500, 450, 550, step=250, setting="s1"),
            row(150, 130, 170, step=1000, setting="s2")]
    f = findings.finding_of("training", rows, comparisons((rows[0], rows[2], {"fvd": (-1850.0, -1900.0, -1800.0)})))
    assert f.verdict == "" and "ratio 0.075 (≤ 1/10)" in f.text and "learned (lower, decided)" in f.text
    rows[2].update(value=1950, interval_low=1850, interval_high=2050)
    f = findings.finding_of("training", rows, comparisons((rows[0], rows[2], {"fvd": (-50.0, -120.0, 20.0)})))
    assert "ratio 0.975 (> 1/10)" in f.text and "not decided lower" in f.text


def test_a_table_markdown_states_its_finding(tmp_path):
    import json

    from test_report import guidance_spec

    spec = guidance_spec(tmp_path)  # FVD 100, 110, 120, 130 at w = 0, 1, 2, 5, each ±5
    rows = tables.build_rows(spec)
    path = tmp_path / "comparisons.json"
    path.write_text(json.dumps(comparisons((rows[2], rows[3], {"fvd": (10.0, 4.0, 16.0)}))))
    md = tables.to_markdown(rows, {**spec, "comparisons": str(path)})
    assert "**Finding.** Paper (Table 5)" in md
    assert "**reproduced** at this scale" in md and "Δ FVD = 10.00 [4.00, 16.00]" in md
    assert findings.finding_of("main", rows) is None
    with pytest.raises(tables.ReportError, match="comparisons file not found"):
        tables.to_markdown(rows, {**spec, "comparisons": str(tmp_path / "missing.json")})


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


def test_a_share_of_frames_is_better_higher_in_its_verdict_and_fvd_still_decides():
    """The digit metrics' shares (class accuracy, identity, identity kept) come from `vdm compare` flagged
    higher_is_better: a paper finding of "lower FVD" reads as a higher share; the table's verdict stays FVD's."""
    replace = row(150, 140, 160, task="extension", cond_method="replacement", setting="e-replace")
    recon = row(140, 130, 150, task="extension", cond_method="reconstruction", w_r=2.0, setting="e-recon2")
    c = comparisons((replace, recon, {"fvd": (-10.0, -25.0, 5.0), "digit_identity_kept": (0.05, 0.02, 0.08)}))
    c["pairs"][0]["metrics"]["digit_identity_kept"]["higher_is_better"] = True
    f = findings.finding_of("conditioning", [replace, recon], c)
    assert f.verdict == INCONCLUSIVE  # FVD's
    assert "Δ Digit identity kept (given frames' digit) = 0.050 [0.020, 0.080] (smallest detectable ±3.000): " \
           "reproduced" in f.text
    c["pairs"][0]["metrics"]["digit_identity_kept"].update(value=-0.05, low=-0.08, high=-0.02)
    assert "= -0.050 [-0.080, -0.020] (smallest detectable ±3.000): contradicted" in findings.finding_of(
        "conditioning", [replace, recon], c).text
    # stored the other way round, a share's Δ is negated like any other and keeps its flag
    assert findings.deltas(c, recon, replace)["digit_identity_kept"]["higher_is_better"] is True


def test_an_inconclusive_delta_states_the_n_that_would_detect_it():
    few, many = row(300, 250, 350, images_per_video=0, run="img0"), row(290, 240, 340, images_per_video=4)
    c = comparisons((few, many, {"fvd": (-4.0, -10.0, 2.0)}))
    c["pairs"][0]["metrics"]["fvd"].update(min_detectable=8.0, n_generated=64)
    f = findings.finding_of("joint_training", [few, many], c)
    # se ~ 1/sqrt(N): a Δ of 4 reaches the 80 % power threshold (8 at N = 64) at N = 64 * (8 / 4)^2 = 256
    assert f.verdict == INCONCLUSIVE
    assert "inconclusive (about 256 samples per arm would detect a Δ of this size)" in f.text
    c["pairs"][0]["metrics"]["fvd"].update(value=-9.0, low=-12.0, high=-6.0)
    assert "samples per arm would detect" not in findings.finding_of("joint_training", [few, many], c).text
