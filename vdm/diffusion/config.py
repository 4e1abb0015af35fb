"""Diffusion process settings (paper §1, Appendix A)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from vdm.config_base import ConfigError


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    # Noise schedule: cosine log-SNR λ(t) = −2 log tan(a t + b), clipped to [logsnr_min, logsnr_max].
    schedule: Literal["cosine"] = "cosine"
    logsnr_min: float = -20.0  # λ at t = 1 (nats); paper: −20 for every model
    logsnr_max: float = 20.0  # λ at t = 0 (nats); paper: +20 for every model
    # What the network predicts: "eps" (paper: UCF-101, text) or "v" (paper: BAIR, Kinetics); "x" for completeness.
    prediction: Literal["eps", "v", "x"] = "eps"
    # Training time sampling: "uniform" t ~ U[0,1] per example, or "low_discrepancy" (one uniform
    # offset per batch, stratified over the batch; Kingma et al. 2021). The paper says t ~ U[0,1].
    t_sampling: Literal["uniform", "low_discrepancy"] = "uniform"
    # Weighting of the loss over noise levels (paper silent: "none", the plain MSE of the prediction);
    # "min_snr" (Hang et al. 2023) and "sigmoid" (Kingma & Gao 2023) for the pilots: vdm/diffusion/weighting.py.
    loss_weighting: Literal["none", "min_snr", "sigmoid"] = "none"
    min_snr_gamma: float = 5.0  # γ of "min_snr": the x-space weight min(SNR, γ) (Hang et al.: 5)
    sigmoid_bias: float = 0.0  # b of "sigmoid": w(λ) = sigmoid(b − λ) (UNCONFIRMED default; chosen by pilots)

    def validate(self) -> None:
        if not self.logsnr_min < self.logsnr_max:
            raise ConfigError(f"logsnr_min ({self.logsnr_min}) must be < logsnr_max ({self.logsnr_max})")
        if not self.min_snr_gamma > 0:  # also refuses NaN
            raise ConfigError(f"min_snr_gamma must be > 0, got {self.min_snr_gamma}")
        if not abs(self.sigmoid_bias) < float("inf"):
            raise ConfigError(f"sigmoid_bias must be finite, got {self.sigmoid_bias}")
