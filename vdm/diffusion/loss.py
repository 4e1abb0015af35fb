"""Training loss (paper §1): t ~ U[0,1], z_t = α x + σ ε, MSE in ε-space or v-space.

``diffusion_loss`` returns a per-example loss [B] (mean over channels, pixels and the frames that
``frame_weight`` keeps), so the trainer decides how to reduce it.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from vdm.diffusion.process import q_sample, v_from_x_eps


def sample_t(batch: int, generator: torch.Generator | None = None, *, low_discrepancy: bool = False,
             device: torch.device | str | None = None) -> Tensor:
    """t ∈ [0, 1), [B]. Low-discrepancy: (u + i/B) mod 1 with one shared uniform u (Kingma et al. 2021)."""
    if low_discrepancy:
        u = torch.rand((), generator=generator, device=device)
        return torch.remainder(u + torch.arange(batch, device=device) / batch, 1.0)
    return torch.rand(batch, generator=generator, device=device)


def diffusion_loss(
    net: Callable[..., Tensor],
    x: Tensor,
    logsnr_fn: Callable[[Tensor], Tensor],
    *,
    prediction: str = "eps",
    t: Tensor | None = None,
    eps: Tensor | None = None,
    frame_weight: Tensor | None = None,
    generator: torch.Generator | None = None,
    low_discrepancy: bool = False,
    **cond: Any,
) -> Tensor:
    """Per-example MSE [B] between the network output and its ε / v / x target.

    x: [B, C, T, H, W] (or [B, C, H, W]); frame_weight: [B, T] (videos only) weights frames in the
    mean — 0 excludes a frame (e.g. padding), and the mean is over the kept frames.
    ``net(z_t, logsnr_t, **cond)`` is the raw network (no diffusion math inside).
    """
    B = x.shape[0]
    if t is None:
        t = sample_t(B, generator, low_discrepancy=low_discrepancy, device=x.device)
    if eps is None:
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    logsnr = logsnr_fn(t).to(x.dtype)  # [B]
    z_t = q_sample(x, logsnr, eps)  # [B, C, ...]
    out = net(z_t, logsnr, **cond)
    if prediction == "eps":
        target = eps
    elif prediction == "v":
        target = v_from_x_eps(x, eps, logsnr)
    elif prediction == "x":
        target = x
    else:
        raise ValueError(f"unknown prediction {prediction!r}")
    dtype = torch.promote_types(torch.promote_types(out.dtype, target.dtype), torch.float32)  # bf16 → fp32
    se = (out.to(dtype) - target.to(dtype)).pow(2)  # [B, C, T, H, W]
    if frame_weight is None:
        return se.flatten(1).mean(1)
    if x.ndim != 5:
        raise ValueError("frame_weight needs a video batch [B, C, T, H, W]")
    per_frame = se.mean(dim=(1, 3, 4))  # [B, T]
    w = frame_weight.to(per_frame.dtype)
    return (per_frame * w).sum(1) / w.sum(1).clamp_min(1e-12)
