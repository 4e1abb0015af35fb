"""``vdm mp4 SAMPLES.npz --out VIDEOS.mp4``: a sample set as one H.264 video grid (PyAV), for players and slides.

The first ``--videos`` videos of the set side by side (the same grid as the set's GIF), magnified to at least 128
pixels per frame, padded to even sides (yuv420p), encoded deterministically (the shards' encoder,
:func:`vdm.data.common.encode_mp4`) and written atomically.

    vdm mp4 results/mmnist/samples/img4/ancestral-32-w3/samples.npz --out main.mp4 --videos 16 --fps 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import read_samples
from vdm.cliargs import EXIT_OK, fail
from vdm.data.common import encode_mp4
from vdm.sampling.gif import video_grid
from vdm.utils.io import atomic_path


def mp4_grid(videos: np.ndarray, *, fps: float = 8.0, ncols: int | None = None, scale: int = 0,
             crf: int = 12) -> bytes:
    """H.264 bytes of videos uint8 [N, T, H, W, C] as one grid video [T, GH, GW, 3] (even sides)."""
    grid = video_grid(videos, ncols)  # [T, GH, GW, C]
    if scale <= 0:
        scale = max(1, 128 // max(1, videos.shape[2]))
    grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    T, GH, GW, C = grid.shape
    even = np.zeros((T, GH + GH % 2, GW + GW % 2, C), np.uint8)  # yuv420p needs even sides
    even[:, :GH, :GW] = grid
    return encode_mp4(even, fps, crf)


def write_mp4_grid(path: str | Path, videos: np.ndarray, **kwargs: float | int | None) -> None:
    data = mp4_grid(videos, **kwargs)  # type: ignore[arg-type]
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vdm mp4", description=__doc__.split("\n\n")[0],
                                epilog="example:\n  " + __doc__.rstrip().splitlines()[-1].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", help="a sample set or chunk (.npz, uint8 videos [N, T, H, W, C])")
    p.add_argument("--out", required=True, help="the .mp4 to write")
    p.add_argument("--videos", type=int, default=16, help="the first this many videos (default 16)")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")
    p.add_argument("--cols", type=int, default=0, help="videos per row (default: a square grid)")
    p.add_argument("--scale", type=int, default=0, help="magnification (default: frames at least 128 pixels)")
    args = p.parse_args(argv)
    if args.videos < 1 or args.fps <= 0:
        return fail("vdm mp4", f"--videos must be >= 1 and --fps > 0, got {args.videos} and {args.fps}")
    try:
        videos, _ = read_samples(args.samples, limit=args.videos)
    except (ArtifactError, FileNotFoundError, OSError) as e:
        return fail("vdm mp4", e)
    write_mp4_grid(args.out, videos, fps=args.fps, ncols=args.cols or None, scale=args.scale)
    print(f"{args.out}: {len(videos)} videos x {videos.shape[1]} frames")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
