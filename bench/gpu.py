"""GPU acceptance check: one command that says whether the GPU path works and how fast it is.

    python bench/gpu.py --device cuda --out gpu_check.json          # paper sizes, about 8 minutes
    python bench/gpu.py --device cpu --tiny --out gpu_check.json    # tiny shapes, the test suite's run

Parts (``--parts``, each in its own subprocess with its own time box; a failing part is reported in
the JSON with its error and the others still run):

* ``train``: ``vdm.train.loop.Trainer.train_step`` of the BAIR U-Net (16 + 8 frames at 64x64), bf16
  and fp32 (``train.precision``), gradient checkpointing off and on: steps/s, samples/s, peak memory,
  model FLOP/s (``vdm.plan.forward_flops`` x 3 x batch, as ``vdm plan`` counts a step), MFU against the
  device's dense bf16 peak, and the kernel SDPA chose for spatial and temporal attention;
* ``train_compile``: the same step with the network under ``torch.compile`` (bf16, no checkpointing);
* ``train_ucf101``: the 1.1 B UCF-101 U-Net at batch 1 (bf16, checkpointing off and on), if it fits;
* ``ddp``: ``torchrun --nproc_per_node=<local GPUs>`` (2 gloo ranks on CPU) through the trainer's own
  process-group set-up: weights identical across ranks, loss and weights against one process on the
  same global batch;
* ``resume``: ``Trainer.run`` stopped after k steps and resumed, against the uninterrupted run
  (bitwise, with and without ``torch.use_deterministic_algorithms``);
* ``sample``: bf16 vs fp32 samples of the same network and seeds, network evaluations/s, and the
  ``sample.chunk_size`` ``vdm plan`` would choose at the measured rate;
* ``features``: I3D logits, Inception pool3, C3D fc7 on the device vs on CPU (max |Δ|, clips/s).

Every figure that has no meaning on the device run (e.g. GPU memory on CPU) is null, and the dict
holding it names why under ``null_reasons``. The ``plan`` entry holds the ``--tflops`` value to give
``vdm plan`` (or ``vdm plan --from-gpu-check JSON``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
FORMAT = "vdm-gpu-check-1"
PARTS = ("train", "train_compile", "train_ucf101", "ddp", "resume", "sample", "features")
# Share of --timeout each part may use at most (the parts usually take far less).
BUDGET = {"train": 0.25, "train_compile": 0.2, "train_ucf101": 0.1, "ddp": 0.12, "resume": 0.1, "sample": 0.1,
          "features": 0.13}

# Dense (no sparsity) bf16 tensor-core peak of one device, TFLOP/s, from the vendor's datasheet; matched
# in order against torch.cuda.get_device_name(). Datasheets print the sparse figure beside it (2x).
PEAK_BF16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    (r"H100.*PCIe", 756.0, "NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe: 1,513 TFLOPS with sparsity)"),
    (r"H100.*NVL", 835.0, "NVIDIA H100 Tensor Core GPU datasheet (H100 NVL: 1,671 TFLOPS with sparsity)"),
    (r"H100", 989.0, "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM: 1,979 TFLOPS with sparsity)"),
    (r"H200.*NVL", 835.0, "NVIDIA H200 Tensor Core GPU datasheet (H200 NVL: 1,671 TFLOPS with sparsity)"),
    (r"H200", 989.0, "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM: 1,979 TFLOPS with sparsity)"),
    (r"GH200", 989.0, "NVIDIA GH200 Grace Hopper Superchip datasheet (1,979 TFLOPS with sparsity)"),
    (r"A100", 312.0, "NVIDIA A100 Tensor Core GPU datasheet (624 TFLOPS with sparsity)"),
    (r"L40S", 362.0, "NVIDIA L40S GPU datasheet (733 TFLOPS with sparsity)"),
    (r"\bL40\b", 181.0, "NVIDIA L40 GPU datasheet (362 TFLOPS with sparsity)"),
    (r"\bL4\b", 121.0, "NVIDIA L4 Tensor Core GPU datasheet (242 TFLOPS with sparsity)"),
    (r"\bA10\b", 125.0, "NVIDIA A10 Tensor Core GPU datasheet (250 TFLOPS with sparsity)"),
    (r"MI300X", 1307.4, "AMD Instinct MI300X accelerator datasheet (2,614.9 TFLOPS with sparsity)"),
)

# Stated tolerances (what "equal" means in each part).
DDP_LOSS_RTOL = 1e-4  # per-step loss, DDP vs one process on the same global batch (summation order only)
DDP_WEIGHT_ATOL = {"cpu": 1e-5, "cuda": 1e-4}  # weights after the steps (cuDNN picks batch-dependent kernels)
RESUME_ATOL_NONDETERMINISTIC = 1e-3  # weights, where kernels use atomics (CUDA without deterministic mode)
SAMPLE_MAX_ABS, SAMPLE_MEAN_ABS = 0.05, 0.01  # bf16 vs fp32 samples in [-1, 1] (tests/test_sampling_precision.py)
# max |Δ| / max |reference| of the feature networks vs CPU: bitwise on CPU; on CUDA float32 summation
# order for I3D (which turns TF32 off), cuDNN's default TF32 convolutions (10-bit mantissa) for the others.
FEATURE_RTOL = {"cpu": {"i3d": 0.0, "inception": 0.0, "c3d": 0.0},
                "cuda": {"i3d": 1e-3, "inception": 2e-2, "c3d": 2e-2}}


# ------------------------------------------------------------------------------------------------
# Small helpers.
# ------------------------------------------------------------------------------------------------
def null(d: dict[str, Any], key: str, reason: str) -> None:
    """``d[key] = None`` with the reason recorded under ``d["null_reasons"][key]``."""
    d[key] = None
    d.setdefault("null_reasons", {})[key] = reason


def peak_bf16(device_name: str, override: float | None) -> dict[str, Any]:
    """The dense bf16 peak of ``device_name`` (TFLOP/s) and where the figure comes from."""
    out: dict[str, Any] = {"device_name": device_name}
    if override is not None and override > 0:
        out.update(tflops=override, source="--peak-tflops")
        return out
    for pattern, value, source in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name):
            out.update(tflops=value, source=source)
            return out
    null(out, "tflops", f"{device_name!r} is not in bench/gpu.py's table of known devices; pass --peak-tflops")
    out["source"] = None
    out["null_reasons"]["source"] = out["null_reasons"]["tflops"]
    return out


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"type": device, "torch": torch.__version__, "python": platform.python_version(),
                            "cpu_threads": torch.get_num_threads(), "host": platform.node()}
    if device == "cuda":
        info.update(name=torch.cuda.get_device_name(), count=torch.cuda.device_count(),
                    capability=".".join(map(str, torch.cuda.get_device_capability())),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    bf16_supported=torch.cuda.is_bf16_supported(),
                    memory_GiB=torch.cuda.get_device_properties(0).total_memory / 2**30)
        try:
            v = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
        except Exception as e:  # noqa: BLE001 (a torch built without NCCL)
            null(info, "nccl", f"torch.cuda.nccl.version() failed: {e}")
    else:
        info.update(name=platform.processor() or platform.machine(), count=1)
        for key in ("capability", "cuda", "cudnn", "bf16_supported", "memory_GiB", "nccl"):
            null(info, key, "CPU run: a CUDA property")
    return info


def experiment(size: str, tiny: bool, device: str, **train: Any) -> Any:
    """ExperimentConfig of a benchmark setting: ``size`` = bair | ucf101 | demo at its data shape, or
    the tiny U-Net on 1x16x16 clips of 4 + 2 frames with ``tiny``."""
    from vdm.config import ExperimentConfig

    if tiny:
        spec: dict[str, Any] = dict(model={"size": "tiny"}, data={"resolution": 16, "channels": 1, "frames": 4,
                                                                  "images_per_video": 2})
    elif size == "demo":
        spec = dict(model={"size": "demo"}, data={"resolution": 32, "channels": 1, "frames": 10,
                                                  "images_per_video": 8})
    else:  # paper sizes: 16 + 8 frames at 64x64 RGB (Appendix A)
        spec = dict(model={"size": size}, data={"resolution": 64, "channels": 3, "frames": 16, "images_per_video": 8})
    spec["model"] = {**spec["model"], "dropout": 0.0, "num_classes": 0,
                     "gradient_checkpointing": bool(train.pop("gradient_checkpointing", False))}
    spec["diffusion"] = {"prediction": "v"}
    spec["train"] = {"device": device, "progress": False, "tensorboard": False, "lr": 1e-3, "ema_decay": 0.9,
                     "checkpoint_every": 1000, "log_every": 1, **train}
    return ExperimentConfig.from_dict(spec)


class GlobalBatchLoader:
    """Deterministic synthetic clips with the loader interface: example n is drawn from seed + n, and
    rank r takes rows [r·b, (r+1)·b) of each global micro-batch, so any split over ranks sees the same
    global batch (as tests/conftest.py's ArrayLoader). Resumable: ``state_dict`` is the position."""

    def __init__(self, cfg: Any, *, batch_size: int, seed: int, rank: int, world_size: int, num_workers: int = 0):
        self.cfg, self.b, self.seed, self.rank, self.world = cfg, batch_size, seed, rank, world_size
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": 0, "position": self.position}

    def load_state_dict(self, d: dict[str, int]) -> None:
        self.position = int(d["position"])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import torch

        d = self.cfg.data
        T, K = d.frames, d.images_per_video
        while True:
            first = self.position * self.b * self.world + self.rank * self.b
            video = torch.stack([torch.rand(d.channels, T + K, d.resolution, d.resolution,
                                            generator=torch.Generator().manual_seed(self.seed + n)) * 2 - 1
                                 for n in range(first, first + self.b)])  # [b, C, T+K, H, W]
            is_image = torch.zeros(self.b, T + K, dtype=torch.bool)  # [b, T+K]
            is_image[:, T:] = True
            self.position += 1
            yield {"video": video, "is_image": is_image}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def state_digest(state: dict[str, Any]) -> str:
    """sha256 of a state dict's tensors (names, dtypes, bytes): equal digests = bitwise equal weights."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    return max(float((a[k].double().cpu() - b[k].double().cpu()).abs().max()) if a[k].numel() else 0.0 for k in a)


# ------------------------------------------------------------------------------------------------
# Which SDPA kernel ran: the aten operators seen inside the attention modules' forward.
# ------------------------------------------------------------------------------------------------
def _kernel_label(ops: Counter) -> str:
    names = " ".join(ops)
    for key, label in (("flash_attention_for_cpu", "flash (CPU)"), ("_flash_attention", "flash"),
                       ("efficient_attention", "memory-efficient"), ("cudnn_attention", "cuDNN"),
                       ("overrideable", "fused (overrideable)")):
        if key in names:
            return label
    if any(k in names for k in ("bmm", "baddbmm", "matmul", "mm")):
        return "math (unfused matmul + softmax)"
    return "none seen"


@contextlib.contextmanager
def record_sdpa(model: Any) -> Iterator[dict[str, Counter]]:
    """Record the attention operators run inside every SpatialAttention / TemporalAttention forward of
    ``model`` ({"spatial": Counter, "temporal": Counter} of aten operator names)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from vdm.model.layers import SpatialAttention, TemporalAttention

    seen: dict[str, Counter] = {"spatial": Counter(), "temporal": Counter()}
    where: list[str | None] = [None]

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            if where[0] is not None:
                name = str(func.overloadpacket)
                if "scaled_dot_product" in name or name.split(".")[-1] in ("bmm", "baddbmm", "mm", "matmul"):
                    seen[where[0]][name] += 1
            return func(*args, **(kwargs or {}))

    hooks = []
    for m in model.modules():
        label = "spatial" if isinstance(m, SpatialAttention) else "temporal" if isinstance(m, TemporalAttention) else ""
        if label:
            hooks.append(m.register_forward_pre_hook(lambda mod, inp, _l=label: where.__setitem__(0, _l)))
            hooks.append(m.register_forward_hook(lambda mod, inp, out: where.__setitem__(0, None)))
    try:
        with Mode():
            yield seen
    finally:
        for h in hooks:
            h.remove()


# ------------------------------------------------------------------------------------------------
# Part 1: the training step.
# ------------------------------------------------------------------------------------------------
def measure_train(size: str, args: argparse.Namespace, *, precision: str, checkpointing: bool, compile_: bool,
                  batch: int, peak: float | None) -> dict[str, Any]:
    """One training setting: the trainer's real step on synthetic batches."""
    import torch

    from vdm.model import count_parameters
    from vdm.plan import forward_flops
    from vdm.train.loop import Trainer

    dev = args.device
    cfg = experiment(size, args.tiny, dev, batch_size=batch, precision=precision, steps=10**6,
                     gradient_checkpointing=checkpointing)
    frames = cfg.data.frames + cfg.data.images_per_video
    out: dict[str, Any] = {"model": "tiny" if args.tiny else size, "precision": precision,
                           "gradient_checkpointing": checkpointing, "compile": compile_, "batch": batch,
                           "frames": f"{cfg.data.frames}+{cfg.data.images_per_video}",
                           "shape": f"{cfg.data.channels}x{cfg.data.resolution}x{cfg.data.resolution}"}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tr = Trainer(cfg, tmp, None, make_loader=GlobalBatchLoader)
        except ValueError as e:  # a setting the trainer refuses (e.g. a CUDA-only one)
            for key in ("step_s", "steps_per_s", "samples_per_s", "achieved_TFLOPs", "MFU", "peak_mem_GiB"):
                null(out, key, f"the trainer refused this setting: {e}")
            return out
        out["params_M"] = count_parameters(tr.model) / 1e6
        if compile_:
            t0 = time.perf_counter()
            tr.net = torch.compile(tr.model)
        batches = iter(tr.loader)
        if dev == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        if compile_:
            tr.train_step(batches)  # compiles
            _sync(dev)
            out["compile_s"] = time.perf_counter() - t0
            for key in ("sdpa_kernel", "sdpa_ops"):
                null(out, key, "not recorded under torch.compile (fused into compiled kernels)")
        else:
            with record_sdpa(tr.model) as seen:  # the first, untimed step
                tr.train_step(batches)
            out["sdpa_kernel"] = {k: _kernel_label(v) for k, v in seen.items()}
            out["sdpa_ops"] = {k: dict(v) for k, v in seen.items()}
        for _ in range(args.warmup):
            tr.train_step(batches)
        _sync(dev)
        times = []
        loss = float("nan")
        for _ in range(args.train_steps):
            t0 = time.perf_counter()
            loss, _, _ = tr.train_step(batches)
            _sync(dev)
            times.append(time.perf_counter() - t0)
        step_s = statistics.median(times)
        flops = 3.0 * forward_flops(cfg.model, frames) * batch  # vdm plan's count of a step
        out.update(step_s=step_s, steps_per_s=1 / step_s, samples_per_s=batch / step_s, timed_steps=len(times),
                   loss=loss, model_TFLOP_per_step=flops / 1e12, achieved_TFLOPs=flops / step_s / 1e12)
        if dev == "cuda":
            out["peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2**30
            out["peak_reserved_GiB"] = torch.cuda.max_memory_reserved() / 2**30
        else:
            reason = ("CPU run: GPU memory; CPU peak RSS cannot be reset between settings of one process "
                      "(bench/train.py measures it per process)")
            null(out, "peak_mem_GiB", reason)
            null(out, "peak_reserved_GiB", reason)
        if dev != "cuda":
            null(out, "MFU", "CPU run: MFU is against a GPU's bf16 peak")
        elif peak is None:
            null(out, "MFU", "the device's bf16 peak is unknown (pass --peak-tflops)")
        else:
            out["MFU"] = out["achieved_TFLOPs"] / peak
        del tr
    if dev == "cuda":
        torch.cuda.empty_cache()
    return out


def _train_settings(args: argparse.Namespace, settings: list[dict[str, Any]], size: str, deadline: float
                    ) -> dict[str, Any]:
    """Measure ``settings`` one after another; an out-of-memory or other error is recorded per setting."""
    import torch

    peak = args.peak_info.get("tflops")
    rows: list[dict[str, Any]] = []
    for s in settings:
        row: dict[str, Any]
        if time.time() > deadline:
            row = {**s, "skipped": "the part's time box was used up"}
        else:
            try:
                row = measure_train(size, args, peak=peak, **s)
            except torch.cuda.OutOfMemoryError as e:
                row = {**s, "error": f"out of memory: {str(e).splitlines()[0]}"}
                torch.cuda.empty_cache()
            except Exception as e:  # noqa: BLE001 (reported, the next setting still runs)
                row = {**s, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        rows.append(row)
        print(f"  train {size} {s}: {row.get('step_s', row.get('error', row.get('skipped')))}", file=sys.stderr)
    return {"settings": rows}


def part_train(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    batch = args.batch or (2 if args.tiny else 8)
    settings = [dict(precision=p, checkpointing=c, compile_=False, batch=batch)
                for p in ("bf16", "fp32") for c in (False, True)]
    return _train_settings(args, settings, "bair", deadline)


def skip_reason(name: str, args: argparse.Namespace) -> str | None:
    """Why part ``name`` does not run with these options (decided before starting its subprocess)."""
    if name == "train_compile" and args.device != "cuda" and not args.compile:
        return ("torch.compile is timed on CUDA only (on CPU, inductor's compile of the U-Net takes minutes "
                "and needs a C++ compiler); --compile forces it")
    if name == "train_ucf101" and args.tiny:
        return "--tiny: the 1.1 B UCF-101 U-Net is not built"
    if name == "train_ucf101" and args.device != "cuda":
        return "the 1.1 B UCF-101 U-Net is timed on CUDA only (bench/train.py times paper sizes on CPU)"
    return None


def part_train_compile(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    batch = args.batch or (2 if args.tiny else 8)
    precision = "bf16" if args.device == "cuda" else "fp32"
    return _train_settings(args, [dict(precision=precision, checkpointing=False, compile_=True, batch=batch)],
                           "bair", deadline)


def part_train_ucf101(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    settings = [dict(precision="bf16", checkpointing=c, compile_=False, batch=1) for c in (False, True)]
    return _train_settings(args, settings, "ucf101", deadline)


# ------------------------------------------------------------------------------------------------
# Part 2: data parallelism through the trainer's own process-group set-up.
# ------------------------------------------------------------------------------------------------
def _ddp_config(args: argparse.Namespace, world: int) -> Any:
    per_rank = 1 if args.tiny else 2
    return experiment("bair", args.tiny, args.device, batch_size=per_rank * world, precision="fp32")


def _fp32_strict(device: str) -> None:
    """True float32 on CUDA (no TF32), so that runs differ by summation order only."""
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def _train_steps(cfg: Any, steps: int, workdir: str) -> tuple[Any, list[float]]:
    from vdm.train.loop import Trainer

    tr = Trainer(cfg, workdir, None, make_loader=GlobalBatchLoader)
    batches = iter(tr.loader)
    losses = [tr.train_step(batches)[0] for _ in range(steps)]
    return tr, losses


def ddp_worker(args: argparse.Namespace) -> int:
    """One torchrun rank: a few steps, then this rank's losses, weight digest and (rank 0) weights."""
    import torch
    import torch.distributed as dist

    from vdm.train import distributed as D

    _fp32_strict(args.device)
    world = int(os.environ["WORLD_SIZE"])
    out = Path(args._ddp_out)
    with tempfile.TemporaryDirectory() as tmp:
        tr, losses = _train_steps(_ddp_config(args, world), args.ddp_steps, tmp)
        state = {k: v.detach().cpu() for k, v in tr.model.state_dict().items()}
        rank = tr.dist.rank
        backend = dist.get_backend() if dist.is_initialized() else None
        (out / f"rank{rank}.json").write_text(json.dumps({
            "rank": rank, "world_size": tr.dist.world_size, "backend": backend, "device": str(tr.device),
            "losses": losses, "digest": state_digest(state)}))
        if rank == 0:
            torch.save(state, out / "rank0_model.pt")
        D.teardown()
    return 0


def part_ddp(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import torch

    world = torch.cuda.device_count() if args.device == "cuda" else 2
    res: dict[str, Any] = {"nproc_per_node": world, "steps": args.ddp_steps,
                           "launcher": "torchrun --standalone (torch.distributed.run)",
                           "loss_rtol": DDP_LOSS_RTOL, "weight_atol": DDP_WEIGHT_ATOL[args.device]}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads or 1), TQDM_DISABLE="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}",
               str(Path(__file__).resolve()), "--_ddp_worker", "--_ddp_out", tmp, *forwarded(args)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=max(10.0, deadline - time.time()))
        res["torchrun_s"] = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"torchrun exited {r.returncode}:\n{r.stderr[-3000:]}")
        ranks = [json.loads((Path(tmp) / f"rank{i}.json").read_text()) for i in range(world)]
        dp_state = torch.load(Path(tmp) / "rank0_model.pt", weights_only=True)
        res["world_size"] = ranks[0]["world_size"]
        if world > 1:
            res["backend"] = ranks[0]["backend"]
        else:
            null(res, "backend", "one local GPU: one rank, so no process group (NCCL refuses two ranks on one "
                                 "device); run on a machine with 2+ GPUs to exercise NCCL")
        res["devices"] = [r_["device"] for r_ in ranks]
        res["weights_identical_across_ranks"] = len({r_["digest"] for r_ in ranks}) == 1
        # the reference: one process, the same global batch, in this process
        _fp32_strict(args.device)
        with tempfile.TemporaryDirectory() as tmp1:
            saved = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k in os.environ}
            tr, losses = _train_steps(_ddp_config(args, world), args.ddp_steps, tmp1)
            os.environ.update(saved)
            one = {k: v.detach().cpu() for k, v in tr.model.state_dict().items()}
    res["loss_ddp"], res["loss_single"] = ranks[0]["losses"], losses
    rel = [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ranks[0]["losses"], losses)]
    res["loss_max_rel_diff"] = max(rel)
    res["loss_equal_within_tol"] = max(rel) <= DDP_LOSS_RTOL
    res["weights_max_abs_diff_vs_single"] = max_abs_diff(dp_state, one)
    res["weights_within_tol"] = res["weights_max_abs_diff_vs_single"] <= DDP_WEIGHT_ATOL[args.device]
    res["trained"] = max_abs_diff(one, _initial_weights(_ddp_config(args, world))) > 0
    return res


def _initial_weights(cfg: Any) -> dict[str, Any]:
    import torch

    from vdm.model.unet import UNet3D
    from vdm.seeds import derive_seed

    torch.manual_seed(derive_seed(cfg.seed, "init"))  # as Trainer.__init__
    return UNet3D(cfg.model).state_dict()


# ------------------------------------------------------------------------------------------------
# Part 3: exact resume.
# ------------------------------------------------------------------------------------------------
def _resume_pair(args: argparse.Namespace, total: int, k: int) -> dict[str, Any]:
    """``Trainer.run`` to ``total`` steps, and to ``k`` steps then resumed to ``total``: final states."""
    from vdm.train import checkpoint as ckpt
    from vdm.train.loop import Trainer

    size = "demo" if args.device == "cuda" and not args.tiny else "bair"
    cfg = lambda steps: experiment(size, args.tiny, args.device, batch_size=2, steps=steps,  # noqa: E731
                                   checkpoint_every=10**6, precision="auto")
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(cfg(total), f"{tmp}/a", None, make_loader=GlobalBatchLoader).run()
        Trainer(cfg(k), f"{tmp}/b", None, make_loader=GlobalBatchLoader).run()
        resumed = Trainer(cfg(total), f"{tmp}/b", None, make_loader=GlobalBatchLoader)
        resumed.run()
        a, _ = ckpt.load_latest(f"{tmp}/a/checkpoints")  # type: ignore[misc]
        b, _ = ckpt.load_latest(f"{tmp}/b/checkpoints")  # type: ignore[misc]
    diff = {"model": max_abs_diff(a["model"], b["model"]), "ema": max_abs_diff(a["ema"]["shadow"], b["ema"]["shadow"])}
    opt_a = {f"{i}.{n}": v for i, s in a["optimizer"]["state"].items() for n, v in s.items()}
    opt_b = {f"{i}.{n}": v for i, s in b["optimizer"]["state"].items() for n, v in s.items()}
    diff["optimizer"] = max_abs_diff(opt_a, opt_b)
    bitwise = (state_digest(a["model"]) == state_digest(b["model"])
               and state_digest(a["ema"]["shadow"]) == state_digest(b["ema"]["shadow"])
               and state_digest(opt_a) == state_digest(opt_b))
    return {"model": size if not args.tiny else "tiny", "precision": "bf16" if resumed.use_bf16 else "fp32",
            "steps": total, "stopped_after": k, "bitwise_equal": bitwise, "max_abs_diff": diff,
            "within_tol": bitwise or max(diff.values()) <= RESUME_ATOL_NONDETERMINISTIC}


def part_resume(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import torch

    total, k = (4, 2) if args.tiny else (6, 3)
    res: dict[str, Any] = {"tolerance_if_not_bitwise": RESUME_ATOL_NONDETERMINISTIC,
                           "default": _resume_pair(args, total, k)}
    if time.time() > deadline:
        null(res, "deterministic", "the part's time box was used up")
        return res
    torch.use_deterministic_algorithms(True)  # CUBLAS_WORKSPACE_CONFIG is set for this subprocess
    try:
        res["deterministic"] = _resume_pair(args, total, k)
    except RuntimeError as e:  # an operator without a deterministic implementation
        null(res, "deterministic", f"torch.use_deterministic_algorithms(True) failed: {str(e).splitlines()[0]}")
    finally:
        torch.use_deterministic_algorithms(False)
    return res


# ------------------------------------------------------------------------------------------------
# Part 4: sampling.
# ------------------------------------------------------------------------------------------------
def part_sample(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import torch

    from vdm.diffusion import CosineSchedule
    from vdm.model.unet import UNet3D
    from vdm.plan import chunk_size_that_fits, forward_flops, sample_cost_factor
    from vdm.sampling import tasks
    from vdm.sampling.config import SampleConfig
    from vdm.sampling.samplers import network_evaluations
    from vdm.sampling.seeds import StackedGenerator

    dev = args.device
    cfg = experiment("bair", args.tiny, dev)
    mc = cfg.model
    torch.manual_seed(0)
    net = UNet3D(mc)
    # A network whose output depends on its input (its zero-initialised layers filled with N(0, 0.03²)),
    # as a trained one's; an untrained U-Net returns 0 and would make any precision agree.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.03)
    net = net.to(dev).eval()
    B = args.sample_batch or (2 if args.tiny else 8)
    steps = args.sample_steps or (4 if args.tiny else 16)
    shape = (B, mc.in_channels, cfg.data.frames, mc.image_size, mc.image_size)  # [B, C, T, H, W]
    schedule = CosineSchedule.from_config(cfg.diffusion)

    def run(precision: str, tf32: bool, n_steps: int) -> tuple[Any, float]:
        sc = SampleConfig(steps=n_steps, precision=precision, clip_x=True, tf32=tf32)
        if dev == "cuda":  # as vdm.sampling.generate does
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        den = tasks.make_denoiser(net, "v", sc, dev)
        _sync(dev)
        t0 = time.perf_counter()
        with torch.no_grad():
            x = tasks.sample_block(sc, den, shape, schedule, StackedGenerator(list(range(B)), dev))
        _sync(dev)
        return x.float().cpu(), time.perf_counter() - t0

    variants = [("fp32", False), ("bf16", False)] + ([("fp32", True)] if dev == "cuda" else [])
    rows: dict[str, dict[str, Any]] = {}
    xs = {}
    for precision, tf32 in variants:
        name = precision + ("+tf32" if tf32 else "")
        run(precision, tf32, 2)  # warm-up (kernel selection, allocator)
        xs[name], s = run(precision, tf32, steps)
        rows[name] = {"loop_s": s, "evals_per_s": B * steps / s,
                      "model_TFLOPs": B * steps * forward_flops(mc, cfg.data.frames) / s / 1e12}
    d = (xs["fp32"] - xs["bf16"]).abs()
    res: dict[str, Any] = {"model": "tiny" if args.tiny else "bair", "batch": B, "steps": steps,
                           "shape": list(shape), "seeds": list(range(B)),
                           "weights": "random init, zero-initialised layers filled with N(0, 0.03^2)",
                           "reference": "fp32 without TF32", "runs": rows,
                           "bf16_vs_fp32_max_abs": float(d.max()), "bf16_vs_fp32_mean_abs": float(d.mean()),
                           "tolerance": {"max_abs": SAMPLE_MAX_ABS, "mean_abs": SAMPLE_MEAN_ABS}}
    res["bf16_within_tol"] = bool(d.max() < SAMPLE_MAX_ABS and d.mean() < SAMPLE_MEAN_ABS)
    if "fp32+tf32" in xs:
        res["tf32_vs_fp32_max_abs"] = float((xs["fp32"] - xs["fp32+tf32"]).abs().max())
    else:
        null(res, "tf32_vs_fp32_max_abs", "CPU run: TF32 is a CUDA tensor-core mode")
    # The chunk size vdm plan would choose for the paper's sampler (256 ancestral steps, unguided) of
    # this network at the measured bf16 rate, against a resources.sample.runtime of --sample-runtime-min.
    paper = SampleConfig(steps=256, batch_size=B)
    rate = rows["bf16"]["model_TFLOPs"]
    per_sample = network_evaluations(paper) * sample_cost_factor(paper) * forward_flops(mc, cfg.data.frames)
    per_sample_h = per_sample / (rate * 1e12) / 3600
    res["plan"] = {"sample_tflops": rate, "steps": 256, "batch_size": B, "runtime_min": args.sample_runtime_min,
                   "hours_per_sample": per_sample_h,
                   "chunk_size": chunk_size_that_fits(per_sample_h, args.sample_runtime_min / 60, B)}
    return res


# ------------------------------------------------------------------------------------------------
# Part 5: the feature networks, device vs CPU.
# ------------------------------------------------------------------------------------------------
def part_features(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import numpy as np
    import torch

    from vdm.metrics import c3d
    from vdm.metrics.config import EvalConfig
    from vdm.metrics.detectors import DETECTORS, detector_outputs

    dev = args.device
    n_dev = 1 if args.tiny else 16  # clips timed on the device
    n_ref = 1 if args.tiny else 2  # clips also run on CPU (the reference)
    rng = np.random.default_rng(0)

    def clips(n: int, frames: int) -> np.ndarray:  # uint8 [n, T, 64, 64, 3]
        return rng.integers(0, 256, (n, frames, 64, 64, 3), dtype=np.uint8)

    ev = EvalConfig(batch_size=8)
    res: dict[str, Any] = {"clips_device": n_dev, "clips_reference": n_ref, "reference": "cpu"}

    if args.c3d_weights:
        c3d_net_dev = c3d.load_c3d(args.c3d_weights, args.c3d_weights_sha256, dev)
        c3d_net_cpu = c3d.load_c3d(args.c3d_weights, args.c3d_weights_sha256, "cpu")
        mean = c3d.load_mean(args.c3d_mean, args.c3d_mean_sha256)
        c3d_weights = "evaluate.c3d_weights (pinned sha256)"
    else:
        torch.manual_seed(0)
        c3d_net_cpu = c3d.C3DUCF101().eval()
        c3d_net_dev = c3d.C3DUCF101().eval()
        c3d_net_dev.load_state_dict(c3d_net_cpu.state_dict())
        c3d_net_dev.to(dev)
        mean = np.zeros((3, c3d.FRAMES, c3d.INPUT_SIZE, c3d.INPUT_SIZE), np.float32)
        c3d_weights = ("random (seed 0): no evaluate.c3d_weights given; checks the CUDA-vs-CPU numerics and "
                       "throughput only, not the published network's outputs")

    def c3d_fn(net: Any, device: str) -> Callable[[np.ndarray], np.ndarray]:
        return lambda v: c3d.c3d_outputs(v, net, mean, batch_size=8, device=device)[0]  # fc7 [N, 4096]

    def detector_fn(name: str, output: str, device: str) -> Callable[[np.ndarray], np.ndarray]:
        net = DETECTORS[name].load(ev, device)
        return lambda v: detector_outputs(DETECTORS[name], v, ev, device, net=net)[output]

    specs: list[tuple[str, str, int, Callable[[str], Callable[[np.ndarray], np.ndarray]]]] = [
        ("i3d", "logits [400]", 10 if args.tiny else 16, lambda d: detector_fn("i3d", "features", d)),
        ("inception", "pool3 [2048], frame average", 2 if args.tiny else 16,
         lambda d: detector_fn("inception", "avg", d)),
        ("c3d", "fc7 [4096]", c3d.FRAMES, lambda d: c3d_fn(c3d_net_dev if d == dev else c3d_net_cpu, d)),
    ]
    for name, what, frames, make in specs:
        row: dict[str, Any] = {"output": what, "frames": frames}
        if time.time() > deadline:
            row["skipped"] = "the part's time box was used up"
            res[name] = row
            continue
        v = clips(max(n_dev, n_ref), frames)
        on_dev, on_cpu = make(dev), make("cpu")
        if dev == "cuda":
            on_dev(v[:1])  # warm-up (cuDNN kernel selection, allocator)
            _sync(dev)
        t0 = time.perf_counter()
        f_dev = on_dev(v[:n_dev])
        _sync(dev)
        row["clips_per_s_device"] = n_dev / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        f_ref = on_cpu(v[:n_ref])
        row["clips_per_s_cpu"] = n_ref / (time.perf_counter() - t0)
        delta = float(np.abs(f_dev[:n_ref].astype(np.float64) - f_ref).max())
        scale = float(np.abs(f_ref).max())
        row.update(max_abs_diff=delta, max_abs_reference=scale, rel_diff=delta / max(scale, 1e-30),
                   rtol=FEATURE_RTOL[dev][name], within_tol=delta <= FEATURE_RTOL[dev][name] * scale)
        if name == "c3d":
            row["weights"] = c3d_weights
        res[name] = row
        print(f"  features {name}: |Δ| {delta:.3g}", file=sys.stderr)
    return res


# ------------------------------------------------------------------------------------------------
# The driver: each part in its own subprocess, time-boxed.
# ------------------------------------------------------------------------------------------------
PART_FNS: dict[str, Callable[[argparse.Namespace, float], Any]] = {
    "train": part_train, "train_compile": part_train_compile, "train_ucf101": part_train_ucf101,
    "ddp": part_ddp, "resume": part_resume, "sample": part_sample, "features": part_features}


def forwarded(args: argparse.Namespace) -> list[str]:
    """The options a part's subprocess needs."""
    out = ["--device", args.device, "--threads", str(args.threads), "--batch", str(args.batch),
           "--warmup", str(args.warmup), "--train-steps", str(args.train_steps), "--ddp-steps", str(args.ddp_steps),
           "--sample-batch", str(args.sample_batch), "--sample-steps", str(args.sample_steps),
           "--sample-runtime-min", str(args.sample_runtime_min)]
    if args.tiny:
        out.append("--tiny")
    if args.compile:
        out.append("--compile")
    if args.peak_tflops is not None:
        out += ["--peak-tflops", str(args.peak_tflops)]
    for k in ("c3d_weights", "c3d_weights_sha256", "c3d_mean", "c3d_mean_sha256"):
        if getattr(args, k):
            out += [f"--{k.replace('_', '-')}", getattr(args, k)]
    return out


def run_part(name: str, args: argparse.Namespace, budget_s: float) -> dict[str, Any]:
    """Run part ``name`` in a subprocess for at most ``budget_s`` seconds: {status, seconds, result | error}."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_part", name, "--_result", str(result),
               "--_deadline", str(time.time() + 0.85 * budget_s), *forwarded(args)]
        env = dict(os.environ, TQDM_DISABLE="1", CUBLAS_WORKSPACE_CONFIG=":4096:8",
                   MKL_CBWR=os.environ.get("MKL_CBWR", "AUTO,STRICT"),
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        if args.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
        t0 = time.perf_counter()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget_s)
        except subprocess.TimeoutExpired as e:
            tail = (e.stderr or b"")[-2000:]
            return {"status": "timeout", "seconds": time.perf_counter() - t0,
                    "error": f"no result within its time box of {budget_s:.0f} s",
                    "stderr_tail": tail.decode(errors="replace") if isinstance(tail, bytes) else tail}
        seconds = time.perf_counter() - t0
        if r.returncode != 0 or not result.is_file():
            return {"status": "failed", "seconds": seconds, "error": f"exit code {r.returncode}",
                    "stderr_tail": r.stderr[-3000:]}
        return {"seconds": seconds, **json.loads(result.read_text())}


def part_main(args: argparse.Namespace) -> int:
    """In a part's subprocess: run it and write {status, result | reason | error}."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.peak_info = peak_bf16(torch.cuda.get_device_name() if args.device == "cuda" else "cpu", args.peak_tflops)
    try:
        if os.environ.get("VDM_GPU_CHECK_BREAK") == args._part:  # the test's way to break one part
            raise RuntimeError(f"part {args._part} broken on purpose (VDM_GPU_CHECK_BREAK)")
        out = {"status": "ok", "result": PART_FNS[args._part](args, args._deadline)}
    except Exception as e:  # noqa: BLE001 (reported in the JSON; the other parts still run)
        out = {"status": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    Path(args._result).write_text(json.dumps(out, default=float, allow_nan=True))
    return 0


def plan_rate(parts: dict[str, Any], device: str) -> dict[str, Any]:
    """The sustained model TFLOP/s to give ``vdm plan --tflops``: the bf16 BAIR training step without
    checkpointing (what a paper run does), else the fastest eager training setting measured."""
    out: dict[str, Any] = {}
    rows = [r for r in (parts.get("train", {}).get("result") or {}).get("settings", []) if r.get("achieved_TFLOPs")]
    if not rows:
        null(out, "tflops", "no training setting was measured")
        null(out, "command", "no training setting was measured")
        return out
    pick = next((r for r in rows if r["precision"] == "bf16" and not r["gradient_checkpointing"]), None)
    pick = pick or max(rows, key=lambda r: r["achieved_TFLOPs"])
    tflops = float(f"{pick['achieved_TFLOPs']:.3g}")
    out.update(tflops=tflops, command=f"vdm plan --spec SPEC --tflops {tflops:g}",
               from_setting={k: pick[k] for k in ("model", "precision", "gradient_checkpointing", "batch")},
               device=device)
    if device != "cuda":
        out["note"] = "a CPU figure (tiny shapes with --tiny): not a GPU rate"
    return out


def table(report: dict[str, Any]) -> str:
    """A plain-text summary, device named on every line."""
    dev = report["device"]["name"] if report["device"]["type"] == "cuda" else f"CPU ({report['device']['name']})"
    lines = [f"vdm GPU check on {dev}, torch {report['device']['torch']}, "
             f"bf16 peak {report['peak_bf16']['tflops']} TFLOP/s ({report['peak_bf16']['source']})"]
    for name, part in report["parts"].items():
        head = f"{name:14s} {part['status']:8s} {part.get('seconds', 0):6.1f} s"
        if part["status"] != "ok":
            lines.append(f"{head}  {part.get('reason') or part.get('error')}")
            continue
        r = part["result"]
        if name.startswith("train"):
            lines.append(head)
            for s in r["settings"]:
                if s.get("step_s") is not None:
                    mem = "" if s.get("peak_mem_GiB") is None else f", peak {s['peak_mem_GiB']:.2f} GiB"
                    mfu = "" if s.get("MFU") is None else f", MFU {100 * s['MFU']:.1f} %"
                    sdpa = s.get("sdpa_kernel") or {}
                    lines.append(f"    {s['model']} {s['precision']} ckpt={int(s['gradient_checkpointing'])} "
                                 f"compile={int(s['compile'])} b={s['batch']} [{dev}]: {s['steps_per_s']:.2f} steps/s, "
                                 f"{s['samples_per_s']:.2f} samples/s, {s['achieved_TFLOPs']:.3g} TFLOP/s{mfu}{mem}"
                                 + (f", SDPA spatial {sdpa.get('spatial')}, temporal {sdpa.get('temporal')}"
                                    if sdpa else ""))
                else:
                    why = s.get("error") or s.get("skipped") or (s.get("null_reasons") or {}).get("step_s")
                    ckpt = int(s.get("gradient_checkpointing", s.get("checkpointing", 0)))
                    lines.append(f"    {s.get('model', '')} {s['precision']} ckpt={ckpt} [{dev}]: {why}")
        elif name == "ddp":
            lines.append(f"{head}  [{dev}] {r['world_size']} ranks ({r.get('backend') or 'no process group'}): "
                         f"weights identical across ranks {r['weights_identical_across_ranks']}, loss rel diff "
                         f"{r['loss_max_rel_diff']:.2e} (tol {r['loss_rtol']:g}), weights |Δ| vs 1 process "
                         f"{r['weights_max_abs_diff_vs_single']:.2e} (tol {r['weight_atol']:g})")
        elif name == "resume":
            det = r.get("deterministic") or {}
            lines.append(f"{head}  [{dev}] bitwise {r['default']['bitwise_equal']} (|Δ| "
                         f"{max(r['default']['max_abs_diff'].values()):.2e}); deterministic algorithms: "
                         f"{det.get('bitwise_equal', (r.get('null_reasons') or {}).get('deterministic'))}")
        elif name == "sample":
            runs = ", ".join(f"{k} {v['evals_per_s']:.3g} evals/s" for k, v in r["runs"].items())
            lines.append(f"{head}  [{dev}] {runs}; bf16 vs fp32 max |Δ| {r['bf16_vs_fp32_max_abs']:.2e}, mean "
                         f"{r['bf16_vs_fp32_mean_abs']:.2e} (tol {SAMPLE_MAX_ABS}/{SAMPLE_MEAN_ABS}); chunk_size "
                         f"{r['plan']['chunk_size']} for {r['plan']['runtime_min']:g} min")
        elif name == "features":
            lines.append(head)
            for k in ("i3d", "inception", "c3d"):
                f = r.get(k, {})
                if "max_abs_diff" in f:
                    lines.append(f"    {k:9s} [{dev} vs CPU] max |Δ| {f['max_abs_diff']:.3g} "
                                 f"(rel {f['rel_diff']:.2e}), "
                                 f"{f['clips_per_s_device']:.3g} clips/s on {report['device']['type']}, "
                                 f"{f['clips_per_s_cpu']:.3g} on CPU")
                else:
                    lines.append(f"    {k:9s} {f.get('skipped')}")
    p = report["plan"]
    lines.append(f"vdm plan rate: {p['command'] or (p.get('null_reasons') or {}).get('command')}"
                 + (f"  ({p['note']})" if p.get("note") else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--tiny", action="store_true", help="tiny shapes (the test suite's CPU run)")
    p.add_argument("--out", default="", help="write the JSON here (always printed as a table)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--timeout", type=float, default=480.0, help="seconds for the whole check (shared by the parts)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (overrides the table)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (0: torch's default)")
    p.add_argument("--batch", type=int, default=0, help="training batch (0: 8 on paper sizes, 2 with --tiny)")
    p.add_argument("--warmup", type=int, default=1, help="untimed training steps after the first")
    p.add_argument("--train-steps", type=int, default=5, help="timed training steps per setting (median)")
    p.add_argument("--ddp-steps", type=int, default=3)
    p.add_argument("--sample-batch", type=int, default=0, help="0: 8 (2 with --tiny)")
    p.add_argument("--sample-steps", type=int, default=0, help="timed sampler steps (0: 16, 4 with --tiny)")
    p.add_argument("--sample-runtime-min", type=float, default=240.0,
                   help="resources.sample.runtime the chunk size is chosen for")
    p.add_argument("--compile", action="store_true", help="time torch.compile on CPU too")
    for k in ("c3d-weights", "c3d-weights-sha256", "c3d-mean", "c3d-mean-sha256"):
        p.add_argument(f"--{k}", default="", help="C3D files (evaluate.c3d_*); without them C3D is random")
    p.add_argument("--_part", default="", help=argparse.SUPPRESS)
    p.add_argument("--_result", default="", help=argparse.SUPPRESS)
    p.add_argument("--_deadline", type=float, default=math.inf, help=argparse.SUPPRESS)
    p.add_argument("--_ddp_worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_ddp_out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    if args._ddp_worker:
        return ddp_worker(args)
    if args._part:
        return part_main(args)
    parts = [s for s in args.parts.split(",") if s]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown parts {unknown} (known: {', '.join(PARTS)})")
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    dev_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    report: dict[str, Any] = {"format": FORMAT, "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                              "tiny": args.tiny, "device": device_info(args.device),
                              "peak_bf16": peak_bf16(dev_name, args.peak_tflops), "parts": {}}
    if args.device != "cuda" and args.peak_tflops is None:
        report["peak_bf16"] = {"device_name": "cpu", "tflops": None, "source": None,
                               "null_reasons": {"tflops": "CPU run: the bf16 peak is a GPU figure",
                                                "source": "CPU run: the bf16 peak is a GPU figure"}}
    share = sum(BUDGET[n] for n in parts)
    for name in parts:
        reason = skip_reason(name, args)
        if reason:
            report["parts"][name] = {"status": "skipped", "seconds": 0.0, "reason": reason}
            continue
        left = args.timeout - (time.perf_counter() - t_start)
        budget = min(left, args.timeout * BUDGET[name] / share * 1.5) if left > 5 else 0.0
        if budget <= 0:
            report["parts"][name] = {"status": "timeout", "seconds": 0.0, "error": "no time left in --timeout"}
            continue
        print(f"gpu check: {name} (at most {budget:.0f} s)", file=sys.stderr, flush=True)
        report["parts"][name] = run_part(name, args, budget)
    report["plan"] = plan_rate(report["parts"], args.device)
    report["seconds"] = time.perf_counter() - t_start
    print(table(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0 if all(v["status"] in ("ok", "skipped") for v in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
