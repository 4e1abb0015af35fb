"""Video-prediction metrics: PSNR and SSIM of each generated frame against the real clip it continues.

The per-frame values are scikit-image's (``skimage.metrics.peak_signal_noise_ratio`` and
``structural_similarity``, data range 255, SSIM with the settings of Wang et al. 2004: an 11 x 11 Gaussian window
of sigma 1.5, K1 = 0.01, K2 = 0.03, population covariances; a channel axis for colour frames). A frame equal to
its reference has an infinite PSNR; it is recorded as :data:`PSNR_CAP` dB so that means stay finite.

Scores (:func:`pixel_entry`) read the frames that were not given (``cond_frame_indices``): per sample the mean
over those frames; the set's value is the mean over samples, with a Student-t interval over the conditioning
clips (the independent units: with ``sample.samples_per_clip`` = k > 1 each clip's k draws are one unit). Best-of-k
(:func:`best_of_k_entry`): per clip the draw with the highest mean value (PSNR and SSIM chosen separately, as the
Moving MNIST literature reports them), then the mean over clips, with the per-frame curve of the chosen draws.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

DETECTOR_ID = "scikit-image PSNR / SSIM"
PSNR_CAP = 100.0  # dB recorded for a frame equal to its reference (PSNR infinite)
SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
PREPROCESS_ID = f"uint8 frames, data_range 255, SSIM {SSIM_SETTINGS}, PSNR cap {PSNR_CAP} dB"


class PredictionMetricError(ValueError):
    """A set whose videos and reference clips cannot be compared."""


def library_version() -> str:
    """The installed scikit-image (recorded with every output: its SSIM is the definition used)."""
    from importlib.metadata import version

    return version("scikit-image")


def frame_scores(videos: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 videos [b, T, H, W, C] and the real clips they continue [b, T_ref >= T, H, W, C] -> ``psnr`` and
    ``ssim`` float64 [b, T] per frame."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    b, t = videos.shape[:2]
    if reference.shape[0] != b or reference.shape[1] < t or reference.shape[2:] != videos.shape[2:]:
        raise PredictionMetricError(f"reference clips {reference.shape} do not cover the videos {videos.shape}")
    psnr, ssim = np.empty((b, t)), np.empty((b, t))
    colour = videos.shape[-1] > 1
    for i in range(b):
        for j in range(t):
            x, y = reference[i, j], videos[i, j]  # [H, W, C] uint8
            with warnings.catch_warnings(), np.errstate(divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                p = peak_signal_noise_ratio(x, y, data_range=255)
            psnr[i, j] = min(float(p), PSNR_CAP)
            ssim[i, j] = structural_similarity(x if colour else x[..., 0], y if colour else y[..., 0],
                                               channel_axis=-1 if colour else None, **SSIM_SETTINGS)
    return {"psnr": psnr, "ssim": ssim}


def _t_interval(values: np.ndarray, level: float) -> list[float]:
    from scipy.stats import t as student_t

    n = len(values)
    if n < 2:
        return [float("nan"), float("nan")]
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * float(values.std(ddof=1)) / np.sqrt(n)
    mean = float(values.mean())
    return [mean - half, mean + half]


def _predicted(per_frame: np.ndarray, given: Sequence[int], k: int) -> tuple[np.ndarray, list[int]]:
    """The scores [N, T'] of the frames not ``given`` (and their indices), N a whole number of clips of k draws."""
    frames = [t for t in range(per_frame.shape[1]) if t not in set(given)]
    if not frames:
        raise PredictionMetricError("every frame is given: none predicted")
    if len(per_frame) % k:
        raise PredictionMetricError(f"{len(per_frame)} samples are not a whole number of clips of {k} draws")
    return per_frame[:, frames].astype(np.float64), frames  # [N, T']


def pixel_entry(per_frame: np.ndarray, given: Sequence[int], k: int, level: float) -> dict[str, Any]:
    """The mean over every draw of a per-frame score [N, T] over the frames not ``given``: value, interval over the
    N / k clips, per-frame curve."""
    v, frames = _predicted(per_frame, given, k)
    n = len(v)
    per_clip = v.mean(1).reshape(n // k, k).mean(1)  # [clips]
    return {"computed": True, "value": float(v.mean()), "interval": _t_interval(per_clip, level),
            "interval_method": "Student t over the conditioning clips", "per_frame": v.mean(0).round(6).tolist(),
            "frames": frames, "draws_per_clip": k, "n_clips": n // k, "n_generated": n, "n_real": n // k}


def best_of_k_entry(per_frame: np.ndarray, given: Sequence[int], k: int, level: float) -> dict[str, Any]:
    """Best of the k draws of each clip (the highest mean over the predicted frames), then the mean over clips."""
    v, frames = _predicted(per_frame, given, k)
    n = len(v)
    draws = v.reshape(n // k, k, len(frames))  # [clips, k, T']
    best = draws[np.arange(n // k), draws.mean(2).argmax(1)]  # [clips, T']
    per_clip = best.mean(1)  # [clips]
    return {"computed": True, "value": float(per_clip.mean()), "interval": _t_interval(per_clip, level),
            "interval_method": "Student t over the conditioning clips", "per_frame": best.mean(0).round(6).tolist(),
            "frames": frames, "draws_per_clip": k, "n_clips": n // k, "n_generated": n, "n_real": n // k}
