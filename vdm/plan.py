"""``vdm plan``: what a configuration will cost before it runs.

    vdm plan --spec SPEC.json [--tflops 150] [--out PLAN.md]      (the workflow's `plan` rule writes SPEC)
    vdm plan --spec SPEC.json --from-gpu-check gpu_check.json      (the rate measured by bench/gpu.py)

Per stage -- each training run, each sample set, the FVD -- the number of network evaluations (one
evaluation = the U-Net on one video-sized input) and the FLOPs they take, counted by running the
network once on PyTorch's meta device under ``torch.utils.flop_counter`` (no memory, no weights), and
from them GPU-hours at a stated sustained rate (``--tflops``: model FLOPs per second one GPU sustains;
bf16 on an H100-class GPU reaches ~150-300 TFLOP/s of dense matmul, a U-Net with attention and
normalisation typically 30-50 % of it). A job whose estimate exceeds its time limit is flagged: a
sample chunk against ``resources.sample.runtime`` (choose ``sample.chunk_size`` from it), a training
run against ``launch.timeout_min`` x (``launch.max_num_timeout`` + 1) requeued segments.

Costs counted: training = 3 x the forward FLOPs (forward + backward) of batch x (T + K) frames per
step; sampling = per block, steps (+ Langevin corrections) x the forward FLOPs, x 2 with classifier-free
guidance (conditional + unconditional), x 2 with reconstruction guidance (its gradient w.r.t. z is a
backward pass that computes no weight gradients: about one more forward; `bench/plan.py` measured
x 1.65 on CPU); extension samples every block. Not counted: the text encoder, data loading, the
EMA/optimizer update (elementwise, small next to the network) and I/O.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from functools import lru_cache
from typing import Any

import torch

from vdm.cliargs import fail
from vdm.config import ConfigError, ExperimentConfig
from vdm.jobs import runtime_minutes
from vdm.metrics.i3d import InceptionI3d
from vdm.model import UNet3D
from vdm.model.config import UNetConfig
from vdm.sampling.config import SampleConfig, num_chunks
from vdm.sampling.samplers import network_evaluations
from vdm.sampling.tasks import num_extension_blocks, num_superres_blocks
from vdm.utils.io import atomic_open, write_json

DEFAULT_TFLOPS = 100.0  # sustained model TFLOP/s per GPU assumed when --tflops is not given


def forward_flops(mc: UNetConfig, frames: int) -> float:
    """FLOPs of one forward pass of the U-Net on one video of ``frames`` frames (meta device: nothing
    is allocated or computed; the count is exact for the operators the flop counter knows: convolutions,
    matmuls, attention)."""
    return _forward_flops(mc, frames)


@lru_cache(maxsize=64)
def _forward_flops(mc: UNetConfig, frames: int) -> float:  # a frozen dataclass: hashable
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = UNet3D(mc)
        z = torch.zeros(1, mc.in_channels, frames, mc.image_size, mc.image_size)  # [1, C, T, H, W]
        logsnr = torch.zeros(1)
        cond: dict[str, Any] = {}
        if mc.num_classes > 0:
            cond["cls"] = torch.zeros(1, dtype=torch.long)
        if mc.text_dim > 0:
            cond["text"], cond["text_mask"] = torch.zeros(1, 16, mc.text_dim), torch.ones(1, 16, dtype=torch.bool)
        with FlopCounterMode(display=False) as counter:
            net(z, logsnr, **cond)
    return float(counter.get_total_flops())


@lru_cache(maxsize=8)
def i3d_flops(frames: int) -> float:
    """FLOPs of the I3D detector on one 224x224 clip of ``frames`` frames (meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = InceptionI3d()
        x = torch.zeros(1, 3, frames, 224, 224)
        with FlopCounterMode(display=False) as counter:
            net(x)
    return float(counter.get_total_flops())


def sample_cost_factor(sc: SampleConfig) -> int:
    """Forward-pass equivalents per network evaluation of the sampler (see module docstring)."""
    factor = 2 if sc.guidance_weight > 0 else 1
    if sc.task in ("prediction", "extension") and sc.cond_method == "reconstruction":
        factor *= 2
    if sc.task == "superres":  # reconstruction guidance on the low-resolution video
        factor *= 2
    return factor


def chunk_size_that_fits(hours_per_sample: float, limit_hours: float, batch_size: int) -> int:
    """The largest ``sample.chunk_size`` (a multiple of ``batch_size``, at least one batch) whose samples
    take at most ``limit_hours`` at ``hours_per_sample``."""
    fit = int(limit_hours / hours_per_sample + 1e-9)  # samples per limit (float rounding)
    return max(batch_size, fit // batch_size * batch_size)


def tflops_from_gpu_check(path: str) -> float:
    """The measured rate in a ``bench/gpu.py`` JSON (its ``plan.tflops``)."""
    with open(path) as f:
        rate = json.load(f).get("plan", {}).get("tflops")
    if not rate:
        raise ValueError(f"{path}: no measured rate (plan.tflops) in this GPU check")
    return float(rate)


def plan(spec: dict[str, Any], tflops: float = DEFAULT_TFLOPS) -> dict[str, Any]:
    """The cost plan of a workflow spec: {"runs": {run: train config dict}, "sets": [{"run", "setting",
    "config": sample config dict, "train_run"}], "resources": {...}} (the workflow's `plan` rule)."""
    rate = tflops * 1e12
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    resources = spec.get("resources", {})

    def runtime_min(rule: str) -> float | None:
        r = {**resources.get("default", {}), **resources.get(rule, {})}
        return None if r.get("runtime") is None else runtime_minutes(r["runtime"])

    models = {}  # run -> its network's config, for its sample sets
    for run, d in sorted(spec["runs"].items()):
        cfg = ExperimentConfig.from_dict(d, source=f"training config of {run}")
        models[run] = cfg.model
        tc, lc = cfg.train, cfg.launch
        frames = cfg.data.frames + cfg.data.images_per_video
        gpus = max(1, lc.gpus_per_node * lc.nodes)
        flops = 3.0 * forward_flops(cfg.model, frames) * tc.batch_size * tc.steps
        hours = flops / rate / 3600
        limit = lc.timeout_min * (lc.max_num_timeout + 1) / 60
        row = {"stage": "train", "name": run, "jobs": 1, "network_evaluations": tc.steps * tc.batch_size,
               "tflop": flops / 1e12, "gpu_hours": hours, "gpus": gpus, "wall_hours_per_job": hours / gpus,
               "limit_hours": limit}
        if hours / gpus > limit:
            warnings.append(f"train {run}: ~{hours / gpus:.1f} h on {gpus} GPUs exceeds launch.timeout_min x "
                            f"(max_num_timeout + 1) = {limit:.1f} h")
        rows.append(row)

    real: dict[int, int] = {}  # clip length -> real clips: one I3D real-features job each (rule real_features_i3d)
    for s in spec["sets"]:
        cfg = ExperimentConfig.from_dict(s["config"], source=f"sampling config of {s['run']}/{s['setting']}")
        sc, model = cfg.sample, models[s["train_run"]]
        T = sc.frames or cfg.data.frames
        T_net = T  # frames per network evaluation
        if sc.task == "extension":
            blocks = num_extension_blocks(T, sc.total_frames, sc.overlap)
        elif sc.task == "superres":  # a T-frame video in blocks of superres_block frames
            blocks = num_superres_blocks(T, sc.superres_block, sc.overlap)
            T_net = sc.superres_block if 0 < sc.superres_block < T else T
        else:
            blocks = 1
        evals_per_sample = network_evaluations(sc) * blocks
        per_sample = evals_per_sample * sample_cost_factor(sc) * forward_flops(model, T_net)
        n_chunks = num_chunks(sc)
        per_chunk_hours = per_sample * (sc.chunk_size or sc.num_samples) / rate / 3600
        limit = runtime_min("sample")
        row = {"stage": "sample", "name": f"{s['run']}/{s['setting']}", "jobs": n_chunks,
               "network_evaluations": evals_per_sample * sc.num_samples, "tflop": per_sample * sc.num_samples / 1e12,
               "gpu_hours": per_sample * sc.num_samples / rate / 3600, "gpus": 1,
               "wall_hours_per_job": per_chunk_hours, "limit_hours": limit / 60 if limit else None}
        if limit and per_chunk_hours * 60 > limit:
            fits = chunk_size_that_fits(per_sample / rate / 3600, limit / 60, sc.batch_size)
            warnings.append(f"sample {row['name']}: a chunk of {sc.chunk_size or sc.num_samples} samples needs "
                            f"~{per_chunk_hours:.1f} h > resources.sample.runtime {limit / 60:.1f} h; "
                            f"sample.chunk_size <= {fits} fits")
        rows.append(row)
        if not s.get("evaluate", True):  # e.g. the cascade's stages: sampled, not evaluated
            continue
        frames = sc.total_frames if sc.task == "extension" else T
        real[frames] = cfg.evaluate.num_real
        flops = i3d_flops(max(frames, 9)) * sc.num_samples
        rows.append({"stage": "features", "name": row["name"], "jobs": n_chunks, "network_evaluations": sc.num_samples,
                     "tflop": flops / 1e12, "gpu_hours": flops / rate / 3600, "gpus": 1,
                     "wall_hours_per_job": flops / n_chunks / rate / 3600, "limit_hours": None})
    for frames, n in sorted(real.items()):
        flops = i3d_flops(max(frames, 9)) * n
        rows.append({"stage": "real features", "name": f"{frames} frames", "jobs": 1, "network_evaluations": n,
                     "tflop": flops / 1e12, "gpu_hours": flops / rate / 3600, "gpus": 1,
                     "wall_hours_per_job": flops / rate / 3600, "limit_hours": None})
    total = sum(r["gpu_hours"] for r in rows)
    return {"name": spec.get("name", ""), "tflops": tflops, "rows": rows, "total_gpu_hours": total,
            "warnings": warnings}


def _num(x: float) -> str:
    """3 significant digits, thousands separated: 0.00123, 4.56, 1,230."""
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def format_plan(p: dict[str, Any]) -> str:
    lines = [f"# Cost plan: {p['name']} (at {p['tflops']:g} sustained model TFLOP/s per GPU)", "",
             "| stage | what | jobs | network evaluations | TFLOP | GPU-hours | wall h / job | job limit h |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in p["rows"]:
        limit = "" if r["limit_hours"] is None else f"{r['limit_hours']:.1f}"
        lines.append(f"| {r['stage']} | {r['name']} | {r['jobs']} | {r['network_evaluations']:,} | "
                     f"{_num(r['tflop'])} | {_num(r['gpu_hours'])} | {_num(r['wall_hours_per_job'])} | {limit} |")
    lines += ["", f"Total: {_num(p['total_gpu_hours'])} GPU-hours.", ""]
    lines += [f"- WARNING: {w}" for w in p["warnings"]] or ["No job exceeds its time limit."]
    return "\n".join(lines) + "\n"


def _positive_rate(text: str) -> float:
    """A TFLOP/s rate: a finite number > 0 (argparse type: anything else is a usage error naming the value)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (TFLOP/s per GPU), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm plan", description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", required=True, help="JSON written by the workflow's `plan` rule")
    p.add_argument("--tflops", type=_positive_rate, default=None,
                   help=f"sustained model TFLOP/s per GPU (default: the spec's, else {DEFAULT_TFLOPS:g})")
    p.add_argument("--from-gpu-check", default=None, metavar="JSON",
                   help="take --tflops from the JSON of bench/gpu.py (its plan.tflops)")
    p.add_argument("--out", default=None, help="write the plan as Markdown here (and <out>.json); always printed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with open(args.spec) as f:
            spec = json.load(f)
        if not isinstance(spec, dict) or not {"runs", "sets"} <= set(spec):
            raise ValueError(f"{args.spec}: not a plan spec (a JSON object with 'runs' and 'sets', as the workflow's "
                             "`plan` rule writes it)")
        measured = tflops_from_gpu_check(args.from_gpu_check) if args.from_gpu_check else None
        p = plan(spec, args.tflops or measured or spec.get("tflops") or DEFAULT_TFLOPS)
    except json.JSONDecodeError as e:
        return fail("vdm plan", ValueError(f"{args.spec}: not JSON ({e})"))
    except KeyError as e:
        return fail("vdm plan", ValueError(f"{args.spec}: not a plan spec (no {e} where the plan needs it)"))
    except (OSError, ValueError, TypeError, AttributeError, ConfigError) as e:
        return fail("vdm plan", ValueError(f"{args.spec}: {e}") if not str(e).startswith(args.spec) else e)
    text = format_plan(p)
    print(text, end="")
    if args.out:
        with atomic_open(args.out, "w") as f:
            f.write(text)
        write_json(f"{args.out}.json", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
