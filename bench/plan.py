"""Check `vdm plan`'s cost model against measured CPU time at small sizes.

The plan predicts a stage's time as counted FLOPs / a sustained rate. Here the rate is measured on this
machine (one timed U-Net forward at the sampling batch), and the prediction for whole sample sets --
unguided, classifier-free guided, prediction with reconstruction guidance -- is compared with the
measured time of `vdm.sampling.generate` on the same settings. Prints one line per setting and last
`ratio=<predicted s / measured s>` (median over the settings); near 1 means the FLOP model holds.

    python bench/plan.py [--size demo] [--frames 10] [--res 32] [--num 8] [--steps 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vdm.diffusion import CosineSchedule
from vdm.model import UNet3D, named_size
from vdm.plan import forward_flops, sample_cost_factor
from vdm.sampling import tasks
from vdm.sampling.config import SampleConfig
from vdm.sampling.samplers import network_evaluations
from vdm.sampling.seeds import StackedGenerator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="demo")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--num", type=int, default=8, help="samples per set (one batch)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mc = named_size(args.size, image_size=args.res, num_classes=10)
    net = UNet3D(mc).eval()
    T, S, B = args.frames, args.res, args.num
    z = torch.randn(B, 1, T, S, S)
    lam, cls = torch.zeros(B), torch.arange(B) % 10
    with torch.no_grad():
        for _ in range(2):
            net(z, lam, cls=cls)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            net(z, lam, cls=cls)
            times.append(time.perf_counter() - t0)
    f_fwd = forward_flops(mc, T)  # one video
    rate = f_fwd * B / statistics.median(times)
    print(f"{args.size} U-Net {T}x{S}x{S}: {f_fwd / 1e9:.2f} GFLOP per video forward; measured "
          f"{rate / 1e9:.1f} GFLOP/s at batch {B} on {args.threads} threads (the plan's rate here)")
    settings = {
        "unguided": SampleConfig(steps=args.steps, num_samples=B, batch_size=B),
        "guided w=1": SampleConfig(steps=args.steps, num_samples=B, batch_size=B, guidance_weight=1.0),
        "prediction, reconstruction": SampleConfig(steps=args.steps, num_samples=B, batch_size=B, task="prediction",
                                                   cond_frames=T // 2, cond_method="reconstruction", w_r=2.0),
    }
    ratios = []
    for name, sc in settings.items():
        predicted = network_evaluations(sc) * sample_cost_factor(sc) * f_fwd * B / rate
        den = tasks.make_denoiser(net, "v", sc, "cpu")
        gen = StackedGenerator(list(range(B)))
        t0 = time.perf_counter()
        with torch.no_grad():
            if sc.task == "prediction":
                tasks.predict(sc, den, z[:, :, : sc.cond_frames].clamp(-1, 1), T, CosineSchedule(), gen,
                              extra_args={"cls": cls})
            else:
                tasks.sample_block(sc, den, (B, 1, T, S, S), CosineSchedule(), gen, extra_args={"cls": cls})
        measured = time.perf_counter() - t0
        ratios.append(predicted / measured)
        print(f"{name:28s} predicted {predicted:6.2f} s  measured {measured:6.2f} s  ratio {predicted / measured:.2f}")
    print(f"ratio={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
