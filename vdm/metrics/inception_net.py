"""The FID Inception-v3 (TF ``inception-2015-12-05``) as a PyTorch module, with its 1008-way logits layer.

The architecture of pytorch-fid's ``FIDInceptionV3`` (torchvision's Inception-v3 blocks with the TF graph's
quirks: average pools that exclude padding, a max pool in the last block's pool branch, 1008 classes), built
here so that a weights file can be read into it without running any of its code:

- :func:`load_pytorch_fid_weights`: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (user-supplied:
  no package ships it), a plain state dict read with ``torch.load(weights_only=True)`` after its sha256 is
  checked against the prefix pinned in its published name (``6726825d``, torch.hub's convention);
- :func:`load_torchscript_pool3`: the pool3 weights of the TorchScript the frame FID uses
  (``vdm.metrics.inception``), name by name — the test that this module's pool3 features equal the
  TorchScript's checks the architecture.

The logits give the Inception Score (IS-avg / IS-first); the pool3 features equal those of
:mod:`vdm.metrics.inception`. Input: [B, 3, 299, 299] in [-1, 1) (``(x - 128) / 128``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vdm.metrics.config import PYTORCH_FID_FILE  # noqa: F401  (named with the config: torch-free)

PYTORCH_FID_SHA256_PREFIX = "6726825d"  # the hash in the published file name (torch.hub: sha256 prefix)
NUM_CLASSES = 1008


class WeightsFileError(RuntimeError):
    """A user-supplied weights file is missing, not the pinned one, or does not fit the architecture."""


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    """TF's 3x3 SAME average pool: padding not counted."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):  # Mixed_5b/c/d
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):  # Mixed_6a
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):  # Mixed_6b..e
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for k in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{k}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):  # Mixed_7a
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):  # Mixed_7b (average pool), Mixed_7c (max pool: the TF graph's quirk)
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a), self.branch3x3dbl_3a(b),
                          self.branch3x3dbl_3b(b), self.branch_pool(pool)], 1)


class FIDInceptionV3(nn.Module):
    """[B, 3, 299, 299] in [-1, 1) → (pool3 [B, 2048], logits [B, 1008]); :meth:`logits_unbiased` gives the
    logits of the Inception score as OpenAI's improved-GAN code computes them: ``pool3 @ W``, without the fc
    layer's bias (torch-fidelity's ``logits_unbiased``)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        pool3 = F.adaptive_avg_pool2d(x, 1).flatten(1)  # [B, 2048]
        return pool3, self.fc(pool3)  # logits [B, 1008]

    def logits_unbiased(self, pool3: torch.Tensor) -> torch.Tensor:
        """pool3 [B, 2048] @ W^T → [B, 1008]: the IS logits (no bias)."""
        return pool3 @ self.fc.weight.T


# The TorchScript's (TF graph's) module names → ours, block by block (vdm.metrics.inception's default_1.pt).
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
         "conv_4": "Conv2d_4a_3x3"}
_BLOCKS = {
    "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a", "mixed_4": "Mixed_6b",
    "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e", "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b",
    "mixed_10": "Mixed_7c",
}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2", "tower_1.conv": "branch3x3dbl_1",
      "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.{'conv' if k == 0 else f'conv_{k}'}": f"branch7x7dbl_{k + 1}" for k in range(5)},
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.{'conv' if k == 0 else f'conv_{k}'}": f"branch7x7x3_{k + 1}" for k in range(4)}}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
      "tower_2_conv": "branch_pool"}
_BLOCK_MAPS = {"Mixed_5b": _A, "Mixed_5c": _A, "Mixed_5d": _A, "Mixed_6a": _B, "Mixed_6b": _C, "Mixed_6c": _C,
               "Mixed_6d": _C, "Mixed_6e": _C, "Mixed_7a": _D, "Mixed_7b": _E, "Mixed_7c": _E}


def torchscript_name_map() -> dict[str, str]:
    """TorchScript conv-unit prefix (``net.layers.mixed.tower.conv``) → ours (``Mixed_5b.branch5x5_1``)."""
    out = {f"net.layers.{tf}": ours for tf, ours in _STEM.items()}
    for tf_block, block in _BLOCKS.items():
        for tf, ours in _BLOCK_MAPS[block].items():
            out[f"net.layers.{tf_block}.{tf}"] = f"{block}.{ours}"
    return out


def load_torchscript_pool3(net: FIDInceptionV3, script: torch.nn.Module) -> None:
    """Copy every conv unit of the pool3 TorchScript into ``net`` (conv weight; BN mean, var, beta; gamma = 1:
    the TF graph's batch norms have no scale). The logits layer is left as it is."""
    sd = script.state_dict()
    state = net.state_dict()
    used = set()
    for tf, ours in torchscript_name_map().items():
        state[f"{ours}.conv.weight"] = sd[f"{tf}.weight"]
        state[f"{ours}.bn.running_mean"] = sd[f"{tf}.mean"]
        state[f"{ours}.bn.running_var"] = sd[f"{tf}.var"]
        state[f"{ours}.bn.bias"] = sd[f"{tf}.beta"]
        state[f"{ours}.bn.weight"] = torch.ones_like(sd[f"{tf}.beta"])
        used |= {f"{tf}.{k}" for k in ("weight", "mean", "var", "beta")}
    left = sorted(set(sd) - used)
    if left:
        raise WeightsFileError(f"TorchScript parameters without a place in FIDInceptionV3: {left[:5]}")
    net.load_state_dict(state)


def load_pytorch_fid_weights(path: str | Path, device: str | torch.device = "cpu", *,
                             sha256_prefix: str | None = None) -> FIDInceptionV3:
    """FIDInceptionV3 with pytorch-fid's published weights (pool3 and the 1008-way logits); the file's sha256
    must start with ``sha256_prefix`` (default :data:`PYTORCH_FID_SHA256_PREFIX`)."""
    sha256_prefix = PYTORCH_FID_SHA256_PREFIX if sha256_prefix is None else sha256_prefix
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: no such file (IS needs pytorch-fid's {PYTORCH_FID_FILE})")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(sha256_prefix):
        raise WeightsFileError(f"{path}: sha256 {digest} does not start with {sha256_prefix}: not "
                               f"pytorch-fid's {PYTORCH_FID_FILE}")
    import io

    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    net = FIDInceptionV3()
    if not isinstance(state, dict):
        raise WeightsFileError(f"{path}: not a state dict")
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        raise WeightsFileError(f"{path}: does not fit FIDInceptionV3 ({str(e).splitlines()[-1].strip()})") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsFileError(f"{path}: does not fit FIDInceptionV3 (missing {missing[:5]}, unexpected "
                               f"{unexpected[:5]})")
    return net.to(device).eval()
