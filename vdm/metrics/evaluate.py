"""Evaluating a sample set: the library behind ``vdm evaluate`` (its flags live in :mod:`vdm.metrics.cli`).

``evaluate(cfg, samples)`` computes the FVD of a samples ``.npz`` against real clips (canonical protocol,
docs/DESIGN.md) and returns the metrics dict (see :mod:`vdm.artifacts.metrics`); ``real_features`` gives
the I3D features of the real clips, cached by their key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vdm.config import ExperimentConfig, to_dict
from vdm.data.loader import eval_clips
from vdm.metrics import fvd, i3d
from vdm.utils.io import sha256_file

log = logging.getLogger("vdm.evaluate")


def _real_clips(cfg: ExperimentConfig, frames: int) -> np.ndarray:
    ev = cfg.evaluate
    clips = np.asarray(eval_clips(cfg.data, ev.split, ev.num_real, ev.real_seed, frames=frames))
    log.info("real clips: %s from split %r (seed %d)", clips.shape, ev.split, ev.real_seed)
    return clips


# DataConfig fields that do not change the evaluation clips (training-only): left out of the cache
# key so that runs differing only in these share one set of real features.
TRAIN_ONLY_DATA_FIELDS = ("images_per_video", "num_classes", "shuffle_buffer", "image_pool", "flip", "verify")


def real_features(cfg: ExperimentConfig, frames: int, detector, *, real: str | Path | None = None,
                  real_cache: str | Path | None = None, device: str | None = None,
                  progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """I3D features of the real clips [N, D] (cached) and their provenance for the metrics JSON."""
    ev = cfg.evaluate
    info = fvd.detector_info(ev.features)
    shape: list[int] | None = None
    if real is not None:
        real_videos, _ = fvd.load_videos_npz(real)
        if real_videos.shape[1] != frames:
            raise fvd.FVDError(f"{real}: real videos have {real_videos.shape[1]} frames, the samples have "
                               f"{frames}; FVD compares clips of equal length")
        info["real"] = {"source": "npz", "path": str(real), "sha256": sha256_file(real),
                        "n": int(real_videos.shape[0])}
        shape = list(real_videos.shape)
        split = "npz"

        def compute() -> np.ndarray:
            return fvd.extract_features(real_videos, detector, batch_size=ev.batch_size, device=device,
                                        progress=progress, desc="I3D real")
    else:
        data = {k: v for k, v in to_dict(cfg.data).items() if k not in TRAIN_ONLY_DATA_FIELDS}
        info["real"] = {"source": "eval_clips", "data": data, "split": ev.split, "num": ev.num_real,
                        "seed": ev.real_seed, "frames": int(frames)}
        split = ev.split

        def compute() -> np.ndarray:
            clips = _real_clips(cfg, frames)
            return fvd.extract_features(clips, detector, batch_size=ev.batch_size, device=device,
                                        progress=progress, desc="I3D real")
    cache_path = Path(real_cache) if real_cache else fvd.default_cache_path(ev, info, split)
    feats, from_cache = fvd.cached_features(cache_path, info, compute)
    log.info("real features %s %s", "read from" if from_cache else "computed and cached in", cache_path)
    if shape is None:  # eval clips: [N, frames, resolution, resolution, channels], cached or not
        shape = [int(len(feats)), int(frames), cfg.data.resolution, cfg.data.resolution, cfg.data.channels]
    # What the metrics record does not depend on which evaluation filled the cache first: the same
    # inputs give a byte-identical metrics JSON.
    provenance = {**info["real"], "cache": str(cache_path) if cache_path else None, "shape": shape}
    return feats, provenance


def evaluate(cfg: ExperimentConfig, samples: str | Path, *, real: str | Path | None = None,
             real_cache: str | Path | None = None, device: str | None = None,
             progress: bool = True) -> dict[str, Any]:
    """The metrics dict of DESIGN.md for the sample set ``samples`` (see module docstring)."""
    ev = cfg.evaluate
    videos, sample_meta = fvd.load_videos_npz(samples)
    frames = int(videos.shape[1])
    device = device or str(fvd.default_device())
    detector = i3d.load_i3d(device, endpoint=ev.features)
    feats_real, real_info = real_features(cfg, frames, detector, real=real, real_cache=real_cache,
                                          device=device, progress=progress)
    notes: list[str] = []
    if real_info["shape"] is not None and tuple(real_info["shape"][2:]) != tuple(videos.shape[2:]):
        notes.append(f"real frames are {tuple(real_info['shape'][2:])} (H, W, C), generated "
                     f"{tuple(videos.shape[2:])}")
    feats_gen = fvd.extract_features(videos, detector, batch_size=ev.batch_size, device=device,
                                     progress=progress, desc="I3D generated")
    result = fvd.compute_fvd(feats_real, feats_gen, ev, progress=progress)
    result["warnings"] = result["warnings"] + notes
    for note in notes:
        log.warning("%s", note)
    return {
        "metric": "fvd",
        "value": result.pop("value"),
        "interval": result.pop("interval"),
        **result,
        "detector_id": i3d.DETECTOR_ID,
        "weights_sha256": i3d.WEIGHTS_SHA256,
        "settings": {
            "evaluate": to_dict(ev),
            "frames": frames,
            "input_size": i3d.INPUT_SIZE,
            "preprocess": fvd.PREPROCESS_ID,
            "real": real_info,
            "samples": {"path": str(samples), "sha256": sha256_file(samples), **sample_meta},
            "experiment": cfg.name,
            "device": str(device),
        },
    }
