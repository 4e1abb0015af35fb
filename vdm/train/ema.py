"""Exponential moving average of the weights (paper Appendix A: EMA decay 0.9999, BAIR 0.999).

The EMA is a float32 copy of every parameter and buffer, updated after each optimizer step with
ema ← decay · ema + (1 − decay) · θ; the export (and so every sample) uses these weights. The decay is constant
(the paper), warmed up, or EDM2's power-function profile (``train.ema_std``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def power_exponent(std: float) -> float:
    """γ of the power-function EMA with relative standard deviation σ_rel = ``std`` (EDM2, Karras et al. 2024:
    σ_rel = sqrt(γ + 1) / ((γ + 2) sqrt(γ + 3))): the largest real root of γ³ + 7γ² + (16 − σ⁻²)γ + 12 − σ⁻²."""
    import numpy as np

    if not 0.0 < std < 12 ** -0.5:  # γ = 0 gives σ_rel = 1/sqrt(12), the widest profile
        raise ValueError(f"EMA std (σ_rel) must be in (0, {12 ** -0.5:.4f}), got {std}")
    x = std ** -2
    return float(np.roots([1.0, 7.0, 16.0 - x, 12.0 - x]).real.max())


def power_std(gamma: float) -> float:
    """σ_rel of the power-function EMA of exponent γ (the inverse of :func:`power_exponent`)."""
    return (gamma + 1) ** 0.5 / ((gamma + 2) * (gamma + 3) ** 0.5)


class EMA:
    """EMA of ``model``'s state. ``warmup``: decay_k = min(decay, (1 + k) / (10 + k)) at update k. ``std`` > 0: the
    power-function profile of EDM2 instead (Karras et al. 2024), decay_k = (1 − 1/k)^(γ + 1) at update k = 1, 2, ...
    with γ = power_exponent(std): the average of the weights θ_τ of every step so far with weights ≈ ∝ τ^γ, so
    its length grows with training (σ_rel is its width relative to the steps so far; ``decay``/``warmup``
    unused)."""

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = False, std: float = 0.0):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.std = float(std)
        self.gamma = power_exponent(self.std) if self.std > 0 else None
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
            for k, v in model.state_dict().items()
        }

    def current_decay(self) -> float:
        if self.gamma is not None:
            k = self.num_updates + 1  # this update's 1-based index: the first one copies the weights
            return (1.0 - 1.0 / k) ** (self.gamma + 1.0)
        if not self.warmup:
            return self.decay
        k = self.num_updates
        return min(self.decay, (1.0 + k) / (10.0 + k))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        floats_ema, floats_new = [], []
        for k, v in model.state_dict().items():
            e = self.shadow[k]
            if e.is_floating_point():
                floats_ema.append(e)
                floats_new.append(v.detach().float())
            else:
                e.copy_(v)
        if floats_ema:
            torch._foreach_lerp_(floats_ema, floats_new, 1.0 - decay)  # ema += (1 − decay)(θ − ema)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "std": self.std, "num_updates": self.num_updates,
                "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        if float(state.get("std", 0.0)) != self.std:
            raise ValueError(f"EMA state has profile std {state.get('std', 0.0)}, the config {self.std} "
                             "(train.ema_std): resuming would mix two averages")
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state does not match the model: keys {sorted(missing)[:5]} differ")
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
        self.num_updates = int(state["num_updates"])

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
