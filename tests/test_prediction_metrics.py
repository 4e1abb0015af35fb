"""PSNR / SSIM of predicted frames (vdm.metrics.prediction): scikit-image's values against the formulas on
constructed pairs, best-of-k, the interval over clips by simulation, and k draws per conditioning clip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdm.config import ExperimentConfig
from vdm.metrics import prediction, registry


def _const(value: int, shape=(1, 3, 16, 16, 1)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def test_psnr_and_ssim_are_the_formulas_on_constant_frames():
    ref, video = _const(100), _const(110)
    s = prediction.frame_scores(video, ref)
    # PSNR = 10 log10(255^2 / MSE), MSE = 10^2; SSIM of constant frames a, b = (2ab + C1) / (a^2 + b^2 + C1)
    assert s["psnr"] == pytest.approx(np.full((1, 3), 10 * math.log10(255**2 / 100)))
    c1 = (0.01 * 255) ** 2
    assert s["ssim"] == pytest.approx(np.full((1, 3), (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)))
    same = prediction.frame_scores(ref, ref)
    assert np.all(same["psnr"] == prediction.PSNR_CAP) and np.allclose(same["ssim"], 1.0)


def test_ssim_sees_structure_that_psnr_weighs_equally():
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 190, 32)
    ref = np.add.outer(ramp, ramp)[None, None, :, :, None].__floordiv__(2).astype(np.uint8)  # a smooth frame
    shifted = np.clip(ref.astype(int) + 20, 0, 255).astype(np.uint8)  # the same structure, brighter
    noisy = np.clip(ref.astype(int) + rng.choice([-20, 20], ref.shape), 0, 255).astype(np.uint8)
    a, b = prediction.frame_scores(shifted, ref), prediction.frame_scores(noisy, ref)
    assert abs(a["psnr"][0, 0] - b["psnr"][0, 0]) < 1.5  # about the same squared error
    assert a["ssim"][0, 0] > b["ssim"][0, 0] + 0.1  # structure kept scores higher


def test_mean_and_best_of_k_read_the_predicted_frames_only():
    per_frame = np.array([[99.0, 10, 12], [99.0, 20, 22],  # clip 0: draws 0, 1
                          [99.0, 5, 7], [99.0, 1, 1]])  # clip 1
    mean = prediction.pixel_entry(per_frame, given=[0], k=2, level=0.95)
    assert mean["value"] == pytest.approx((11 + 21 + 6 + 1) / 4) and mean["frames"] == [1, 2]
    assert mean["n_clips"] == mean["n_real"] == 2 and mean["per_frame"] == pytest.approx([9.0, 10.5])
    best = prediction.best_of_k_entry(per_frame, given=[0], k=2, level=0.95)
    assert best["value"] == pytest.approx((21 + 6) / 2) and best["per_frame"] == pytest.approx([12.5, 14.5])
    with pytest.raises(prediction.PredictionMetricError, match="whole number of clips"):
        prediction.pixel_entry(per_frame[:3], given=[0], k=2, level=0.95)


def test_the_interval_over_clips_covers_the_mean_95_percent():
    rng = np.random.default_rng(1)
    k, clips, frames, trials, hits = 4, 16, 6, 2000, 0
    for _ in range(trials):  # per-clip effects shared by the clip's draws: the draws are not independent
        clip = rng.normal(0, 2, (clips, 1, 1))
        v = 20 + clip + rng.normal(0, 1, (clips, k, frames))
        lo, hi = prediction.pixel_entry(v.reshape(clips * k, frames), [], k, 0.95)["interval"]
        hits += lo <= 20 <= hi
    assert 0.93 <= hits / trials <= 0.97


def test_the_registry_computes_them_for_prediction_sets_only():
    cfg = ExperimentConfig.from_dict({})
    pred = registry.Context(cfg, 10, cond_frames=(0, 1, 2, 3), task="prediction", draws_per_clip=4)
    st = registry.statuses(pred)
    assert st["psnr"] == st["ssim"] == st["psnr_best"] == st["ssim_best"] == ""
    assert "prediction" in registry.generated_detectors(pred)
    one = registry.statuses(registry.Context(cfg, 10, cond_frames=(0,), task="prediction"))
    assert "psnr" in one and "psnr_best" not in one  # best of 1 is the mean
    assert "psnr" not in registry.statuses(registry.Context(cfg, 10, task="unconditional"))


def test_k_draws_per_clip_condition_on_the_same_clip(tmp_path):
    from vdm.sampling import generate

    seen = []

    def fake_load(cfg, num, frames, start=0):  # clip c holds the value c (the real loader: tests/test_sampling_cli)
        seen.append((start, num))
        return np.arange(start, num, dtype=np.uint8)[:, None, None, None, None] * np.ones((1, frames, 2, 2, 1),
                                                                                         np.uint8), \
            {"cls": np.arange(start, num), "txt": None, "key": [f"k{c}" for c in range(start, num)]}

    cfg = ExperimentConfig.from_dict({"sample": {"task": "prediction", "num_samples": 12, "samples_per_clip": 3}})
    orig, generate.load_clips = generate.load_clips, fake_load
    try:
        clips, meta = generate.clips_of_samples(cfg, 4, 11, 5)  # samples 4..10: clips 1, 1, 2, 2, 2, 3, 3
    finally:
        generate.load_clips = orig
    assert seen == [(1, 4)] and clips[:, 0, 0, 0, 0].tolist() == [1, 1, 2, 2, 2, 3, 3]
    assert meta["cls"].tolist() == [1, 1, 2, 2, 2, 3, 3] and meta["key"] == ["k1", "k1", "k2", "k2", "k2", "k3", "k3"]
    with pytest.raises(Exception, match="samples_per_clip"):
        ExperimentConfig.from_dict({"sample": {"num_samples": 10, "samples_per_clip": 3}})
