"""`vdm sample` end to end on CPU: a random-init tiny U-Net export, real Moving-MNIST test clips.

Every task (unconditional, prediction, extension, super-resolution), class + text conditioning with
classifier-free guidance, the npz contract, the GIF grid, batch-size invariance and bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, tiny_config_dict, write_config
from PIL import Image

from vdm.artifacts.export import save_export
from vdm.diffusion.config import DiffusionConfig
from vdm.model import UNet3D, named_size
from vdm.sampling.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def _export(path, **model):
    torch.manual_seed(0)
    cfg = named_size("tiny", **model)
    net = UNet3D(cfg)
    with torch.no_grad():
        for p in net.parameters():  # zero-initialised layers: make the output depend on everything
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.1)
    save_export(path, net.state_dict(), cfg, DiffusionConfig(prediction="v"), {"step": 0})
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    cfg_dict = tiny_config_dict(root / "data", sample=dict(steps=3, num_samples=3, batch_size=2, gamma=0.1))
    cfg_dict["model"] = {"size": "tiny"}
    cfg = write_config(root / "cfg.yaml", cfg_dict)
    r = subprocess.run([sys.executable, "-m", "vdm", "shard", "--config", str(cfg), "--split", "test", "--quiet",
                        "--workers", "1"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return root, cfg, _export(root / "export.pt")


def _load(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z}


def test_unconditional_npz_gif_and_batch_invariance(setup):
    root, cfg, export = setup
    out, gif = root / "u.npz", root / "u.gif"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--gif", str(gif),
                 "--quiet"]) == 0
    z = _load(out)
    assert z["videos"].dtype == np.uint8 and z["videos"].shape == (3, 4, 16, 16, 1)
    assert z["seeds"].tolist() == [0, 1, 2]
    s = json.loads(str(z["settings"]))
    assert s["sample"]["steps"] == 3 and s["model"]["image_size"] == 16 and len(s["export_sha256"]) == 64
    assert z["videos"].std() > 0 and not np.array_equal(z["videos"][0], z["videos"][1])
    with Image.open(gif) as im:
        assert im.n_frames == 4 and im.size[0] >= 2 * 16
    # same seeds, other batch size: the same videos (uint8 rounding may move a value by one step)
    out1 = root / "u1.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out1), "--quiet",
                 "--set", "sample.batch_size=1"]) == 0
    diff = np.abs(_load(out1)["videos"].astype(int) - z["videos"].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize("method", ["reconstruction", "replacement"])
def test_prediction_from_real_clips(setup, method):
    root, cfg, export = setup
    out = root / f"p-{method}.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--quiet",
                 "--set", "sample.task=prediction", "--set", "sample.cond_frames=2",
                 "--set", f"sample.cond_method={method}", "--set", "sample.sampler=langevin",
                 "--set", "sample.w_r=5"]) == 0
    z = _load(out)
    from vdm.config import load_config
    from vdm.data.loader import eval_clips

    c = load_config(cfg)
    real = eval_clips(c.data, "test", 3, c.seed, frames=4)
    assert np.array_equal(z["cond_videos"], real)  # the protocol's real clips, recorded
    assert z["cond_frame_indices"].tolist() == [0, 1]
    assert np.array_equal(z["videos"][:, :2], real[:, :2])  # x^a reproduced exactly
    assert not np.array_equal(z["videos"][:, 2:], real[:, 2:])
    if method == "replacement":  # sample.clips_seed picks other protocol clips
        out5 = root / "p5.npz"
        assert main(["--export", str(export), "--config", str(cfg), "--out", str(out5), "--quiet",
                     "--set", "sample.task=prediction", "--set", "sample.clips_seed=5", "--set", "sample.steps=1"]) == 0
        assert np.array_equal(_load(out5)["cond_videos"], eval_clips(c.data, "test", 3, 5, frames=4))


def test_extension_to_any_length(setup):
    root, cfg, export = setup
    out = root / "e.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--quiet",
                 "--set", "sample.task=extension", "--set", "sample.cond_frames=0", "--set", "sample.total_frames=9",
                 "--set", "sample.overlap=2", "--set", "sample.num_samples=2"]) == 0
    z = _load(out)
    assert z["videos"].shape == (2, 9, 16, 16, 1) and "cond_videos" not in z


def test_superres_from_low_res_npz(setup):
    root, cfg, export = setup
    low = np.random.default_rng(0).integers(0, 256, (2, 4, 8, 8, 1), dtype=np.uint8)
    np.savez(root / "low.npz", videos=low)
    out = root / "s.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--quiet",
                 "--set", "sample.task=superres", "--set", f"sample.cond_npz={root / 'low.npz'}",
                 "--set", "sample.num_samples=2"]) == 0
    z = _load(out)
    assert z["videos"].shape == (2, 4, 16, 16, 1) and np.array_equal(z["cond_videos"], low)


def test_superres_from_real_clips(setup):
    root, cfg, export = setup
    out = root / "s2.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--quiet",
                 "--set", "sample.task=superres", "--set", "sample.num_samples=2", "--set", "sample.w_r=3"]) == 0
    z = _load(out)
    from vdm.config import load_config
    from vdm.data.loader import eval_clips
    from vdm.sampling.generate import from_uint8, to_uint8
    from vdm.sampling.tasks import downsample

    c = load_config(cfg)
    real = eval_clips(c.data, "test", 2, c.seed, frames=4)
    assert np.array_equal(z["cond_videos"], to_uint8(downsample(from_uint8(real), 2)))  # x^a = D(real clip)
    assert z["videos"].shape == (2, 4, 16, 16, 1)


def test_class_labels_from_clips(setup):
    root, cfg, _ = setup
    export = _export(root / "cls100.pt", num_classes=100)
    out = root / "l.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--quiet",
                 "--set", "sample.task=prediction", "--set", "sample.class_labels=eval",
                 "--set", "sample.guidance_weight=1"]) == 0
    z = _load(out)
    from vdm.config import load_config
    from vdm.data.loader import eval_clips

    c = load_config(cfg)
    _, meta = eval_clips(c.data, "test", 3, c.seed, frames=4, return_meta=True)
    assert z["cls"].tolist() == list(meta["cls"])
    small = _export(root / "cls5.pt", num_classes=5)
    assert main(["--export", str(small), "--config", str(cfg), "--out", str(root / "bad.npz"), "--quiet",
                 "--set", "sample.class_labels=eval"]) == 2  # Moving-MNIST labels go up to 99


def test_class_and_text_conditioning_with_cfg(setup):
    root, cfg, _ = setup
    export = _export(root / "cond.pt", num_classes=5, text_dim=384)
    out = root / "c.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out), "--quiet",
                 "--set", "sample.guidance_weight=2", "--set", "sample.prompts=[one digit, two digits]",
                 "--set", "sample.class_labels=round_robin"]) == 0
    z = _load(out)
    assert z["cls"].tolist() == [0, 1, 2] and z["txt"].tolist() == ["one digit", "two digits", "one digit"]
    # captions from the real clips instead of prompts, labels from the clips
    out2 = root / "c2.npz"
    assert main(["--export", str(export), "--config", str(cfg), "--out", str(out2), "--quiet",
                 "--set", "sample.class_labels=uniform"]) == 0
    z2 = _load(out2)
    assert all(t.startswith("digits") for t in z2["txt"]) and set(z2["cls"].tolist()) <= set(range(5))


def test_bad_input(setup, capsys):
    root, cfg, export = setup
    args = ["--export", str(export), "--config", str(cfg), "--out", str(root / "x.npz"), "--quiet"]
    assert main(args + ["--set", "sample.stepz=3"]) == 2
    assert "sample.stepz" in capsys.readouterr().err
    assert main(args + ["--set", "sample.gamma=2"]) == 2
    assert "gamma" in capsys.readouterr().err
    assert main(["--export", str(root / "missing.pt")] + args[2:]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert main(args + ["--set", "sample.task=superres", "--set", "sample.cond_method=replacement"]) == 2
    assert "reconstruction" in capsys.readouterr().err
    assert main(args + ["--set", "sample.task=prediction", "--set", "sample.cond_frames=4"]) == 2
    assert "conditioning frames" in capsys.readouterr().err
    assert main(args + ["--set", "sample.guidance_weight=1"]) == 2  # unconditional export
    assert "class- or text-conditional" in capsys.readouterr().err
    assert not (root / "x.npz").exists()
    assert main(args + ["--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["sample"]["steps"] == 3


def test_export_flag_and_its_deprecated_alias():
    from vdm.sampling.cli import build_parser

    base = ["--config", "c.yaml", "--out", "o.npz"]
    assert build_parser().parse_args(["--export", "a.pt"] + base).export == "a.pt"
    assert build_parser().parse_args(["--checkpoint", "b.pt"] + base).export == "b.pt"  # deprecated alias
