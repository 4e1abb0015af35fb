"""Factorized space-time U-Net (paper §2). No diffusion math in this package."""

from vdm.model.config import PAPER_SIZES, SIZES, UNetConfig, named_size
from vdm.model.unet import UNet3D, count_parameters

__all__ = ["PAPER_SIZES", "SIZES", "UNet3D", "UNetConfig", "count_parameters", "named_size"]
