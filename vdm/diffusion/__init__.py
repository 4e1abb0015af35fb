"""Continuous-time diffusion math (paper §1): pure tensor functions for images and videos alike.

The names below are imported on first use (PEP 562), so that ``vdm.diffusion.config`` (read by the
workflow at parse time) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Denoiser": "denoiser", "x_from_output": "denoiser",
    "diffusion_loss": "loss", "sample_t": "loss",
    "eps_from_v": "process", "eps_from_x": "process", "q_sample": "process", "v_from_x": "process",
    "v_from_x_eps": "process", "x_from_eps": "process", "x_from_v": "process",
    "CosineSchedule": "schedule", "alpha_sigma": "schedule", "append_dims": "schedule", "logsnr_cosine": "schedule",
    "t_from_logsnr_cosine": "schedule",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
