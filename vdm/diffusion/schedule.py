"""Log-SNR noise schedules (paper §1; cosine schedule of Nichol & Dhariwal in log-SNR form).

λ_t = log(α_t² / σ_t²) decreases with t; variance preserving: α_t² = sigmoid(λ_t), σ_t² = sigmoid(−λ_t).
All functions work on tensors of any shape and any rank (images [B,C,H,W], videos [B,C,T,H,W]).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vdm.diffusion.config import DiffusionConfig


def append_dims(x: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dims so that ``x`` broadcasts against a tensor of rank ``ndim``."""
    missing = ndim - x.ndim
    if missing < 0:
        raise ValueError(f"input has {x.ndim} dims but target has {ndim}")
    return x.reshape(*x.shape, *([1] * missing))


def _cosine_ab(logsnr_min: float, logsnr_max: float) -> tuple[float, float]:
    b = math.atan(math.exp(-0.5 * logsnr_max))
    a = math.atan(math.exp(-0.5 * logsnr_min)) - b
    return a, b


def logsnr_cosine(t: Tensor, logsnr_min: float = -20.0, logsnr_max: float = 20.0) -> Tensor:
    """λ(t) = −2 log tan(a t + b), with λ(0) = logsnr_max and λ(1) = logsnr_min."""
    a, b = _cosine_ab(logsnr_min, logsnr_max)
    t = torch.as_tensor(t)
    lam = -2.0 * torch.log(torch.tan(a * t + b))
    return lam.clamp(logsnr_min, logsnr_max)


def t_from_logsnr_cosine(logsnr: Tensor, logsnr_min: float = -20.0, logsnr_max: float = 20.0) -> Tensor:
    """Inverse of :func:`logsnr_cosine`."""
    a, b = _cosine_ab(logsnr_min, logsnr_max)
    return (torch.atan(torch.exp(-0.5 * torch.as_tensor(logsnr))) - b) / a


def alpha_sigma(logsnr: Tensor) -> tuple[Tensor, Tensor]:
    """(α, σ) with α² = sigmoid(λ), σ² = sigmoid(−λ); α² + σ² = 1."""
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


class CosineSchedule:
    """The paper's schedule as an object: ``schedule(t) -> λ_t``."""

    def __init__(self, logsnr_min: float = -20.0, logsnr_max: float = 20.0):
        self.logsnr_min = float(logsnr_min)
        self.logsnr_max = float(logsnr_max)

    def __call__(self, t: Tensor) -> Tensor:
        return logsnr_cosine(t, self.logsnr_min, self.logsnr_max)

    def dlogsnr_dt(self, t: Tensor) -> Tensor:
        """dλ/dt of the unclipped cosine form: −2a / (sin(a t + b) cos(a t + b)) = −4a / sin(2(a t + b))."""
        a, b = _cosine_ab(self.logsnr_min, self.logsnr_max)
        return -4.0 * a / torch.sin(2.0 * (a * torch.as_tensor(t) + b))

    def inverse(self, logsnr: Tensor) -> Tensor:
        return t_from_logsnr_cosine(logsnr, self.logsnr_min, self.logsnr_max)

    @classmethod
    def from_config(cls, cfg: DiffusionConfig) -> "CosineSchedule":
        if cfg.schedule != "cosine":
            raise ValueError(f"unknown schedule {cfg.schedule!r}")
        return cls(cfg.logsnr_min, cfg.logsnr_max)
