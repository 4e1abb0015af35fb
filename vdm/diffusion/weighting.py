"""Loss weightings over noise levels (paper silent: it trains the plain MSE of the prediction; options for the
pilots that choose a CPU-scale default, each named in ``diffusion.loss_weighting``).

Every weighting is a factor per example [B] on the MSE in the prediction's space. Writing each in x-space makes
them comparable: with SNR = exp(λ), ‖ε̂ − ε‖² = SNR ‖x̂ − x‖² and ‖v̂ − v‖² = (1 + SNR) ‖x̂ − x‖², so the
prediction's MSE is ``space_factor`` × the x-space MSE (ε: SNR, v: 1 + SNR, x: 1).

* ``none``: 1 (the paper's loss; its implied x-space weight is the space factor).
* ``min_snr`` (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy"): x-space weight
  min(SNR, γ), γ = ``diffusion.min_snr_gamma`` (their default 5); as a factor on the prediction's MSE:
  min(SNR, γ) / space_factor (ε: min(SNR, γ)/SNR; v: min(SNR, γ)/(SNR + 1)).
* ``sigmoid`` (Kingma & Gao 2023, "Understanding Diffusion Objectives"): the ε-space weighting w(λ) = sigmoid(b − λ)
  over λ itself, b = ``diffusion.sigmoid_bias``. With t ~ U[0, 1] a draw lands at λ with density 1/|dλ/dt|, so
  the factor on the ε-MSE is w(λ) |dλ/dt| / Z, normalised by Z = ∫ w(λ) dλ over [λ_min, λ_max] = softplus(b − λ_min)
  − softplus(b − λ_max) (the factor then averages 1 over t); on the prediction's MSE × SNR / space_factor.
  The factor grows like |dλ/dt| at the noisy end, so with ε-prediction its variance is large; Kingma & Gao use it
  with v-style targets and importance-sampled λ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vdm.diffusion.schedule import CosineSchedule


def space_factor(prediction: str, logsnr: Tensor) -> Tensor:
    """‖target error‖² / ‖x̂ − x‖² of the prediction's space at λ = ``logsnr`` [B]."""
    snr = torch.exp(logsnr.double())
    if prediction == "eps":
        return snr
    if prediction == "v":
        return 1.0 + snr
    if prediction == "x":
        return torch.ones_like(snr)
    raise ValueError(f"unknown prediction {prediction!r}")


def sigmoid_normaliser(bias: float, logsnr_min: float, logsnr_max: float) -> float:
    """Z = ∫_{λ_min}^{λ_max} sigmoid(b − λ) dλ = softplus(b − λ_min) − softplus(b − λ_max)."""
    def softplus(x: float) -> float:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    return softplus(bias - logsnr_min) - softplus(bias - logsnr_max)


def loss_weight(kind: str, prediction: str, t: Tensor, schedule: CosineSchedule, *, gamma: float = 5.0,
                bias: float = 0.0) -> Tensor:
    """The factor [B] on each example's MSE in the ``prediction``'s space at times ``t`` [B] (module docstring)."""
    logsnr = schedule(t).double()  # [B]
    if kind == "none":
        return torch.ones_like(t)
    if kind == "min_snr":
        w = torch.clamp(torch.exp(logsnr), max=gamma) / space_factor(prediction, logsnr)
    elif kind == "sigmoid":
        z = sigmoid_normaliser(bias, schedule.logsnr_min, schedule.logsnr_max)
        w_eps = torch.sigmoid(bias - logsnr) * schedule.dlogsnr_dt(t).double().abs() / z
        w = w_eps * torch.exp(logsnr) / space_factor(prediction, logsnr)
    else:
        raise ValueError(f"unknown loss weighting {kind!r}")
    return w.to(t.dtype)
