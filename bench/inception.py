"""Frame-FID throughput: Inception pool3 features (vdm.metrics.inception) of uint8 frames on this machine.

    python bench/inception.py [--frames 64] [--size 32] [--threads 1,2] [--batch 16] [--repeats 3]

Times ``frame_features`` (our 299x299 TF1 bilinear resize, (x - 128)/128, the pinned TorchScript) on
``--frames`` Moving-MNIST-sized frames (``--size`` pixels, 1 channel) for each thread count; prints frames/s
of the best and the median pass and CPU seconds per frame, and the time a demo evaluation's frame FID takes
at that rate (the last line: ``frames_per_s=<best, most threads>``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _threads import time_by_threads

from vdm.metrics import inception


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    frames = np.random.default_rng(0).integers(0, 256, (args.frames, args.size, args.size, 1), dtype=np.uint8)
    model = inception.load_inception()
    inception.frame_features(frames[: args.batch], model, batch_size=args.batch)  # warm-up
    rate = 0.0
    for t in time_by_threads(lambda: inception.frame_features(frames, model, batch_size=args.batch), args.frames,
                             args.threads, args.repeats):
        rate = t["per_s_best"]
        print(json.dumps({"threads": t["threads"], "frames": args.frames, "size": args.size,
                          "frames_per_s_best": round(rate, 2), "frames_per_s_median": round(t["per_s_median"], 2),
                          "cpu_s_per_frame": round(t["cpu_s_per_item"], 4)}))
    # the demo (config/config.yaml with evaluate.frame_fid): 64 real clips x 10 frames x 2 splits, 16 x 10 per set
    print(f"demo real clips (2 x 64 x 10 frames): {1280 / rate:.0f} s; one sample set (16 x 10): {160 / rate:.0f} s")
    print(f"frames_per_s={rate:.2f}")


if __name__ == "__main__":
    main()
