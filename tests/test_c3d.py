"""TGANv2's C3D (paper Table 1's FID and IS on UCF-101): the architecture's shapes and pooling against
Chainer's cover_all formula, the preprocessing against a direct implementation of TGANv2's, the pinned
loading of the two user-supplied files (sha256, keys, shapes, no unpickling), and the metrics in
`vdm evaluate` -- the same from per-chunk features as from the whole set. TGANv2's published files cannot
be downloaded here: the tests write files of the same layout (Chainer npz keys, mean clip shape) with
their own weights and pin those files' hashes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import yaml
from conftest import chunked_set_with_features

from vdm.metrics import c3d

pytestmark = pytest.mark.usefixtures("one_thread")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(weights npz, its sha256, mean npz, its sha256, the network the weights came from): TGANv2's layout."""
    d = tmp_path_factory.mktemp("c3d")
    torch.manual_seed(0)
    net = c3d.C3DUCF101().eval()
    arrays = {}
    for name, _ in c3d.LAYERS:
        layer = getattr(net, name)
        arrays[f"{name}/W"] = layer.weight.detach().numpy()
        arrays[f"{name}/b"] = layer.bias.detach().numpy()
    weights = d / c3d.C3D_FILE
    np.savez(weights, **arrays)
    mean = d / c3d.MEAN_FILE
    rng = np.random.default_rng(0)
    np.savez(mean, mean=rng.uniform(80, 110, c3d.MEAN_SHAPE).astype(np.float32))
    return weights, _sha(weights), mean, _sha(mean), net


def _chainer_max_pool_cover_all(x: np.ndarray, k: tuple[int, ...]) -> np.ndarray:
    """Chainer's max_pooling_nd(ksize=k, stride=k, pad=0, cover_all=True) written out: output size
    ceil((n - k) / k) + 1 per axis, windows clipped at the end."""
    out_shape = [(n - kk + kk - 1) // kk + 1 for n, kk in zip(x.shape[2:], k)]
    out = np.empty(x.shape[:2] + tuple(out_shape), x.dtype)
    for idx in np.ndindex(*out_shape):
        sl = tuple(slice(i * kk, min(i * kk + kk, n)) for i, kk, n in zip(idx, k, x.shape[2:]))
        out[(slice(None), slice(None), *idx)] = x[(slice(None), slice(None), *sl)].max(axis=(2, 3, 4))
    return out


def test_pooling_is_chainers_cover_all_and_16_frames_end_as_fc6_inputs():
    x = torch.randn(1, 2, 3, 7, 5)
    ours = torch.nn.MaxPool3d(2, ceil_mode=True)(x).numpy()
    assert ours.shape == (1, 2, 2, 4, 3)
    np.testing.assert_array_equal(ours, _chainer_max_pool_cover_all(x.numpy(), (2, 2, 2)))
    net = c3d.C3DUCF101().eval()
    seen = {}
    def hook(module, args):
        seen["fc6_in"] = tuple(args[0].shape)

    net.fc6.register_forward_pre_hook(hook)
    with torch.inference_mode():
        fc7, logits = net(torch.zeros(1, 3, 16, 112, 112))
    assert seen["fc6_in"] == (1, 512 * 4 * 4) and fc7.shape == (1, 4096) and logits.shape == (1, 101)
    with pytest.raises(Exception, match="16, 112, 112"):
        net(torch.zeros(1, 3, 8, 112, 112))


def _chainer_resize_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Chainer's resize_images (bilinear, corners aligned): source coordinates linspace(0, n - 1, out)."""
    _, _, h, w = x.shape
    v, u = np.linspace(0, h - 1, out_h), np.linspace(0, w - 1, out_w)
    v0, u0 = np.floor(v).astype(int), np.floor(u).astype(int)
    v1, u1 = np.minimum(v0 + 1, h - 1), np.minimum(u0 + 1, w - 1)
    dv, du = (v - v0)[:, None], (u - u0)[None, :]
    a, b = x[:, :, v0][:, :, :, u0], x[:, :, v0][:, :, :, u1]
    c, d = x[:, :, v1][:, :, :, u0], x[:, :, v1][:, :, :, u1]
    return (1 - dv) * ((1 - du) * a + du * b) + dv * ((1 - du) * c + du * d)


@pytest.mark.parametrize("channels", [3, 1])
def test_preprocessing_is_tgan2s_bgr_resize_minus_mean(channels):
    """TGANv2: x = (u - 128) / 128, then 128 * BGR(x), resize to 112x112, + 128 - mean crop; for uint8 frames
    that is resize(BGR(u)) - mean crop, written out here in float64 with Chainer's resize."""
    rng = np.random.default_rng(channels)
    videos = rng.integers(0, 256, (2, 16, 20, 24, channels), dtype=np.uint8)
    mean = rng.uniform(0, 255, (3, 16, 112, 112)).astype(np.float32)
    ours = c3d.preprocess_clips(videos, mean).numpy()
    assert ours.shape == (2, 3, 16, 112, 112) and ours.dtype == np.float32
    for i in range(2):
        x = (videos[i].astype(np.float64) - 128.0) / 128.0  # [16, H, W, C], TGANv2's data scaling
        x = np.broadcast_to(x, x.shape[:3] + (3,)).transpose(0, 3, 1, 2)[:, ::-1] * 128  # [16, 3(BGR), H, W]
        direct = _chainer_resize_bilinear(x, 112, 112).transpose(1, 0, 2, 3) + 128 - mean  # [3, 16, 112, 112]
        np.testing.assert_allclose(ours[i], direct, atol=2e-3)
    with pytest.raises(Exception, match="16-frame"):
        c3d.preprocess_clips(videos[:, :9], mean)


def test_weights_and_mean_are_pinned_checked_and_read_without_unpickling(files, tmp_path):
    weights, w_sha, mean, m_sha, net = files
    loaded = c3d.load_c3d(weights, w_sha)
    x = c3d.preprocess_clips(np.random.default_rng(0).integers(0, 256, (1, 16, 32, 32, 3), dtype=np.uint8),
                             c3d.load_mean(mean, m_sha))
    with torch.inference_mode():
        for a, b in zip(loaded(x), net(x)):
            torch.testing.assert_close(a, b)
    assert c3d.load_mean(mean, m_sha).shape == (3, 16, 112, 112)
    np.testing.assert_array_equal(c3d.load_mean(mean, m_sha), np.load(mean)["mean"][:, :, 8:120, 8:120])
    with pytest.raises(c3d.C3DWeightsError, match="sha256 .* != pinned"):
        c3d.load_c3d(weights, m_sha)
    with pytest.raises(c3d.C3DWeightsError, match="no sha256 pinned"):
        c3d.load_c3d(weights, "")
    with pytest.raises(c3d.C3DWeightsError, match="no such file"):
        c3d.load_c3d(tmp_path / "absent.npz", w_sha)
    with np.load(weights) as z:
        arrays = {k: z[k] for k in z.files}
    cases = {
        "missing": ({k: v for k, v in arrays.items() if k != "fc8/b"}, r"missing \['fc8/b'\]"),
        "extra": ({**arrays, "fc9/W": np.zeros(2, np.float32)}, r"unexpected \['fc9/W'\]"),
        "shape": ({**arrays, "fc8/W": np.zeros((10, 4096), np.float32)}, r"fc8/W has shape \(10, 4096\)"),
    }
    for name, (content, match) in cases.items():
        p = tmp_path / f"{name}.npz"
        np.savez(p, **content)
        with pytest.raises(c3d.C3DWeightsError, match=match):
            c3d.load_c3d(p, _sha(p))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mean=np.array([{"a": 1}], dtype=object))
    with pytest.raises(c3d.C3DWeightsError, match="not a plain-array"):
        c3d.load_mean(pickled, _sha(pickled))
    small = tmp_path / "small_mean.npz"
    np.savez(small, mean=np.zeros((3, 16, 112, 112), np.float32))
    with pytest.raises(c3d.C3DWeightsError, match=r"\(3, 16, 128, 171\)"):
        c3d.load_mean(small, _sha(small))


def test_c3d_config_needs_both_files_and_their_hashes():
    from vdm.config_base import ConfigError
    from vdm.metrics.config import EvalConfig

    with pytest.raises(ConfigError, match="c3d_mean is empty"):
        EvalConfig(c3d_weights="w.npz", c3d_weights_sha256="0" * 64).validate()
    with pytest.raises(ConfigError, match="c3d_mean_sha256 must be a sha256"):
        EvalConfig(c3d_weights="w.npz", c3d_weights_sha256="0" * 64, c3d_mean="m.npz",
                   c3d_mean_sha256="abc").validate()
    with pytest.raises(ConfigError, match="c3d_fid_split"):
        EvalConfig(c3d_fid_split="val").validate()


def test_evaluate_reports_c3d_fid_and_is_the_same_from_chunk_features(files, tmp_path, capsys):
    """`vdm evaluate` with the C3D files configured: FID (C3D fc7, real clips of the train split, bootstrap
    interval) and IS (class probabilities, evaluate.c3d_is_splits parts) beside the FVD; the per-chunk features
    path gives the same numbers; FID of the real features with themselves is 0, and real clips of the test
    split are far closer to those of the train split than the noise videos are."""
    from vdm.__main__ import main

    weights, w_sha, mean, m_sha, _ = files
    cfg = {
        "name": "c3d-test",
        "data": {"source": "moving_mnist", "resolution": 16, "channels": 1, "frames": 16, "images_per_video": 0,
                 "mnist_video_length": 16, "mnist_train_videos": 6, "mnist_test_videos": 6, "shard_size": 6,
                 "shards": str(tmp_path / "data")},
        "model": {"size": "tiny"},
        "evaluate": {"num_real": 6, "num_bootstrap": 5, "batch_size": 3, "cache_dir": str(tmp_path / "cache"),
                     "c3d_weights": str(weights), "c3d_weights_sha256": w_sha, "c3d_mean": str(mean),
                     "c3d_mean_sha256": m_sha, "c3d_is_splits": 2},
    }
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    for split in ("train", "test"):
        assert main(["shard", "--config", str(cfg_path), "--split", split, "--quiet"]) == 0
    videos = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 16, 1), dtype=np.uint8)
    samples, feats = chunked_set_with_features(tmp_path, cfg_path, videos, [(0, 3), (3, 6)],
                                               {"sample": {"steps": 8}, "experiment": "c3d-test"})
    whole, chunked = tmp_path / "whole.json", tmp_path / "chunked.json"
    common = ["evaluate", "--config", str(cfg_path), "--samples", str(samples), "--quiet"]
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(common + ["--out", str(whole)]) == 0
        assert main(common + ["--out", str(chunked), "--gen-features", *feats]) == 0
    a, b = json.loads(whole.read_text())["also"], json.loads(chunked.read_text())["also"]
    for name in ("c3d_fid", "c3d_is"):
        assert a[name]["computed"] and b[name]["computed"]
        assert b[name]["value"] == pytest.approx(a[name]["value"], rel=1e-4)
    assert a["c3d_fid"]["value"] > 0 and (a["c3d_fid"]["n_real"], a["c3d_fid"]["n_generated"]) == (6, 6)
    assert a["c3d_fid"]["split"] == "train" and a["c3d_fid"]["interval"] is not None
    assert a["c3d_is"]["splits"] == 2 and 1.0 <= a["c3d_is"]["value"] <= 101
    # another pin: chunk features made under the old one are refused, and the file is not the pinned one
    bad = tmp_path / "bad.json"
    pin = ["--set", f"evaluate.c3d_mean_sha256={w_sha}"]
    capsys.readouterr()
    assert main(common + ["--out", str(bad), "--gen-features", *feats, *pin]) == 2  # refused before any metric
    assert "c3d outputs of another network, weights" in capsys.readouterr().err
    assert main(common + ["--out", str(bad), *pin]) == 2
    assert "mean2.npz: sha256" in capsys.readouterr().err
    assert not bad.exists()
    # sanity with the real clips: real train vs real test far below real train vs the noise videos
    from vdm.config import load_config
    from vdm.data.loader import eval_clips
    from vdm.metrics.detectors import Networks
    from vdm.metrics.evaluate import real_features
    from vdm.metrics.stats import fid_entry

    exp = load_config(cfg_path)
    nets = Networks(exp.evaluate, "cpu")
    cached = list((tmp_path / "cache").glob("real-train-c3d-*.npz"))
    assert len(cached) == 1  # the evaluation without --real-features kept them under evaluate.cache_dir
    mtime = cached[0].stat().st_mtime_ns
    real_train = real_features(exp, "c3d", "train", 16, nets, progress=False)[0]["fc7"]
    assert cached[0].stat().st_mtime_ns == mtime  # read, not recomputed
    test_clips = np.asarray(eval_clips(exp.data, "test", 6, 0, frames=16))
    real_test, noise = nets.outputs("c3d", test_clips, False)["fc7"], nets.outputs("c3d", videos, False)["fc7"]
    real_vs_real = fid_entry(real_train, real_test, exp.evaluate)["value"]
    real_vs_noise = fid_entry(real_train, noise, exp.evaluate)["value"]
    assert real_vs_real < 0.5 * real_vs_noise
    assert fid_entry(real_train, real_train, exp.evaluate)["value"] == pytest.approx(0.0, abs=1e-6 * real_vs_noise)


def test_workflow_c3d_real_features_are_a_declared_output(files, tmp_path):
    """With the C3D files configured, the real clips' C3D outputs are the job `real_features_c3d` and the file
    metrics/real-c3d-16f-train.npz that every evaluation names as an input (nothing under evaluate.cache_dir):
    deleting the file, then the same command, recomputes it (the same bytes); --forcerun redoes it."""
    from test_workflow import TEST_CONFIG, config_args, rules_run, snakemake

    weights, w_sha, mean, m_sha, _ = files
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["data"].update(frames=16, mnist_video_length=16)
    cfg.pop("cascade")  # its 12-frame extension is shorter than a 16-frame block
    cfg["evaluate"].update(c3d_weights=str(weights), c3d_weights_sha256=w_sha, c3d_mean=str(mean),
                           c3d_mean_sha256=m_sha, frame_fid=False)
    path = tmp_path / "c3d.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    work.mkdir()
    dry = snakemake("-n", "--printshellcmds", *config_args(path), cwd=work)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert rules_run(dry.stdout).count("real_features_c3d") == 1
    evaluations = [line for line in dry.stdout.splitlines() if "vdm evaluate" in line and "--gen-features" in line]
    assert evaluations and all("results/test/metrics/real-c3d-16f-train.npz" in line for line in evaluations)
    target = "results/test/metrics/real-c3d-16f-train.npz"
    r = snakemake(target, "--cores", "2", *config_args(path), cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    real = work / target
    first = real.read_bytes()
    with np.load(real) as z:
        assert z["out.fc7"].shape == (cfg["evaluate"]["num_real"], c3d.FEATURE_DIM)
    real.unlink()
    r = snakemake(target, "--cores", "2", *config_args(path), cwd=work)
    assert r.returncode == 0 and rules_run(r.stdout + r.stderr) == ["real_features_c3d"], r.stdout + r.stderr
    assert real.read_bytes() == first
    mtime = real.stat().st_mtime_ns
    r = snakemake(target, "--cores", "2", "--forcerun", "real_features_c3d", *config_args(path), cwd=work)
    assert r.returncode == 0 and "real_features_c3d" in rules_run(r.stdout + r.stderr), r.stdout + r.stderr
    assert real.stat().st_mtime_ns != mtime and real.read_bytes() == first
    assert not (work / "results" / "fvd_cache").exists()
