"""The exported model: EMA weights + the configs needed to rebuild the network (training -> sampling).

A plain dict of tensors and builtin types, loadable with ``torch.load(weights_only=True)``; this is
the only training output the workflow declares, and the input of sampling.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vdm.config import from_dict, to_dict
from vdm.diffusion.config import DiffusionConfig
from vdm.model.config import UNetConfig
from vdm.model.unet import UNet3D
from vdm.utils.io import torch_save

EXPORT_FORMAT = "vdm-export-1"


def save_export(
    path: str | Path,
    ema_state: dict[str, torch.Tensor],
    model_cfg: UNetConfig,
    diffusion_cfg: DiffusionConfig,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write the export atomically. ``meta``: builtin types only (step, samples seen, config hash...)."""
    torch_save(
        {
            "format": EXPORT_FORMAT,
            "ema": {k: v.detach().cpu().contiguous() for k, v in ema_state.items()},
            "model_config": to_dict(model_cfg),
            "diffusion_config": to_dict(diffusion_cfg),
            "meta": dict(meta or {}),
        },
        path,
    )


@dataclasses.dataclass
class Export:
    net: nn.Module
    model_cfg: UNetConfig
    diffusion_cfg: DiffusionConfig
    meta: dict[str, Any]


def _read(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The export's dict, loaded without unrestricted unpickling (``weights_only=True``), format checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export not found: {path}")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated or not a torch file
        raise ValueError(f"{path}: not a readable vdm export ({e})") from e
    if not isinstance(blob, dict) or blob.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not a vdm export (expected format {EXPORT_FORMAT!r})")
    return blob


def read_export_meta(path: str | Path) -> dict[str, Any]:
    """The export's ``meta`` (step, samples seen, config hash ...) without building the network."""
    return dict(_read(path).get("meta", {}))


def load_export(path: str | Path, device: str | torch.device = "cpu") -> Export:
    """Rebuild the U-Net with EMA weights from an export (weights_only load)."""
    blob = _read(path, device)
    model_cfg = from_dict(UNetConfig, blob["model_config"], "model_config")
    diffusion_cfg = from_dict(DiffusionConfig, blob["diffusion_config"], "diffusion_config")
    net = UNet3D(model_cfg).to(device)
    net.load_state_dict(blob["ema"])
    net.eval().requires_grad_(False)
    return Export(net, model_cfg, diffusion_cfg, blob.get("meta", {}))
