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

    def validate(self) -> None:
        if not self.logsnr_min < self.logsnr_max:
            raise ConfigError(f"logsnr_min ({self.logsnr_min}) must be < logsnr_max ({self.logsnr_max})")
