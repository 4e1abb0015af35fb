"""Factorized space-time U-Net (paper §2). No diffusion math in this package.

``UNet3D`` and ``count_parameters`` are imported on first use (PEP 562): the configs stay torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

from vdm.model.config import PAPER_SIZES, SIZES, UNetConfig, named_size

__all__ = ["PAPER_SIZES", "SIZES", "UNet3D", "UNetConfig", "count_parameters", "named_size"]


def __getattr__(name: str) -> Any:
    if name in ("UNet3D", "count_parameters"):
        return getattr(importlib.import_module(f"{__name__}.unet"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
