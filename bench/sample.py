"""Sampler throughput: network evaluations per second of vdm's sampling loop vs ``video-diffusion-pytorch``
0.7.0's ``GaussianDiffusion.p_sample_loop``, at matched parameters and shape (the networks of
``bench/unet.py --vs-lucidrains``: 10.37 M vs 10.59 M parameters, [B, 3, T, 32, 32]).

Ours: ``vdm.sampling.tasks.sample_block`` (ancestral sampler, x̂ clipping, per-sample generators), what
``vdm sample`` runs per batch; theirs: ``p_sample_loop`` with ``timesteps`` = the same number of steps
(ancestral DDPM, x̂ clipping). Both unconditional and unguided (one network call per step), CPU,
``--threads`` threads, each in its own subprocess, alternating ours, theirs, ... (``--pairs`` pairs);
one untimed warm-up loop, then the median of ``--repeats`` timed loops. Network evaluations/s =
batch x steps / seconds of a loop. Last line: ``speedup=<ours evals/s / theirs evals/s>`` (median of
the per-pair ratios).

    python bench/sample.py --pairs 3 [--steps 16] [--batch 2] [--frames 8] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from unet import LUCIDRAINS_KW, build_lucidrains, build_ours, count  # noqa: E402


def measure(which: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, T, S, C = args.batch, args.frames, 32, LUCIDRAINS_KW["channels"]
    if which == "ours":
        from vdm.diffusion import CosineSchedule
        from vdm.sampling import tasks
        from vdm.sampling.config import SampleConfig
        from vdm.sampling.seeds import StackedGenerator

        net, _ = build_ours("matched", S, {})
        net.eval()
        sc = SampleConfig(steps=args.steps, clip_x=True, precision="fp32")
        den = tasks.make_denoiser(net, "eps", sc, "cpu")

        def loop() -> None:
            with torch.no_grad():
                tasks.sample_block(sc, den, (B, C, T, S, S), CosineSchedule(), StackedGenerator(list(range(B))))
    else:
        sys.path.insert(0, str(BENCH_DIR))
        from _lucidrains_shim import install_torchvision_stub

        install_torchvision_stub()
        from video_diffusion_pytorch import GaussianDiffusion

        net = build_lucidrains().eval()
        diffusion = GaussianDiffusion(net, image_size=S, num_frames=T, channels=C, timesteps=args.steps)

        def loop() -> None:
            diffusion.p_sample_loop((B, C, T, S, S))

    loop()  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loop()
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return {"which": which, "params": count(net), "loop_s": s, "evals_per_s": B * args.steps / s}


def run_worker(which: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", which, "--steps", str(args.steps),
           "--batch", str(args.batch), "--frames", str(args.frames), "--threads", str(args.threads),
           "--repeats", str(args.repeats)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker {which!r} failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--worker", choices=["ours", "lucidrains"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return 0
    print(f"shape [B, C, T, H, W] = [{args.batch}, 3, {args.frames}, 32, 32], {args.steps} steps, {args.threads} "
          f"threads, median of {args.repeats} loops after 1 warm-up, {args.pairs} pairs")
    ratios = []
    for i in range(args.pairs):
        a, b = run_worker("ours", args), run_worker("lucidrains", args)
        ratios.append(a["evals_per_s"] / b["evals_per_s"])
        print(f"pair {i + 1}: ours {a['evals_per_s']:.2f} evals/s ({a['params']:,} params) | theirs "
              f"{b['evals_per_s']:.2f} evals/s ({b['params']:,} params) = x{ratios[-1]:.2f}", flush=True)
    print(f"speedup={statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
