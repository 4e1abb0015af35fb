"""`vdm mp4`: a sample set as one H.264 grid video, decoded back with PyAV."""

from __future__ import annotations

import numpy as np

from vdm.artifacts.samples import write_samples
from vdm.data.common import decode_mp4
from vdm.sampling.gif import video_grid
from vdm.sampling.mp4 import main, mp4_grid


def test_a_sample_set_becomes_a_grid_video_that_decodes_to_its_frames(tmp_path, capsys):
    rng = np.random.default_rng(0)
    videos = np.zeros((5, 10, 16, 16, 1), np.uint8)  # [N, T, H, W, C]: a bright square moving right
    for t in range(10):
        videos[:, t, 4:12, t:t + 6] = 200 + rng.integers(0, 40, (5, 1, 1, 1), dtype=np.uint8)
    samples = tmp_path / "samples.npz"
    write_samples(samples, {"videos": videos, "seeds": np.arange(5)}, {"sampler": "ancestral"})
    out = tmp_path / "grid.mp4"
    assert main([str(samples), "--out", str(out), "--videos", "4", "--fps", "8", "--scale", "2"]) == 0
    assert "4 videos x 10 frames" in capsys.readouterr().out
    decoded = decode_mp4(out.read_bytes(), 1)  # [T, GH, GW, 1]
    grid = video_grid(videos[:4]).repeat(2, axis=1).repeat(2, axis=2)  # 2 x 2 grid, magnified: [10, 70, 70, 1]
    assert decoded.shape[0] == 10 and decoded.shape[1:3] == (70, 70)
    err = np.abs(decoded[..., 0].astype(int) - grid[..., 0].astype(int))
    assert err.mean() < 6 and np.corrcoef(decoded[..., 0].ravel(), grid[..., 0].ravel())[0, 1] > 0.97
    assert mp4_grid(videos[:4], scale=2) == out.read_bytes()  # deterministic: the same frames, the same bytes


def test_odd_sides_are_padded_and_bad_input_names_the_file(tmp_path, capsys):
    videos = np.full((3, 9, 7, 7, 3), 128, np.uint8)
    data = mp4_grid(videos, scale=1)  # a 2 x 2 grid of 7-pixel frames: 17 x 17, padded to 18 x 18
    assert decode_mp4(data, 3).shape == (9, 18, 18, 3)
    assert main([str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "missing.npz" in capsys.readouterr().err and not (tmp_path / "x.mp4").exists()
