"""Training-step throughput and peak memory: samples/s (videos/s) of the full trainer step.

What is timed is ``vdm.train.loop.Trainer.train_step``: per-example noise draws, the forward pass
of the loss (paper §1) under the trainer's precision (``--precision``; auto: bf16 autocast on CUDA, fp32 on
CPU), backward, gradient-norm, AdamW and the EMA update — the real step, on synthetic in-memory batches (data
loading is measured by bench/loader.py). Each setting runs in its own subprocess, so peak memory is
per setting: peak RSS (``ru_maxrss``) on CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Settings (``--settings``, comma-separated):

* ``demo``: the CPU demo of config/config.yaml — ``demo`` U-Net, class-conditional (100 classes), 1×32×32,
  10 frames + 8 image frames;
* ``default``: the network of the default run (``demo`` with attention at 8×8 only, 10 digit classes), 10 + 4
  frames, v-prediction;
* ``bair``: the paper's BAIR model (Appendix A) at 16×64×64 RGB, + 8 image frames per video.

The script reports model FLOPs per step (``torch.utils.flop_counter``: forward + backward of the
network, counted once on the first step) and the achieved rate: on CUDA as model-FLOPs utilisation
against the device's peak dense bf16 rate (``--peak-tflops``; default from a small table of known
devices), on CPU beside this machine's measured fp32 matrix-multiply rate (2048x2048 sgemm with the
same number of threads), the practical ceiling of a step made of convolutions and matmuls.

``--against REV`` times the same setting at another git revision in the same run: a worktree of REV
is checked out in a temporary folder and the child measurements alternate (ours, REV, ours, ...,
``--pairs`` pairs), so both see the same machine load; the last line is ``speedup=<REV s / ours s>``
(medians of the per-pair step times).

    python bench/train.py --settings demo --batch 4 --steps 3 --threads 1
    python bench/train.py --settings bair --batch 1 --steps 2 --threads 1     # ~12 GiB RSS on CPU
    python bench/train.py --settings demo --batch 4 --steps 5 --threads 2 --against e051c12 --pairs 3
    python bench/train.py --settings default --batch 8 --steps 5 --threads 2 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    "demo": dict(model={"size": "demo", "num_classes": 100},
                 data={"resolution": 32, "channels": 1, "frames": 10, "images_per_video": 8, "num_classes": 100},
                 diffusion={"prediction": "eps"}),
    # the default run's network (config/config.yaml): attention at 8x8 only, 10 digit classes, 10 + 4 frames, v
    "default": dict(model={"size": "demo", "num_classes": 10, "attention_resolutions": [8]},
                    data={"resolution": 32, "channels": 1, "frames": 10, "images_per_video": 4, "num_classes": 10,
                          "mnist_num_digits": 1},
                    diffusion={"prediction": "v"}),
    "bair": dict(model={"size": "bair"}, data={"resolution": 64, "channels": 3, "frames": 16, "images_per_video": 8},
                 diffusion={"prediction": "v"}),
}
# Dense bf16 peak (TFLOP/s, no sparsity) of known devices, matched on the CUDA device name.
PEAK_BF16_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0,
                    "L40S": 362.0, "A10G": 70.0, "RTX 4090": 165.0, "V100": 125.0}


class SyntheticLoader:
    """Random batches of the loader's format (video in [-1, 1], K appended image frames, classes if any)."""

    def __init__(self, cfg, *, batch_size: int, seed: int, rank: int, world_size: int, num_workers: int = 0):
        self.cfg, self.b = cfg, batch_size

    def __iter__(self):
        import torch

        d = self.cfg.data
        T, K = d.frames, d.images_per_video
        g = torch.Generator().manual_seed(0)
        while True:
            video = torch.rand(self.b, d.channels, T + K, d.resolution, d.resolution, generator=g) * 2 - 1
            is_image = torch.zeros(self.b, T + K, dtype=torch.bool)  # [b, T+K]
            is_image[:, T:] = True
            batch = {"video": video, "is_image": is_image}
            if d.num_classes > 0:
                batch["cls"] = torch.randint(0, d.num_classes, (self.b,), generator=g)  # [b]
            yield batch


def measure(setting: str, batch: int, steps: int, warmup: int, device: str, peak_tflops: float,
            precision: str = "auto") -> dict:
    import torch

    from vdm.config import ExperimentConfig
    from vdm.model import count_parameters
    from vdm.train.loop import Trainer

    spec = SETTINGS[setting]
    cfg = ExperimentConfig.from_dict({**spec, "train": {"batch_size": batch, "steps": warmup + steps,
                                                        "device": device, "progress": False,
                                                        "precision": precision}})
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, tmp, None, make_loader=SyntheticLoader)
        batches = iter(tr.loader)
        cuda = tr.device.type == "cuda"
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as fc:
            tr.train_step(batches)
        flops = fc.get_total_flops()
        warmup = max(warmup - 1, 0)
        for _ in range(warmup):
            tr.train_step(batches)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times, cpu_times = [], []
        for _ in range(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            tr.train_step(batches)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        times.sort()
        cpu_times.sort()
        step_s = times[len(times) // 2]
        out = {
            "setting": setting, "device": str(tr.device) if not cuda else torch.cuda.get_device_name(),
            "precision": "bf16-autocast" if tr.use_bf16 else "fp32", "params_M": count_parameters(tr.model) / 1e6,
            "batch": batch, "frames": f"{cfg.data.frames}+{cfg.data.images_per_video}",
            "shape": f"{cfg.data.channels}x{cfg.data.resolution}x{cfg.data.resolution}",
            "threads": torch.get_num_threads(), "step_s_median": step_s, "samples_per_s": batch / step_s,
            # CPU seconds of this process per step: less sensitive than wall time to other load on the machine
            "cpu_s_per_step_median": cpu_times[len(cpu_times) // 2],
        }
        out["model_TFLOP_per_step"] = flops / 1e12
        out["achieved_TFLOPs"] = flops / step_s / 1e12
        if cuda:
            out["peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2**30
            if peak_tflops > 0:
                out["MFU"] = out["achieved_TFLOPs"] / peak_tflops
        else:
            out["peak_rss_GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            out["sgemm_TFLOPs"] = sgemm_rate()
            out["fraction_of_sgemm"] = out["achieved_TFLOPs"] / out["sgemm_TFLOPs"]
        return out


def sgemm_rate(n: int = 2048, repeats: int = 10) -> float:
    """This machine's fp32 matrix-multiply rate (TFLOP/s) with torch's current thread count (best of 3)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - t0) / repeats)
    return 2 * n**3 / best / 1e12


def default_peak(device_name: str) -> float:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return value
    return 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", default="demo,bair", help=f"comma-separated: {', '.join(SETTINGS)}")
    p.add_argument("--batch", type=int, default=2, help="global batch (videos per step)")
    p.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    from vdm.utils.precision import PRECISIONS

    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="train.precision (vdm/utils/precision.py)")
    p.add_argument("--peak-tflops", type=float, default=-1.0, help="device peak bf16 TFLOP/s for MFU (-1: table)")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--against", default="", help="git revision to time in the same run, alternating")
    p.add_argument("--pairs", type=int, default=3, help="--against: alternating (ours, REV) pairs")
    p.add_argument("--_one", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._one:  # child: one setting
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        peak = args.peak_tflops
        if peak < 0:
            peak = default_peak(torch.cuda.get_device_name()) if torch.cuda.is_available() else 0.0
        print("RESULT " + json.dumps(measure(args._one, args.batch, args.steps, args.warmup, args.device, peak,
                                            args.precision)))
        return 0

    settings = args.settings.split(",")
    for setting in settings:
        if setting not in SETTINGS:
            p.error(f"unknown setting {setting!r} (known: {', '.join(SETTINGS)})")
    if args.against:
        return against(args, settings)
    results = []
    for setting in settings:
        res = run_child(args, setting, ROOT)
        if res is None:
            return 1
        results.append(res)
        print(describe(setting, res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def run_child(args: argparse.Namespace, setting: str, code: Path, label: str = "") -> dict | None:
    """One measurement in a fresh process whose ``vdm`` is imported from ``code`` (a checkout)."""
    cmd = [sys.executable, __file__, "--_one", setting, "--batch", str(args.batch), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--device", args.device, "--threads", str(args.threads),
           "--peak-tflops", str(args.peak_tflops)]
    if args.precision != "auto":  # (a revision of --against from before the option takes the default)
        cmd += ["--precision", args.precision]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=code, env=dict(os.environ, PYTHONPATH=str(code)))
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if r.returncode != 0 or line is None:
        print(f"{label or setting}: failed (rc {r.returncode})\n{r.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(line[len("RESULT "):])


def describe(setting: str, res: dict) -> str:
    mem = (f"peak GPU mem {res['peak_mem_GiB']:.2f} GiB" if "peak_mem_GiB" in res
           else f"peak RSS {res['peak_rss_GiB']:.2f} GiB")
    extra = f", {res['model_TFLOP_per_step'] * 1e3:.1f} GFLOP/step, {res['achieved_TFLOPs'] * 1e3:.1f} GFLOP/s"
    if "MFU" in res:
        extra += f", MFU {100 * res['MFU']:.1f} %"
    if "sgemm_TFLOPs" in res:
        extra += (f" = {100 * res['fraction_of_sgemm']:.0f} % of this machine's sgemm "
                  f"{res['sgemm_TFLOPs'] * 1e3:.1f} GFLOP/s")
    return (f"{setting:5s} {res['device']} {res['precision']} {res['params_M']:.1f} M params, batch {res['batch']} × "
            f"{res['frames']} frames × {res['shape']}, {res['threads']} threads: step {res['step_s_median']:.3f} s, "
            f"{res['samples_per_s']:.2f} samples/s (process CPU {res['cpu_s_per_step_median']:.3f} s/step), "
            f"{mem}{extra}")


def against(args: argparse.Namespace, settings: list[str]) -> int:
    """Alternate measurements of this checkout and of a worktree at ``args.against``."""
    import statistics
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vdm-bench-") as tmp:
        other = Path(tmp) / "rev"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), args.against],
                       check=True, capture_output=True)
        try:
            rev = subprocess.run(["git", "-C", str(other), "rev-parse", "--short", "HEAD"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            for setting in settings:
                ours, theirs = [], []
                for i in range(args.pairs):
                    order = [("ours", ROOT, ours), (rev, other, theirs)]
                    for label, code, into in (order if i % 2 == 0 else order[::-1]):
                        res = run_child(args, setting, code, f"{setting} @ {label}")
                        if res is None:
                            return 1
                        into.append(res)
                        print(f"pair {i + 1} {label:>8s}: {describe(setting, res)}", flush=True)
                    print(f"pair {i + 1}: speedup {theirs[-1]['step_s_median'] / ours[-1]['step_s_median']:.3f}",
                          flush=True)
                s_ours = statistics.median(r["step_s_median"] for r in ours)
                s_theirs = statistics.median(r["step_s_median"] for r in theirs)
                print(f"{setting}: ours {s_ours:.3f} s/step ({args.batch / s_ours:.2f} samples/s), {rev} "
                      f"{s_theirs:.3f} s/step ({args.batch / s_theirs:.2f} samples/s)")
                print(f"speedup={s_theirs / s_ours:.3f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
