"""The denoiser wrapper: network output → x̂ for any parameterization.

This is the only place that turns a raw network output into x̂ (and back): the U-Net knows
nothing of α, σ, ε or v, and samplers only see a callable ``denoiser(z_t, logsnr_t, **cond) -> x̂``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vdm.diffusion.process import eps_from_x, x_from_eps, x_from_v


def x_from_output(output: Tensor, z_t: Tensor, logsnr_t: Tensor, prediction: str) -> Tensor:
    """Convert the network's raw output (ε̂, v̂ or x̂) into x̂."""
    if prediction == "eps":
        return x_from_eps(z_t, output, logsnr_t)
    if prediction == "v":
        return x_from_v(z_t, output, logsnr_t)
    if prediction == "x":
        return output
    raise ValueError(f"unknown prediction {prediction!r} (expected eps, v or x)")


class Denoiser(nn.Module):
    """``Denoiser(net, prediction)(z_t, logsnr_t, **cond) -> x̂`` (same shape as z_t).

    ``net(z_t, logsnr_t, **cond)`` is the raw network. x̂ is returned as the network gives it: the
    sampling option ``clip_x`` clamps the final x̃ once, after every guidance wrapper
    (:class:`vdm.sampling.guidance.ClipX`), so that guidance works on the raw x̂.
    """

    def __init__(self, net: nn.Module, prediction: str = "eps", autocast: torch.dtype | None = None):
        super().__init__()
        if prediction not in ("eps", "v", "x"):
            raise ValueError(f"unknown prediction {prediction!r} (expected eps, v or x)")
        self.net = net
        self.prediction = prediction
        self.autocast = autocast  # e.g. torch.bfloat16: the network (only) under autocast

    def forward(self, z_t: Tensor, logsnr_t: Tensor, **cond: Any) -> Tensor:
        # The network runs in its own dtype (or under autocast); its output, the conversion to x̂ and
        # everything the sampler does with it are in the input's dtype (float32; float64 in tests).
        with torch.autocast(z_t.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            out = self.net(z_t.to(self._dtype()), logsnr_t.to(self._dtype()), **cond)
        out = out.to(z_t.dtype)
        return x_from_output(out, z_t, logsnr_t.to(z_t.dtype), self.prediction)

    def eps(self, z_t: Tensor, logsnr_t: Tensor, **cond: Any) -> Tensor:
        """ε̂(z_t) = (z_t − α x̂)/σ."""
        return eps_from_x(z_t, self(z_t, logsnr_t, **cond), logsnr_t)

    def _dtype(self) -> torch.dtype:
        for p in self.net.parameters():
            return p.dtype
        return torch.get_default_dtype()
