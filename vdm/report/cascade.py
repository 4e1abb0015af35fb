"""The Figure 2 cascade's pictures: each low-resolution extended video beside its super-resolution.

``cascade_figures`` reads the two stages' sample sets (``OUT/cascade/{extension,superres}/samples.npz``),
checks that the second super-resolves the first (same videos, same frames, an integer factor), and
writes a looping GIF (rows: videos; left: the low-resolution video magnified by nearest neighbour to the
high resolution, right: its super-resolution) and a PNG of evenly spaced frames (per video two rows:
low-resolution magnified, super-resolved).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vdm.artifacts.samples import read_samples
from vdm.report.tables import ReportError
from vdm.sampling.gif import write_gif_grid
from vdm.utils.io import atomic_path


def load_pair(low_npz: str | Path, high_npz: str | Path, videos: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(low [n, T, h, w, C], high [n, T, H, W, C], factor H / h) of the first ``videos`` of both sets."""
    low, _ = read_samples(low_npz, limit=videos)
    high, _ = read_samples(high_npz, limit=videos)
    if low.shape[:2] != high.shape[:2] or low.shape[-1] != high.shape[-1]:
        raise ReportError(f"{high_npz}: videos {high.shape} do not super-resolve {low_npz} {low.shape} "
                          "(videos, frames and channels must agree)")
    factor = high.shape[2] // low.shape[2]
    if factor < 1 or high.shape[2:4] != (low.shape[2] * factor, low.shape[3] * factor):
        raise ReportError(f"{high_npz}: frames {high.shape[2:4]} are not an integer multiple of the "
                          f"low-resolution frames {low.shape[2:4]} of {low_npz}")
    return low, high, factor


def magnify(videos: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour magnification of uint8 [N, T, h, w, C] → [N, T, h·f, w·f, C]."""
    return videos.repeat(factor, axis=2).repeat(factor, axis=3)


def cascade_figures(low_npz: str | Path, high_npz: str | Path, gif: str | Path, png: str | Path,
                    videos: int = 4, frames_shown: int = 8) -> None:
    low, high, factor = load_pair(low_npz, high_npz, videos)
    big = magnify(low, factor)  # [n, T, H, W, C]
    pairs = np.stack([big, high], axis=1).reshape(-1, *high.shape[1:])  # [2n, T, H, W, C]: low, high, low, ...
    write_gif_grid(gif, pairs, ncols=2)
    n, T, H, W, C = high.shape
    idx = np.linspace(0, T - 1, min(frames_shown, T)).round().astype(int)  # shown frame indices
    pad = 2
    rows = []
    for v in range(n):
        for video in (big[v], high[v]):
            row = np.zeros((H, len(idx) * (W + pad) - pad, C), np.uint8)
            for k, t in enumerate(idx):
                row[:, k * (W + pad):k * (W + pad) + W] = video[t]
            rows.append(row)
    sheet = np.concatenate([np.pad(r, ((0, pad), (0, 0), (0, 0))) for r in rows], axis=0)  # [rows·(H+pad), ., C]
    scale = max(1, 64 // H)
    sheet = sheet.repeat(scale, axis=0).repeat(scale, axis=1)
    image = Image.fromarray(sheet[..., 0] if C == 1 else sheet)
    with atomic_path(png) as tmp:
        image.save(tmp, format="PNG")
