"""Import ``video-diffusion-pytorch`` (lucidrains) on a CPU-only torch, for the U-Net benchmark only.

``video_diffusion_pytorch`` 0.7.0 imports ``torchvision`` at module level (``transforms`` and
``utils``) but uses it only in its GIF/data-set helpers and its ``Trainer``; the ``Unet3D`` network
does not touch it. There is no torchvision wheel for the pinned CPU torch 2.13.0 here, so before the
import we register a stub ``torchvision`` package in ``sys.modules`` whose transform classes can be
constructed (one is built as a default argument at import time) but raise when used. The installed
package is not edited, and the stub lives only in the benchmark subprocess that calls
:func:`import_lucidrains_unet3d`.

Its text conditioning (``use_bert_text_cond``) would fetch BERT through ``torch.hub`` from the
network; the benchmark builds the network unconditioned (``cond_dim=None``,
``use_bert_text_cond=False``), so no model is loaded from any hub.
"""

from __future__ import annotations

import importlib
import sys
import types


class _Unavailable:
    """Stand-in for a torchvision transform: constructible, unusable."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("torchvision is not installed; this benchmark stub only allows importing Unet3D")


_NAMES = {
    "torchvision.transforms": ("ToPILImage", "ToTensor", "Compose", "Resize", "Lambda",
                               "RandomHorizontalFlip", "CenterCrop"),
    "torchvision.utils": ("save_image", "make_grid"),
}


def install_torchvision_stub() -> None:
    """Register the stub in ``sys.modules`` unless a real torchvision imports."""
    try:
        importlib.import_module("torchvision")
        return
    except Exception:  # noqa: BLE001 - any import failure (missing, or built for another torch)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    root = types.ModuleType("torchvision")
    root.__path__ = []  # a package, so ``from torchvision import transforms`` resolves submodules
    sys.modules["torchvision"] = root
    for mod_name, attrs in _NAMES.items():
        mod = types.ModuleType(mod_name)
        for attr in attrs:
            setattr(mod, attr, _Unavailable)
        sys.modules[mod_name] = mod
        setattr(root, mod_name.rsplit(".", 1)[1], mod)


def import_lucidrains_unet3d():
    """Return ``video_diffusion_pytorch.Unet3D`` (installs the torchvision stub first)."""
    install_torchvision_stub()
    from video_diffusion_pytorch import Unet3D

    return Unet3D
