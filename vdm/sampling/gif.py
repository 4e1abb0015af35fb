"""A GIF grid of videos for eyes (Pillow), written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from vdm.utils.io import atomic_path


def video_grid(videos: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """uint8 [N, T, H, W, C] → uint8 [T, rows·(H+pad)+pad, cols·(W+pad)+pad, C] (black padding)."""
    if videos.ndim != 5 or videos.dtype != np.uint8:
        raise ValueError(f"expected uint8 videos [N, T, H, W, C], got {videos.dtype} {videos.shape}")
    N, T, H, W, C = videos.shape
    cols = ncols or math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    grid = np.zeros((T, rows * (H + pad) + pad, cols * (W + pad) + pad, C), dtype=np.uint8)
    for i in range(N):
        r, c = divmod(i, cols)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        grid[:, y : y + H, x : x + W] = videos[i]
    return grid


def write_gif_grid(path: str | Path, videos: np.ndarray, *, fps: float = 8.0, ncols: int | None = None,
                   scale: int = 0) -> None:
    """Write videos uint8 [N, T, H, W, C] (C = 1 or 3) as one looping GIF grid.

    scale: integer nearest-neighbour magnification (0: enough to make frames at least 128 pixels tall).
    """
    grid = video_grid(videos, ncols)  # [T, GH, GW, C]
    if scale <= 0:
        scale = max(1, 128 // max(1, videos.shape[2]))
    if scale > 1:
        grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    C = grid.shape[-1]
    if C not in (1, 3):
        raise ValueError(f"GIF needs 1 or 3 channels, got {C}")
    frames = [Image.fromarray(np.ascontiguousarray(f[..., 0] if C == 1 else f)) for f in grid]  # "L" or "RGB"
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=max(1, round(1000 / fps)), optimize=False)
