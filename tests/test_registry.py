"""The metrics registry: every entry has a detector, a table column and a reason when it is not computed; which
detectors and real-features files an evaluation needs follows from it; Table 3's I3D IS as one entry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from vdm.artifacts.metrics import METRIC_COLUMNS
from vdm.config import ExperimentConfig
from vdm.metrics.detectors import DETECTORS
from vdm.metrics.registry import HEADLINE, METRICS, Context, generated_detectors, real_detectors, real_needs, statuses


def _ctx(frames: int = 16, source: str = "moving_mnist", real_npz: bool = False, **evaluate) -> Context:
    data = {"source": source, "channels": 1 if source == "moving_mnist" else 3}
    return Context(ExperimentConfig.from_dict({"data": data, "evaluate": evaluate}), frames, real_npz)


def test_every_entry_has_a_detector_and_a_column():
    assert HEADLINE == "fvd" and METRICS[HEADLINE].detector == "i3d"
    for name, m in METRICS.items():
        assert m.detector in DETECTORS, name
        assert name == HEADLINE or name in METRIC_COLUMNS, f"{name}: no title in vdm/artifacts/metrics.py"
    assert set(METRIC_COLUMNS) == set(METRICS) - {HEADLINE}
    assert real_detectors() == ["i3d", "inception", "c3d", "digits"]


def test_what_an_evaluation_needs_follows_from_the_config():
    plain = _ctx(frames=9)
    assert generated_detectors(plain) == ["i3d"] and real_needs(plain) == [("i3d", "test")]
    assert statuses(plain)["fid_avg_test"] == "evaluate.frame_fid is off"
    assert statuses(plain)["digit_fd"].startswith("needs the digit classifier")
    with_digits = _ctx(frames=9, digit_classifier="d.pt")
    assert generated_detectors(with_digits) == ["i3d", "digits"] and ("digits", "test") in real_needs(with_digits)
    assert "is_i3d" not in statuses(plain) and "c3d_fid" not in statuses(plain)  # not Kinetics / UCF-101 data
    frame = _ctx(frames=9, frame_fid=True, frame_fid_splits=["test"])
    assert generated_detectors(frame) == ["i3d", "inception"]
    assert real_needs(frame) == [("i3d", "test"), ("inception", "test")]
    assert "fid_avg_train" not in statuses(frame)  # a split not asked for: not in the JSON at all
    assert "pt_inception" in statuses(frame)["is_avg_1"]
    npz = _ctx(frames=9, real_npz=True, frame_fid=True)
    assert statuses(npz)["fid_first_train"].startswith("real clips given as --real npz")
    assert real_needs(npz) == [("i3d", "test")]
    c3d = _ctx(source="ucf101", c3d_weights="w.npz", c3d_weights_sha256="a" * 64, c3d_mean="m.npz",
               c3d_mean_sha256="b" * 64, c3d_fid_split="test")
    assert generated_detectors(c3d) == ["i3d", "c3d"] and ("c3d", "test") in real_needs(c3d)
    assert statuses(_ctx(source="ucf101"))["c3d_is"].startswith("needs TGANv2's C3D UCF-101 files")
    assert statuses(plain)["fvd2048_16f"] == "needs 16-frame videos (these have 9)"
    assert statuses(_ctx(features="pool"))["fvd2048_16f"] == "needs I3D logits (evaluate.features is 'pool')"


def _direct_is(logits: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) || p(y))) written out with scipy's softmax and entropy."""
    from scipy.special import softmax
    from scipy.stats import entropy

    p = softmax(logits.astype(np.float64), axis=1)
    marginal = p.mean(axis=0)
    return float(np.exp(np.mean([entropy(row, marginal) for row in p])))


def test_i3d_inception_score_of_paper_table_3_is_the_formula():
    ctx = _ctx(source="kinetics600")
    assert statuses(ctx)["is_i3d"] == "" and generated_detectors(ctx) == ["i3d"]
    assert statuses(_ctx(source="kinetics600", features="pool"))["is_i3d"] == (
        "needs I3D logits (evaluate.features is 'pool')")
    logits = np.random.default_rng(0).standard_normal((50, 400)).astype(np.float32) * 4
    entry = METRICS["is_i3d"].score({"features": logits}, None, ctx, False)
    assert entry["computed"] and entry["n_generated"] == 50 and entry["interval"] is None
    assert entry["value"] == pytest.approx(_direct_is(logits), rel=1e-9)
    confident = np.full((400, 400), -50.0, np.float32)
    np.fill_diagonal(confident, 50.0)  # every class once, with certainty: IS = the number of classes
    assert METRICS["is_i3d"].score({"features": confident}, None, ctx, False)["value"] == pytest.approx(400, rel=1e-6)


def test_evaluate_reports_the_i3d_inception_score_for_kinetics(tmp_path):
    """`vdm evaluate` of a Kinetics-600 config: the I3D IS beside the FVD (from the logits the FVD computes)."""
    from vdm.__main__ import main

    cfg = {"name": "k600", "data": {"source": "kinetics600", "root": str(tmp_path), "resolution": 16, "frames": 9},
           "model": {"size": "tiny"}, "evaluate": {"num_bootstrap": 0, "batch_size": 4}}
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", videos=rng.integers(0, 256, (4, 9, 16, 16, 3), dtype=np.uint8), seeds=np.arange(4))
    np.savez(tmp_path / "r.npz", videos=rng.integers(0, 256, (4, 9, 16, 16, 3), dtype=np.uint8))
    out = tmp_path / "m.json"
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(["evaluate", "--config", str(cfg_path), "--samples", str(tmp_path / "s.npz"), "--real",
                     str(tmp_path / "r.npz"), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    entry = json.loads(out.read_text())["also"]["is_i3d"]
    assert entry["computed"] and entry["n_generated"] == 4 and 1.0 <= entry["value"] <= 4.0


def test_an_extension_set_is_measured_on_one_block():
    from vdm.metrics.evaluate import set_outputs
    from vdm.metrics.registry import extension_window

    assert extension_window("last", "extension", 10, 28) == (18, 28)
    assert extension_window("first", "extension", 10, 28) == (0, 10)
    assert extension_window("whole", "extension", 10, 28) is None
    assert extension_window("last", "prediction", 10, 10) is None
    assert extension_window("last", "extension", 10, 10) is None  # one block: the whole video

    class Seen:  # records the frames each detector is given (the real networks: tests/test_digits.py, workflow)
        def outputs(self, detector, videos, progress):
            first = videos[:, :, 0, 0, 0].astype(np.float32)  # [N, T]: frame t holds the value t
            return {"logits": first, "features": first.mean(1)} if detector == "digits" else {"features": first}

    videos = np.broadcast_to(np.arange(28, dtype=np.uint8)[None, :, None, None, None], (2, 28, 4, 4, 1))
    cfg = ExperimentConfig.from_dict({"evaluate": {"extension_window": "last"}})
    ctx = Context(cfg, 10, window=(18, 28))
    assert set_outputs(ctx, Seen(), "i3d", videos, False)["features"][0].tolist() == list(range(18, 28))
    digits = set_outputs(ctx, Seen(), "digits", videos, False)
    assert digits["logits"].shape == (2, 28) and digits["features"].tolist() == [22.5, 22.5]  # the window's mean
    assert set_outputs(Context(cfg, 28), Seen(), "i3d", videos, False)["features"].shape == (2, 28)
