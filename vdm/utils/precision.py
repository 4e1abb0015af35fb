"""Which precision a network runs in: the ``precision`` option of training and sampling.

* ``fp32``: float32 throughout.
* ``bf16``: bf16 autocast of the network (weights, optimizer state, EMA and the sampler's arithmetic stay
  float32), on any device.
* ``auto``: bf16 on CUDA, fp32 on CPU.
* ``bf16_if_native``: bf16 where the device computes bf16 matmuls and convolutions natively — CUDA, and CPUs
  with AMX tiles or AVX512-BF16 (oneDNN's bf16 kernels) — fp32 elsewhere, where bf16 is emulated and slower
  than fp32. On this project's 2-core AMX CPU a training step of the default run's network (batch 8, 10 + 4
  frames) is 1.82x faster in bf16 (``bench/train.py --settings default --precision``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16", "bf16_if_native"]  # the type of train.precision and sample.precision
PRECISIONS: tuple[str, ...] = get_args(Precision)


def cpu_has_native_bf16() -> bool:
    """True when this CPU has AMX tiles or AVX512-BF16 (torch's own CPU capability checks)."""
    import torch  # here, not at the top: the config modules import this one and stay free of torch

    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(check()) for check in checks if callable(check))


def uses_bf16(precision: str, device: torch.device | str) -> bool:
    """Whether ``precision`` means bf16 autocast on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    import torch

    kind = torch.device(device).type
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    if precision == "auto":
        return kind == "cuda"
    return kind == "cuda" or (kind == "cpu" and cpu_has_native_bf16())
