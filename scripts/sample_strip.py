"""The first videos of a sample set as one PNG: one row per video, its frames left to right (to look at the samples
frame by frame, and for the docs).

    python scripts/sample_strip.py results/mmnist/samples/img4/ancestral-32-w3/samples.npz --videos 10 --out strip.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vdm.artifacts.samples import read_labels, read_samples  # noqa: E402
from vdm.train.watch import frame_strip, write_png  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples", help="a samples.npz (uint8 [N, T, H, W, C])")
    ap.add_argument("--videos", type=int, default=10, help="the first this many videos (rows)")
    ap.add_argument("--scale", type=int, default=3, help="pixel magnification")
    ap.add_argument("--out", required=True, help="PNG to write")
    args = ap.parse_args(argv)
    videos, _ = read_samples(args.samples, limit=args.videos)  # [n, T, H, W, C]
    labels = read_labels(args.samples)
    write_png(args.out, frame_strip(videos), scale=args.scale)
    classes = "" if labels is None else f"; classes of the rows: {' '.join(str(int(c)) for c in labels[:len(videos)])}"
    print(f"{args.out}: {len(videos)} videos x {videos.shape[1]} frames{classes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
