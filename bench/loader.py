"""Loader throughput vs what a training step consumes, on CPU.

    python bench/loader.py [--threads 2] [--batch 8] [--images 8] [--workers 0]

For each shape (demo: 16×32×32 grayscale; paper: 16×64×64 RGB), the script writes Moving MNIST
shards at that shape in a temporary folder (``vdm.data.shard.shard_split``, not timed), then times

* the loader: ``VideoLoader(mode="train")`` batches (decode, random clip, K appended image frames,
  uint8 -> [-1, 1]) over several epochs, clips/s;
* a training step of the demo U-Net (``vdm.model.named_size("demo")``; at 64×64×3 the same network
  with image_size=64, in_channels=3): ``diffusion_loss`` on a loader batch with the joint-training
  frame mask + backward + ``torch.optim.Adam`` step, clips/s.

The last line is ``headroom=<min over shapes of loader clips/s ÷ training clips/s>`` (target ≥ 10).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch


def loader_rate(cfg, batch: int, workers: int, batches: int) -> float:
    from vdm.data.loader import VideoLoader

    loader = VideoLoader(cfg, "train", batch_size=batch, seed=0, num_workers=workers)
    it = iter(loader)
    next(it)  # warm-up (workers start, first shuffle buffer fill)
    t0 = time.perf_counter()
    n = sum(b["video"].shape[0] for b in itertools.islice(it, batches))
    return n / (time.perf_counter() - t0)


def train_rate(cfg, model_cfg, batch: int, steps: int) -> float:
    from vdm.data.loader import VideoLoader
    from vdm.diffusion import CosineSchedule, diffusion_loss
    from vdm.model import UNet3D

    torch.manual_seed(0)
    net = UNet3D(model_cfg).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
    logsnr_fn = CosineSchedule(-20.0, 20.0)
    batches = iter(VideoLoader(cfg, "train", batch_size=batch, seed=1))

    def step(b):
        x, is_image = b["video"], b["is_image"]  # [B, C, T+K, H, W], [B, T+K]
        frame_weight = torch.where(is_image, 1.0, 1.0)
        loss = diffusion_loss(net, x, logsnr_fn, prediction="eps", frame_weight=frame_weight, is_image=is_image,
                              cls=b["cls"]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    data = [next(batches) for _ in range(steps + 1)]  # loading not timed here
    step(data[0])  # warm-up
    t0 = time.perf_counter()
    for b in data[1:]:
        step(b)
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (the demo machine has 2 cores)")
    p.add_argument("--batch", type=int, default=8, help="videos per batch")
    p.add_argument("--images", type=int, default=8, help="K image frames appended per video")
    p.add_argument("--workers", type=int, default=0, help="loader worker processes")
    p.add_argument("--batches", type=int, default=200, help="loader batches timed")
    p.add_argument("--steps", type=int, default=2, help="training steps timed")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from vdm.data.config import DataConfig
    from vdm.data.shard import shard_split
    from vdm.model import named_size

    shapes = {
        "demo 16x32x32x1": (dict(resolution=32, channels=1), named_size("demo", num_classes=100)),
        "paper 16x64x64x3": (dict(resolution=64, channels=3),
                             named_size("demo", num_classes=100, image_size=64, in_channels=3)),
    }
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (shape, model_cfg) in shapes.items():
            cfg = DataConfig(shards=str(Path(tmp) / name.split()[0]), frames=16, mnist_video_length=20,
                             mnist_train_videos=256, shard_size=64, num_classes=100,
                             images_per_video=args.images, **shape)
            t0 = time.perf_counter()
            shard_split(cfg, "train", seed=0, workers=2, progress=False)
            shard_s = time.perf_counter() - t0
            load = loader_rate(cfg, args.batch, args.workers, args.batches)
            train = train_rate(cfg, model_cfg, args.batch, args.steps)
            ratios.append(load / train)
            print(f"{name} (+{args.images} images, batch {args.batch}): shard 256 videos {shard_s:.1f} s, "
                  f"loader {load:.1f} clips/s (workers={args.workers}), train step {train:.2f} clips/s "
                  f"({args.batch / train:.2f} s/step, threads={args.threads}), headroom {load / train:.0f}x",
                  flush=True)
    print(f"headroom={min(ratios):.1f}")


if __name__ == "__main__":
    main()
