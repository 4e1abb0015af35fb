"""U-Net speed and memory on CPU: train step, network evaluation, peak RSS.

Single model (``vdm.model.UNet3D`` of a named size, with optional ``--set`` overrides)::

    python bench/unet.py --size demo --frames 8 --res 32 --batch 2 --threads 2 --repeats 10

Against lucidrains' ``video-diffusion-pytorch==0.7.0`` ``Unet3D(dim=64, dim_mults=(1, 2, 4))``
(install the ``bench`` extra, see bench/README.md)::

    python bench/unet.py --vs-lucidrains --pairs 5

Each measurement runs in its own subprocess (so peak RSS is per model), alternating ours and
theirs (A B A B ...). What is timed, for both networks and on the same input shape:

* train step: network forward + MSE against a fixed target + backward + ``torch.optim.Adam`` step
  (train mode; ``foreach=True`` as in vdm's trainer, for both networks; ``--adam-loop``: the per-tensor
  loop, torch's CPU default). lucidrains' network is a discrete-time DDPM ε-network fed an integer step
  t ∈ [0, 1000); ours is fed log-SNR λ_t. No diffusion process, EMA or data loading is timed.
* network evaluation: one forward pass in eval mode under ``torch.no_grad`` (a sampler's call).
* peak RSS: the subprocess's ``ru_maxrss`` after all steps (includes the interpreter and torch).

The last line is machine-readable: ``speedup_train=<theirs s / ours s> speedup_eval=<...>
mem_ratio=<our peak RSS / theirs>``, each the median of the per-pair ratios.
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

# Our model for the comparison: same frame size and channel count as lucidrains' network, three
# levels (32, 16, 8 pixels) like theirs, channels chosen so the parameter count is within ±10 % of
# theirs (10.59 M). Spatial + temporal attention at 16 and 8 pixels (theirs: temporal attention at
# every level, linear spatial attention at every level, full spatial attention at 8 pixels).
# Conditioning width 256 = lucidrains' time_dim (4 × dim). No dropout (theirs has none).
MATCHED_OURS = dict(
    size="custom", image_size=32, in_channels=3, base_channels=48, channel_mult=(1, 2, 4), num_res_blocks=2,
    attention_resolutions=(8, 16), head_dim=32, emb_dim=256, emb_mlp_layers=2, dropout=0.0, norm_groups=16,
)
LUCIDRAINS_KW = dict(dim=64, dim_mults=(1, 2, 4), channels=3)
PARAM_TOLERANCE = 0.10


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def build_ours(size: str, res: int, overrides: dict):
    from vdm.model import UNet3D, named_size

    if size == "matched":
        from vdm.config import from_dict
        from vdm.model.config import UNetConfig

        cfg = from_dict(UNetConfig, {**MATCHED_OURS, **overrides}, "model")
    else:
        cfg = named_size(size, **({"image_size": res} | overrides))
    cfg.validate()
    return UNet3D(cfg), cfg


def build_lucidrains():
    sys.path.insert(0, str(BENCH_DIR))
    from _lucidrains_shim import import_lucidrains_unet3d

    Unet3D = import_lucidrains_unet3d()
    return Unet3D(**LUCIDRAINS_KW)


def count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def measure(which: str, size: str, frames: int, res: int, batch: int, threads: int, repeats: int,
            warmup: int, overrides: dict, adam_loop: bool = False) -> dict:
    """Build one network and time it in this process. ``which``: ``ours`` or ``lucidrains``."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if which == "ours":
        net, cfg = build_ours(size, res, overrides)
        channels = cfg.in_channels
    else:
        net = build_lucidrains()
        channels = LUCIDRAINS_KW["channels"]
    n_params = count(net)
    g = torch.Generator().manual_seed(1)
    z_t = torch.randn(batch, channels, frames, res, res, generator=g)  # [B, C, T, H, W]
    target = torch.randn(batch, channels, frames, res, res, generator=g)  # [B, C, T, H, W]
    if which == "ours":
        from vdm.diffusion import CosineSchedule

        cond = CosineSchedule(-20.0, 20.0)(torch.rand(batch, generator=g))  # λ_t [B]
    else:
        cond = torch.randint(0, 1000, (batch,), generator=g)  # DDPM step [B]
    # the optimizer vdm's trainer uses (foreach: multi-tensor kernels, bitwise the per-tensor loop), the
    # same for both networks; --adam-loop times the per-tensor loop (torch's CPU default) instead
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, foreach=not adam_loop)

    def train_step() -> float:
        t0 = time.perf_counter()
        out = net(z_t, cond)
        loss = F.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    net.train()
    for _ in range(warmup):
        train_step()
    train_s = [train_step() for _ in range(repeats)]

    net.eval()
    with torch.no_grad():
        def eval_call() -> float:
            t0 = time.perf_counter()
            net(z_t, cond)
            return time.perf_counter() - t0

        for _ in range(warmup):
            eval_call()
        eval_s = [eval_call() for _ in range(repeats)]
    return dict(
        which=which, params=n_params, train_s=statistics.median(train_s), eval_s=statistics.median(eval_s),
        train_all=train_s, eval_all=eval_s, peak_rss_mib=_peak_rss_mib(), threads=threads,
        shape=[batch, channels, frames, res, res],
    )


def run_worker(which: str, args: argparse.Namespace) -> dict:
    """One measurement in a fresh interpreter (thread count fixed through the environment too)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", which, "--size", args.size,
           "--frames", str(args.frames), "--res", str(args.res), "--batch", str(args.batch),
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    if args.adam_loop:
        cmd.append("--adam-loop")
    for s in args.set:
        cmd += ["--set", s]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker {which!r} failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def vs_lucidrains(args: argparse.Namespace) -> int:
    import torch

    overrides = dict(_parse_override(s) for s in args.set)
    with torch.device("meta"):
        ours, cfg = build_ours(args.size, args.res, overrides)
        theirs = build_lucidrains()
    n_ours, n_theirs = count(ours), count(theirs)
    rel = n_ours / n_theirs - 1.0
    print(f"parameters: ours {n_ours:,} ({args.size}: base_channels={cfg.base_channels} "
          f"channel_mult={list(cfg.channel_mult)} num_res_blocks={cfg.num_res_blocks} "
          f"attention_resolutions={list(cfg.attention_resolutions)} emb_dim={cfg.emb_dim}) | "
          f"lucidrains {n_theirs:,} (Unet3D{LUCIDRAINS_KW}) | difference {rel:+.1%}")
    if abs(rel) > PARAM_TOLERANCE:
        raise SystemExit(f"parameter counts differ by {rel:+.1%} (> ±{PARAM_TOLERANCE:.0%}); adjust --set")
    print(f"shape [B, C, T, H, W] = [{args.batch}, 3, {args.frames}, {args.res}, {args.res}], "
          f"{args.threads} threads, {args.repeats} timed steps after {args.warmup} warm-up, {args.pairs} pairs, "
          f"Adam {'per-tensor loop' if args.adam_loop else 'foreach'}")
    ratios = []
    for i in range(args.pairs):
        a = run_worker("ours", args)
        b = run_worker("lucidrains", args)
        r = (b["train_s"] / a["train_s"], b["eval_s"] / a["eval_s"], a["peak_rss_mib"] / b["peak_rss_mib"])
        ratios.append(r)
        print(f"pair {i + 1}: train ours {a['train_s']:.3f} s / theirs {b['train_s']:.3f} s = x{r[0]:.2f} | "
              f"eval ours {a['eval_s']:.3f} s / theirs {b['eval_s']:.3f} s = x{r[1]:.2f} | "
              f"peak RSS ours {a['peak_rss_mib']:.0f} MiB / theirs {b['peak_rss_mib']:.0f} MiB = {r[2]:.2f}",
              flush=True)
    med = [statistics.median(col) for col in zip(*ratios)]
    print(f"speedup_train={med[0]:.3f} speedup_eval={med[1]:.3f} mem_ratio={med[2]:.3f}")
    return 0


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise SystemExit(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), _parse_value(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default=None,
                    help="named U-Net size, or 'matched' (the comparison config; default: demo, "
                         "or matched with --vs-lucidrains)")
    ap.add_argument("--frames", type=int, default=8, help="frames T")
    ap.add_argument("--res", type=int, default=32, help="frame side H = W (pixels)")
    ap.add_argument("--batch", type=int, default=2, help="batch size B")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--repeats", type=int, default=5, help="timed steps (the median is reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="U-Net config override (e.g. --set base_channels=64), repeatable")
    ap.add_argument("--vs-lucidrains", action="store_true", help="compare with video-diffusion-pytorch 0.7.0")
    ap.add_argument("--pairs", type=int, default=5, help="A/B pairs for --vs-lucidrains")
    ap.add_argument("--adam-loop", action="store_true",
                    help="time Adam as a per-tensor loop (torch's CPU default) instead of foreach, both networks")
    ap.add_argument("--worker", choices=["ours", "lucidrains"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.size is None:
        args.size = "matched" if (args.vs_lucidrains or args.worker) else "demo"
    if args.vs_lucidrains:
        return vs_lucidrains(args)
    overrides = dict(_parse_override(s) for s in args.set)
    res = measure(args.worker or "ours", args.size, args.frames, args.res, args.batch, args.threads,
                  args.repeats, args.warmup, overrides, args.adam_loop)
    if args.worker:
        print(json.dumps(res))
    else:
        print(f"{args.size}: {res['params']:,} parameters, input {res['shape']}, {args.threads} threads")
        print(f"train_step_s={res['train_s']:.4f} eval_s={res['eval_s']:.4f} peak_rss_mib={res['peak_rss_mib']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
