"""The C3D network of TGANv2's UCF-101 evaluation: FID and IS of paper Table 1.

The paper (Table 1) reports FID and IS on UCF-101 computed with a C3D network, the protocol of TGANv2
(Saito et al. 2020, ``pfnet-research/tgan2``: ``tgan2/models/c3d/c3d_ucf101.py``, ``C3DVersion1UCF101``).
That network is the C3D of Tran et al. fine-tuned on UCF-101 (101 classes), converted from Caffe to a
Chainer ``.npz`` that TGANv2 publishes with its mean clip:

- ``conv3d_deepnetA_ucf.npz`` (:data:`C3D_URL`): the weights, keys ``conv1a/W`` ... ``fc8/b``;
- ``mean2.npz`` (:data:`MEAN_URL`): key ``mean``, the training-set mean clip [3, 16, 128, 171] (BGR, 0..255).

No package ships them, so they are user-supplied files (``evaluate.c3d_weights``, ``evaluate.c3d_mean``),
each pinned by the sha256 the user records for the published file (``evaluate.c3d_weights_sha256``,
``evaluate.c3d_mean_sha256``; this project cannot state those hashes itself) and read with
``numpy.load(allow_pickle=False)`` -- plain arrays, no unpickling -- and checked key by key against the
architecture's shapes.

Architecture (as ``C3DVersion1UCF101``): conv1a 64 → pool (1, 2, 2) → conv2a 128 → pool 2 → conv3a/b 256
→ pool 2 → conv4a/b 512 → pool 2 → conv5a/b 512 → pool 2 → fc6 4096 → fc7 4096 → fc8 101; 3x3x3
convolutions (padding 1) with ReLU; Chainer's max pooling covers the whole input (``cover_all``), which is
PyTorch's ``ceil_mode``: 112 → 56 → 28 → 14 → 7 → 4, so 16 frames end as 512 x 1 x 4 x 4 = fc6's 8192
inputs. Dropout is off at evaluation.

Preprocessing (TGANv2: clips in [-1, 1] from ``(x - 128) / 128``; the network's ``pre`` layer maps RGB to
BGR times 128, resizes each frame to 112x112 with Chainer's bilinear ``resize_images`` (align_corners) and
adds ``128 - mean[:, :, 8:120, 8:120]``): for uint8 frames that is ``resize(BGR(x)) - mean crop``.
Features: fc7 after its ReLU (FID, TGANv2 ``get_feature``); class probabilities: softmax of fc8 (IS).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdm.metrics.config import C3D_FILE, MEAN_FILE
from vdm.metrics.videos import FVDError

C3D_URL = "https://github.com/rezoo/tgan2/releases/download/v1.0/conv3d_deepnetA_ucf.npz"
MEAN_URL = "https://github.com/rezoo/tgan2/releases/download/v1.0/mean2.npz"
FRAMES = 16  # fc6 takes 512 x 1 x 4 x 4: exactly 16 frames
INPUT_SIZE = 112
MEAN_SHAPE = (3, 16, 128, 171)  # mean2.npz "mean": BGR, frames, rows, columns
MEAN_CROP = 8  # TGANv2 uses mean[:, :, 8:120, 8:120]
FEATURE_DIM = 4096
NUM_CLASSES = 101
DETECTOR_ID = "C3D UCF-101 (TGANv2 C3DVersion1UCF101, conv3d_deepnetA_ucf.npz) fc7 / softmax(fc8)"
PREPROCESS_ID = "BGR, bilinear(align_corners=True)->112x112, minus mean2.npz[:, :, 8:120, 8:120]"

# (name, weight shape): conv weights [out, in, kT, kH, kW] and linear weights [out, in] in the layouts that
# Chainer's ConvolutionND / Linear save, which are PyTorch's Conv3d / Linear layouts
LAYERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("conv1a", (64, 3, 3, 3, 3)), ("conv2a", (128, 64, 3, 3, 3)),
    ("conv3a", (256, 128, 3, 3, 3)), ("conv3b", (256, 256, 3, 3, 3)),
    ("conv4a", (512, 256, 3, 3, 3)), ("conv4b", (512, 512, 3, 3, 3)),
    ("conv5a", (512, 512, 3, 3, 3)), ("conv5b", (512, 512, 3, 3, 3)),
    ("fc6", (4096, 512 * 4 * 4)), ("fc7", (4096, 4096)), ("fc8", (NUM_CLASSES, 4096)),
)


class C3DWeightsError(RuntimeError):
    """A C3D weights or mean file is missing, is not the pinned file, or does not fit the architecture."""


class C3DUCF101(nn.Module):
    """TGANv2's C3D (see module docstring). ``forward`` takes preprocessed clips [N, 3, 16, 112, 112] and
    returns (fc7 features [N, 4096], fc8 logits [N, 101])."""

    def __init__(self) -> None:
        super().__init__()
        for name, shape in LAYERS:
            if name.startswith("conv"):
                setattr(self, name, nn.Conv3d(shape[1], shape[0], 3, padding=1))
            else:
                setattr(self, name, nn.Linear(shape[1], shape[0]))
        self.pool1 = nn.MaxPool3d((1, 2, 2), ceil_mode=True)  # Chainer cover_all=True
        self.pool = nn.MaxPool3d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[1:]) != (3, FRAMES, INPUT_SIZE, INPUT_SIZE):
            raise FVDError(f"C3D takes [N, 3, {FRAMES}, {INPUT_SIZE}, {INPUT_SIZE}] clips, got {tuple(x.shape)}")
        h = self.pool1(F.relu(self.conv1a(x)))  # [N, 64, 16, 56, 56]
        h = self.pool(F.relu(self.conv2a(h)))  # [N, 128, 8, 28, 28]
        h = self.pool(F.relu(self.conv3b(F.relu(self.conv3a(h)))))  # [N, 256, 4, 14, 14]
        h = self.pool(F.relu(self.conv4b(F.relu(self.conv4a(h)))))  # [N, 512, 2, 7, 7]
        h = self.pool(F.relu(self.conv5b(F.relu(self.conv5a(h)))))  # [N, 512, 1, 4, 4]
        h = F.relu(self.fc6(h.flatten(1)))  # [N, 4096] (C-order flatten, as Chainer's Linear)
        fc7 = F.relu(self.fc7(h))  # [N, 4096]
        return fc7, self.fc8(fc7)  # [N, 4096], [N, 101]


def _read_pinned_npz(path: str | Path, sha256: str, what: str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise C3DWeightsError(f"{path}: no such file ({what})")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not sha256:
        raise C3DWeightsError(f"{path}: no sha256 pinned for {what}; record the published file's hash "
                              f"(sha256sum {path.name}) in the config")
    if digest != sha256.lower():
        raise C3DWeightsError(f"{path}: sha256 {digest} != pinned {sha256}: not the file pinned for {what}")
    import io

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (ValueError, OSError) as e:  # not an npz, or an object array (would need unpickling)
        raise C3DWeightsError(f"{path}: not a plain-array .npz ({e})") from None


def load_c3d(path: str | Path, sha256: str, device: str | torch.device = "cpu") -> C3DUCF101:
    """C3DUCF101 with the weights of TGANv2's ``conv3d_deepnetA_ucf.npz`` at ``path`` (sha256 must equal
    ``sha256``; every key and shape must fit :data:`LAYERS`, no key left over)."""
    arrays = _read_pinned_npz(path, sha256, f"TGANv2's {C3D_FILE}")
    want = {f"{name}/{p}": (shape if p == "W" else shape[:1]) for name, shape in LAYERS for p in ("W", "b")}
    missing = sorted(set(want) - set(arrays))
    unexpected = sorted(set(arrays) - set(want))
    if missing or unexpected:
        raise C3DWeightsError(f"{path}: keys do not fit TGANv2's C3D (missing {missing[:5]}, unexpected "
                              f"{unexpected[:5]})")
    net = C3DUCF101()
    state = {}
    for key, shape in want.items():
        a = arrays[key]
        if tuple(a.shape) != tuple(shape):
            raise C3DWeightsError(f"{path}: {key} has shape {tuple(a.shape)}, TGANv2's C3D needs {tuple(shape)}")
        name, p = key.split("/")
        state[f"{name}.{'weight' if p == 'W' else 'bias'}"] = torch.from_numpy(a.astype(np.float32))
    net.load_state_dict(state)
    return net.to(device).eval()


def load_mean(path: str | Path, sha256: str) -> np.ndarray:
    """float32 [3, 16, 112, 112]: TGANv2's mean clip (``mean2.npz``, BGR) cropped as its network does."""
    arrays = _read_pinned_npz(path, sha256, f"TGANv2's {MEAN_FILE}")
    if "mean" not in arrays:
        raise C3DWeightsError(f"{path}: no key 'mean' (keys {sorted(arrays)[:5]}): not TGANv2's {MEAN_FILE}")
    mean = arrays["mean"].astype(np.float32)
    if mean.shape == (1, *MEAN_SHAPE):
        mean = mean[0]
    if mean.shape != MEAN_SHAPE:
        raise C3DWeightsError(f"{path}: 'mean' has shape {mean.shape}, TGANv2's {MEAN_FILE} is {MEAN_SHAPE}")
    c = MEAN_CROP
    return np.ascontiguousarray(mean[:, :, c:c + INPUT_SIZE, c:c + INPUT_SIZE])


def preprocess_clips(videos: np.ndarray | torch.Tensor, mean: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 videos [N, 16, H, W, C] (C = 1 or 3, RGB) → float32 [N, 3, 16, 112, 112]: BGR, each frame resized
    bilinearly (align_corners=True) to 112x112, minus the cropped mean clip [3, 16, 112, 112]."""
    v = torch.as_tensor(videos)
    if v.ndim != 5 or v.dtype != torch.uint8 or v.shape[-1] not in (1, 3):
        raise FVDError(f"C3D: expected uint8 videos [N, T, H, W, C] with C = 1 or 3, got {v.dtype} {tuple(v.shape)}")
    if v.shape[1] != FRAMES:
        raise FVDError(f"C3D (paper Table 1, TGANv2 protocol) takes {FRAMES}-frame clips, got {v.shape[1]} frames")
    n, t, h, w, c = v.shape
    x = v.float().permute(0, 1, 4, 2, 3).reshape(n * t, c, h, w)  # [N*16, C, H, W]
    if c == 1:
        x = x.expand(-1, 3, -1, -1)  # grayscale → RGB
    x = x.flip(1)  # RGB → BGR
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=True)
    x = x.reshape(n, t, 3, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4)  # [N, 3, 16, 112, 112]
    return (x - torch.as_tensor(mean, dtype=torch.float32)).contiguous()


def c3d_outputs(videos: np.ndarray, net: nn.Module, mean: np.ndarray, *, batch_size: int = 8,
                device: str | torch.device = "cpu", progress: bool = False,
                desc: str = "C3D") -> tuple[np.ndarray, np.ndarray]:
    """(fc7 features float32 [N, 4096], class probabilities float32 [N, 101]) of uint8 videos [N, 16, H, W, C]."""
    from tqdm.auto import tqdm

    feats, probs = [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(videos), batch_size), desc=desc, unit="batch", disable=not progress):
            x = preprocess_clips(videos[start:start + batch_size], mean).to(device)
            fc7, logits = net(x)
            feats.append(fc7.float().cpu().numpy())
            probs.append(torch.softmax(logits.double(), dim=1).float().cpu().numpy())
    if not feats:
        return np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
    return np.concatenate(feats), np.concatenate(probs)
