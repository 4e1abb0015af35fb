"""What every detector's preprocessing shares: the checked uint8 video arrays of a
samples file, the device default, and TF1's ``resize_bilinear`` (the resize of the reference FVD and FID code).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import read_samples
from vdm.metrics.config import I3D_MIN_FRAMES
from vdm.metrics.errors import FVDError


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=32)
def tf1_bilinear_weights(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower, upper, lerp) of TF1 ``resize_bilinear`` (align_corners=False, half_pixel_centers=False).

    src = dst * (in / out) in float32 (TF's LegacyScaler), lower = floor(src),
    upper = min(ceil(src), in - 1), lerp = src - floor(src): no half-pixel offset, no antialiasing.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale  # [out]
    lower = np.floor(src)
    upper = np.minimum(np.ceil(src), in_size - 1)
    lerp = (src - lower).astype(np.float32)
    return (torch.from_numpy(lower.astype(np.int64)), torch.from_numpy(upper.astype(np.int64)),
            torch.from_numpy(lerp))


def resize_bilinear_tf1(frames: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear`` of float frames [M, H, W, C] → float32 [M, out_h, out_w, C].

    Same arithmetic order as TF's kernel: interpolate along x first (top and bottom rows), then y.
    """
    frames = frames.float()
    m, h, w, c = frames.shape
    if (h, w) == (out_h, out_w):
        return frames
    x0, x1, xl = (t.to(frames.device) for t in tf1_bilinear_weights(w, out_w))
    y0, y1, yl = (t.to(frames.device) for t in tf1_bilinear_weights(h, out_h))
    left, right = frames[:, :, x0], frames[:, :, x1]  # [M, H, out_w, C]
    rows = left + (right - left) * xl[None, None, :, None]  # [M, H, out_w, C]
    top, bottom = rows[:, y0], rows[:, y1]  # [M, out_h, out_w, C]
    return top + (bottom - top) * yl[None, :, None, None]


def check_videos(videos: np.ndarray | torch.Tensor, name: str = "videos") -> None:
    """uint8 [N, T, H, W, C] with C in {1, 3} and T >= 9, else :class:`FVDError` naming ``name``."""
    shape = tuple(videos.shape)
    dtype = str(videos.dtype).replace("torch.", "")
    if len(shape) != 5 or shape[-1] not in (1, 3):
        raise FVDError(f"{name}: expected uint8 videos [N, T, H, W, C] with C = 1 or 3, got shape {shape}")
    if dtype != "uint8":
        raise FVDError(f"{name}: expected dtype uint8 (0..255), got {dtype}")
    if shape[0] < 1:
        raise FVDError(f"{name}: no videos")
    if shape[1] < I3D_MIN_FRAMES:
        raise FVDError(f"{name}: I3D needs at least {I3D_MIN_FRAMES} frames per video "
                       f"(16 by convention), got {shape[1]}")


def load_videos_npz(path: str | os.PathLike, key: str = "videos") -> tuple[np.ndarray, dict[str, Any]]:
    """A samples/clips ``.npz`` read with :func:`vdm.artifacts.samples.read_samples`, checked for I3D
    (uint8 [N, T, H, W, C], T >= 9); every error is a :class:`FVDError` naming the file."""
    try:
        videos, extra = read_samples(path, key)
    except ArtifactError as e:
        raise FVDError(str(e)) from None
    check_videos(videos, name=f"{path}:{key}")
    return videos, extra
