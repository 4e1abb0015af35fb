"""A Moving MNIST digit classifier: the detector of the digit metrics (class accuracy, identity, Fréchet
distance in its features), which fit 16-64 px grey digits where I3D and Inception (natural images) do not.

A small CNN reads one grey frame at ``data.resolution`` and says which of the 10 digits it shows. It is
trained on frames made as Moving MNIST frames are -- one digit of the TRAIN digit set at a uniform random
position of the ``data.mnist_canvas`` canvas (:func:`vdm.data.moving_mnist.generate_video`, one frame),
resized by the data pipeline's own resize (:func:`vdm.data.common.resize_short_side_crop`) -- and its
held-out accuracy is measured on frames of the TEST digit set. Training is deterministic (one thread, every
random stream a purpose of :mod:`vdm.seeds`): the same settings give byte-identical weights.

The weights file (``torch.save``, loaded with ``weights_only=True``) holds ``state_dict`` and ``record``
(JSON: architecture, resolution, canvas, training settings, held-out accuracy, ``weights_sha256`` = sha256
of the state dict's tensors in key order); ``<file>.json`` beside it is that record plus the file's sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vdm.data.common import resize_short_side_crop
from vdm.data.moving_mnist import generate_video
from vdm.seeds import derive_seed, numpy_rng
from vdm.utils.io import sha256_file, torch_save, write_json

FORMAT = 1  # bump when the file layout, the architecture or the frame pipeline changes
NUM_DIGITS = 10
DETECTOR_ID = "Moving MNIST digit classifier (vdm DigitNet, `vdm digits`)"
PREPROCESS_ID = "grey (BT.601 luma if RGB), x / 255, at the data's resolution (no resize)"


class DigitClassifierError(RuntimeError):
    """A digit-classifier weights file that is missing, malformed or not the one its record describes."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the classifier depends on: the frames' geometry (from the data config) and its training."""
    resolution: int = 32  # frame side the classifier reads (data.resolution)
    canvas: int = 64  # Moving MNIST canvas the digit is placed on before the resize (data.mnist_canvas)
    test_fraction: float = 0.2  # share of digit images held out (data.mnist_test_fraction)
    widths: tuple[int, int, int] = (16, 32, 64)  # channels of the three 3x3 convolutions
    steps: int = 1200  # Adam steps
    batch_size: int = 64  # frames per step
    lr: float = 3e-3  # peak learning rate (cosine decay to 0)
    noise: float = 0.1  # augmentation: Gaussian pixel noise of std U(0, noise) (samples are noisy)
    num_test: int = 2000  # held-out frames (test digits)
    seed: int = 0  # root of the classifier's streams (not the experiment's: one classifier per geometry)


def settings_of(data: Any, **training: Any) -> Settings:
    """The settings for a DataConfig ``data`` (its resolution, canvas and digit split), ``training`` overrides."""
    return Settings(resolution=data.resolution, canvas=data.mnist_canvas, test_fraction=data.mnist_test_fraction,
                    **training)


class DigitNet(nn.Module):
    """Three 3x3 conv-BN-ReLU blocks (2x2 max pools after the first two), global average pool (the
    features), linear (10 logits); BN because a 7-14 px digit on a mostly black frame trains slowly without."""

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        a, b, c = widths
        self.body = nn.Sequential(
            nn.Conv2d(1, a, 3, padding=1), nn.BatchNorm2d(a), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(b, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
        )
        self.head = nn.Linear(c, NUM_DIGITS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 1, H, W] in [0, 1] -> (logits [B, 10], features [B, widths[2]])."""
        feats = self.body(x).mean(dim=(2, 3))  # [B, C]
        return self.head(feats), feats


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------
def make_frames(s: Settings, split: str, root: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [n, R, R], digits int64 [n]): frames ``start .. start + n - 1`` of ``split``'s digits, each one
    digit at a random canvas position (a one-frame Moving MNIST video of stream ``root``), then resized."""
    frames = np.empty((n, s.canvas, s.canvas, 1), np.uint8)  # [n, canvas, canvas, 1]
    labels = np.empty(n, np.int64)
    for i in range(n):
        video, digits = generate_video(root, split, start + i, num_digits=1, canvas=s.canvas, length=1,
                                       test_fraction=s.test_fraction)
        frames[i], labels[i] = video[0], digits[0]
    return resize_short_side_crop(frames, s.resolution)[..., 0], labels  # [n, R, R]


def grey_frames(videos: np.ndarray) -> torch.Tensor:
    """uint8 videos [N, T, H, W, C] (C = 1, or 3 by BT.601 luma) -> float [N * T, 1, H, W] in [0, 1]."""
    x = torch.as_tensor(videos).float()  # [N, T, H, W, C]
    if x.shape[-1] == 3:
        x = x @ torch.tensor([0.299, 0.587, 0.114])[:, None]  # [N, T, H, W, 1]
    return (x[..., 0] / 255.0).reshape(-1, 1, *x.shape[2:4])


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 of the state dict's tensors (name, then bytes) in key order."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def accuracy(net: DigitNet, frames: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Share of frames uint8 [n, R, R] whose argmax logit is their label."""
    right = 0
    with torch.inference_mode():
        for i in range(0, len(frames), batch):
            x = torch.as_tensor(frames[i:i + batch]).float()[:, None] / 255.0  # [b, 1, R, R]
            right += int((net(x)[0].argmax(1).numpy() == labels[i:i + batch]).sum())
    return right / len(frames)


def _augment(x: torch.Tensor, bound: float, rng: np.random.Generator) -> torch.Tensor:
    """Pixel noise of std U(0, bound) per frame, as sampled videos are noisier than real ones."""
    std = torch.as_tensor(rng.uniform(0.0, bound, (len(x), 1, 1, 1)), dtype=torch.float32)  # [B, 1, 1, 1]
    noise = torch.as_tensor(rng.standard_normal(x.shape), dtype=torch.float32)  # [B, 1, R, R]
    return (x + std * noise).clamp(0.0, 1.0)


def train(s: Settings, log: Any = None) -> tuple[DigitNet, dict[str, Any]]:
    """(the trained network, its record). Single-threaded while it runs: byte-identical for equal settings."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        torch.manual_seed(derive_seed(s.seed, "digits.init"))
        net = DigitNet(s.widths)
        opt = torch.optim.Adam(net.parameters(), lr=s.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + np.cos(np.pi * k / s.steps)))
        root = derive_seed(s.seed, "digits.train")
        for step in range(s.steps):
            frames, labels = make_frames(s, "train", root, step * s.batch_size, s.batch_size)
            x = torch.as_tensor(frames).float()[:, None] / 255.0  # [B, 1, R, R]
            x = _augment(x, s.noise, numpy_rng(s.seed, "digits.noise", step))
            loss = nn.functional.cross_entropy(net(x)[0], torch.as_tensor(labels))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log and (step + 1) % max(1, s.steps // 10) == 0:
                log(f"step {step + 1}/{s.steps}: loss {loss.item():.4f}")
        net.eval()
        test_frames, test_labels = make_frames(s, "test", derive_seed(s.seed, "digits.test"), 0, s.num_test)
        acc = accuracy(net, test_frames, test_labels)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    state = net.state_dict()
    record = {"format": FORMAT, "architecture": {"name": "DigitNet", "widths": list(s.widths)},
              "settings": dataclasses.asdict(s), "heldout_accuracy": acc, "heldout_frames": s.num_test,
              "parameters": sum(p.numel() for p in net.parameters()), "weights_sha256": weights_sha256(state)}
    return net, {**record, "train_seconds": round(seconds, 1)}


def save(path: str | Path, net: DigitNet, record: dict[str, Any]) -> None:
    """The weights file (atomic, reproducible: the training time is kept only in the JSON beside it) and
    ``<path>.json`` (its record with the file's sha256)."""
    inner = {k: v for k, v in record.items() if k != "train_seconds"}
    torch_save({"state_dict": net.state_dict(), "record": json.dumps(inner, sort_keys=True)}, path)
    write_json(record_path(path), {**record, "file_sha256": sha256_file(path)})


def record_path(path: str | Path) -> Path:
    return Path(f"{path}.json") if not str(path).endswith(".pt") else Path(str(path)[:-3] + ".json")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _existing(path: str | Path) -> Path:
    if not str(path):
        raise DigitClassifierError("evaluate.digit_classifier is empty: no digit classifier to load")
    if not Path(path).is_file():
        raise DigitClassifierError(f"digit classifier not found: {path} (evaluate.digit_classifier; "
                                   "make it with `vdm digits`)")
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of the weights file (pinned in the detector's info, so features of another file are refused)."""
    return sha256_file(_existing(path))


def load(path: str | Path, resolution: int | None = None, device: str = "cpu") -> tuple[DigitNet, dict[str, Any]]:
    """(network in eval mode on ``device``, record) of a weights file, checked: it exists, is a weights-only
    file of this format, its tensors are those its record hashes, and (given) it reads ``resolution`` px."""
    path = _existing(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        state, record = obj["state_dict"], json.loads(obj["record"])
    except Exception as e:  # noqa: BLE001 -- any unreadable file is the same error for the user
        raise DigitClassifierError(f"{path}: not a digit-classifier weights file ({type(e).__name__}: {e})") from None
    if record.get("format") != FORMAT:
        raise DigitClassifierError(f"{path}: format {record.get('format')!r}, this code reads {FORMAT}; remake it")
    if weights_sha256(state) != record.get("weights_sha256"):
        raise DigitClassifierError(f"{path}: its weights' sha256 {weights_sha256(state)} is not the one its "
                                   f"record states ({record.get('weights_sha256')}); the file was altered")
    if resolution is not None and record["settings"]["resolution"] != resolution:
        raise DigitClassifierError(f"{path}: trained on {record['settings']['resolution']} px frames, the data "
                                   f"are {resolution} px (data.resolution)")
    net = DigitNet(tuple(record["architecture"]["widths"]))
    net.load_state_dict(state)
    return net.eval().to(device), record


def check_resolution(videos: np.ndarray, record: dict[str, Any], path: str | Path) -> None:
    """The videos [b, T, H, W, C] must have the frame side the classifier was trained on."""
    r = record["settings"]["resolution"]
    if tuple(videos.shape[2:4]) != (r, r):
        raise DigitClassifierError(f"{path}: trained on {r}x{r} frames, the videos' are "
                                   f"{videos.shape[2]}x{videos.shape[3]} (data.resolution)")


def video_outputs(videos: np.ndarray, net: DigitNet, device: str) -> dict[str, np.ndarray]:
    """uint8 videos [b, T, H, W, C] -> ``logits`` [b, T, 10] per frame, ``features`` [b, C3]: the penultimate
    layer averaged over the frames (as FID-avg averages Inception's)."""
    b, t = videos.shape[:2]
    logits, feats = net(grey_frames(videos).to(device))  # [b * T, 10], [b * T, C3]
    return {"logits": logits.reshape(b, t, -1).float().cpu().numpy(),
            "features": feats.reshape(b, t, -1).mean(1).float().cpu().numpy()}
