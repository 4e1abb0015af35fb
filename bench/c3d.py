"""C3D throughput (paper Table 1's FID / IS network, vdm.metrics.c3d) on 16-frame clips on this machine.

    python bench/c3d.py [--clips 8] [--size 64] [--threads 1,2] [--batch 4] [--repeats 2]

Times ``c3d_outputs`` (BGR, bilinear resize to 112x112, minus the mean clip, the C3D forward to fc7 and
softmax(fc8)) on ``--clips`` random uint8 clips of 16 x ``--size`` x ``--size`` x 3 for each thread count. The
weights are the architecture's own initialisation (TGANv2's file is user-supplied; the cost does not depend on
the values). Prints clips/s of the best and the median pass, CPU seconds per clip, the time of the paper's
10,000 samples at that rate, and last ``clips_per_s=<best, most threads>``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from _threads import time_by_threads

from vdm.metrics import c3d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    clips = np.random.default_rng(0).integers(0, 256, (args.clips, c3d.FRAMES, args.size, args.size, 3),
                                              dtype=np.uint8)
    torch.manual_seed(0)
    net = c3d.C3DUCF101().eval()
    mean = np.zeros((3, c3d.FRAMES, c3d.INPUT_SIZE, c3d.INPUT_SIZE), np.float32)
    c3d.c3d_outputs(clips[: args.batch], net, mean, batch_size=args.batch)  # warm-up
    rate = 0.0
    for t in time_by_threads(lambda: c3d.c3d_outputs(clips, net, mean, batch_size=args.batch), args.clips,
                             args.threads, args.repeats):
        rate = t["per_s_best"]
        print(json.dumps({"threads": t["threads"], "clips": args.clips, "size": args.size,
                          "clips_per_s_best": round(rate, 2), "clips_per_s_median": round(t["per_s_median"], 2),
                          "cpu_s_per_clip": round(t["cpu_s_per_item"], 3)}))
    print(f"paper Table 1's 10,000 samples at this rate: {10000 / rate / 60:.0f} min")
    print(f"clips_per_s={rate:.2f}")


if __name__ == "__main__":
    main()
