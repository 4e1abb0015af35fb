"""Exponential moving average of the weights (paper Appendix A: EMA decay 0.9999, BAIR 0.999).

The EMA is a float32 copy of every parameter and buffer, updated after each optimizer step with
ema ← decay · ema + (1 − decay) · θ; the export (and so every sample) uses these weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """EMA of ``model``'s state. ``warmup``: decay_k = min(decay, (1 + k) / (10 + k)) at update k."""

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
            for k, v in model.state_dict().items()
        }

    def current_decay(self) -> float:
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
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state does not match the model: keys {sorted(missing)[:5]} differ")
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
        self.num_updates = int(state["num_updates"])

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
