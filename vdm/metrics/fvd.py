"""Fréchet Video Distance (Unterthiner et al., 2018) with the canonical I3D protocol (paper §5).

uint8 videos [N, T, H, W, C] → TF1 ``resize_bilinear`` to 224x224 → ``2x/255 - 1`` → I3D time-averaged
logits [N, 400] → Gaussian fit (mean, unbiased covariance) → Fréchet distance in float64:

    FVD = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 sqrtm(S_r S_g))

The real clips' features are computed once per (split, clip protocol, detector) and cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import scipy.linalg
import torch

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import read_samples
from vdm.metrics import i3d as i3d_lib
from vdm.metrics.config import EvalConfig
from vdm.utils.io import remove_stale_temporaries_of, save_npz

log = logging.getLogger(__name__)

PREPROCESS_ID = "tf1-resize_bilinear(align_corners=False,half_pixel_centers=False)->224x224, 2x/255-1"
CACHE_FORMAT = 1  # bump when the cache file layout or the feature pipeline changes


class FVDError(ValueError):
    """Bad evaluation input (shape, dtype, frame count, cache mismatch); the message names it."""


# --------------------------------------------------------------------------------------------
# Preprocessing as the reference (frechet_video_distance.preprocess: tf.image.resize_bilinear, TF1)
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def tf1_bilinear_weights(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower, upper, lerp) of TF1 ``resize_bilinear`` (align_corners=False, half_pixel_centers=False).

    src = dst * (in / out) in float32 (TF's LegacyScaler), lower = floor(src),
    upper = min(ceil(src), in - 1), lerp = src - floor(src): no half-pixel offset, no antialiasing.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale  # [out]
    lower = np.floor(src)
    upper = np.minimum(np.ceil(src), in_size - 1)
    lerp = (src - lower).astype(np.float32)
    return (torch.from_numpy(lower.astype(np.int64)), torch.from_numpy(upper.astype(np.int64)),
            torch.from_numpy(lerp))


def resize_bilinear_tf1(frames: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear`` of float frames [M, H, W, C] → float32 [M, out_h, out_w, C].

    Same arithmetic order as TF's kernel: interpolate along x first (top and bottom rows), then y.
    """
    frames = frames.float()
    m, h, w, c = frames.shape
    if (h, w) == (out_h, out_w):
        return frames
    x0, x1, xl = (t.to(frames.device) for t in tf1_bilinear_weights(w, out_w))
    y0, y1, yl = (t.to(frames.device) for t in tf1_bilinear_weights(h, out_h))
    left, right = frames[:, :, x0], frames[:, :, x1]  # [M, H, out_w, C]
    rows = left + (right - left) * xl[None, None, :, None]  # [M, H, out_w, C]
    top, bottom = rows[:, y0], rows[:, y1]  # [M, out_h, out_w, C]
    return top + (bottom - top) * yl[None, :, None, None]


def check_videos(videos: np.ndarray | torch.Tensor, name: str = "videos") -> None:
    """uint8 [N, T, H, W, C] with C in {1, 3} and T >= 9, else :class:`FVDError` naming ``name``."""
    shape = tuple(videos.shape)
    dtype = str(videos.dtype).replace("torch.", "")
    if len(shape) != 5 or shape[-1] not in (1, 3):
        raise FVDError(f"{name}: expected uint8 videos [N, T, H, W, C] with C = 1 or 3, got shape {shape}")
    if dtype != "uint8":
        raise FVDError(f"{name}: expected dtype uint8 (0..255), got {dtype}")
    if shape[0] < 1:
        raise FVDError(f"{name}: no videos")
    if shape[1] < i3d_lib.MIN_FRAMES:
        raise FVDError(f"{name}: I3D needs at least {i3d_lib.MIN_FRAMES} frames per video "
                       f"(16 by convention), got {shape[1]}")


def preprocess(videos: np.ndarray | torch.Tensor, size: int = i3d_lib.INPUT_SIZE) -> torch.Tensor:
    """uint8 [N, T, H, W, C] (C = 1: grayscale, repeated) → I3D input float32 [N, 3, T, size, size] in [-1, 1]."""
    check_videos(videos)
    v = torch.as_tensor(videos)
    n, t, h, w, c = v.shape
    frames = resize_bilinear_tf1(v.reshape(n * t, h, w, c), size, size)  # [N*T, size, size, C]
    if c == 1:
        frames = frames.expand(-1, -1, -1, 3)  # grayscale → RGB (equal channels)
    x = 2.0 * frames / 255.0 - 1.0  # [N*T, size, size, 3]
    return x.reshape(n, t, size, size, 3).permute(0, 4, 1, 2, 3)  # [N, 3, T, size, size]


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------
def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def extract_features(videos: np.ndarray | torch.Tensor, detector: torch.nn.Module | None = None, *,
                     batch_size: int = 8, device: str | torch.device | None = None,
                     progress: bool = True, desc: str = "I3D features") -> np.ndarray:
    """I3D features (float32 [N, 400], or [N, 1024] for a ``pool`` detector) of uint8 videos [N, T, H, W, C]."""
    check_videos(videos, name=desc)
    device = torch.device(device) if device is not None else default_device()
    detector = detector if detector is not None else i3d_lib.load_i3d(device)
    from tqdm.auto import tqdm

    n = videos.shape[0]
    out: list[np.ndarray] = []
    with torch.inference_mode(), tqdm(total=n, desc=desc, unit="video", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            batch = torch.as_tensor(videos[start:start + batch_size]).to(device)  # [b, T, H, W, C]
            x = preprocess(batch)  # [b, 3, T, 224, 224]
            out.append(detector(x).float().cpu().numpy())  # [b, D]
            bar.update(x.shape[0])
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------
# Fréchet distance (float64, unbiased covariance, scipy sqrtm of S_1 S_2)
# --------------------------------------------------------------------------------------------
def gaussian_stats(feats: np.ndarray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D] with N - ddof: 1 unbiased, 0 biased) in float64 of features [N, D]."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise FVDError(f"features must be [N >= 2, D], got shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False, ddof=ddof))


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), sqrtm by ``scipy.linalg.sqrtm`` (real part).

    As in the common FID/FVD code, a non-finite square root (singular product) is retried with
    1e-6 added to both diagonals.
    """
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on singular products; handled below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        log.warning("sqrtm(S1 S2) is not finite; adding 1e-6 to the covariance diagonals")
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
    """Fréchet distance between Gaussians fitted to features [N_a, D] and [N_b, D] (float64; covariances
    with N - ``ddof``)."""
    a, b = np.asarray(feats_a), np.asarray(feats_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise FVDError(f"feature sets must be [N, D] with the same D, got {a.shape} and {b.shape}")
    return frechet_distance_from_stats(*gaussian_stats(a, ddof), *gaussian_stats(b, ddof))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_cov_product(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
    """tr sqrtm(S_a S_b) without a general matrix square root (exact; S = covariances with N - ``ddof``).

    With centred data A [N_a, D], B [N_b, D]: S_a S_b has the eigenvalues sigma_i(A B^T)^2 / c^2
    (nonzero eigenvalues of XY and YX agree), c = sqrt((N_a - 1)(N_b - 1)); so the trace is the
    nuclear norm of A B^T / c: an N_a x N_b SVD. For many samples the D x D form is used instead:
    S_a S_b is similar to (R_a R_b)(R_a R_b)^T with R = S^(1/2), so the trace is |R_a R_b|_*.
    """
    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    a_c, b_c = a - a.mean(axis=0), b - b.mean(axis=0)
    (n_a, dim), n_b = a.shape, b.shape[0]
    if n_a * n_b <= dim * dim:
        return float(np.linalg.svd(a_c @ b_c.T, compute_uv=False).sum() / math.sqrt((n_a - ddof) * (n_b - ddof)))
    r_a = _psd_sqrt(a_c.T @ a_c / (n_a - ddof))
    r_b = _psd_sqrt(b_c.T @ b_c / (n_b - ddof))
    return float(np.linalg.svd(r_a @ r_b, compute_uv=False).sum())


def frechet_distance_fast(feats_a: np.ndarray, feats_b: np.ndarray, ddof: int = 1) -> float:
    """The same distance as :func:`frechet_distance` via :func:`trace_sqrt_cov_product` (for bootstrap
    replicates: milliseconds instead of seconds per ``scipy.linalg.sqrtm``)."""
    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise FVDError(f"feature sets must be [N >= 2, D] with the same D, got {a.shape} and {b.shape}")
    diff = a.mean(axis=0) - b.mean(axis=0)
    tr_a = float(((a - a.mean(axis=0)) ** 2).sum() / (len(a) - ddof))
    tr_b = float(((b - b.mean(axis=0)) ** 2).sum() / (len(b) - ddof))
    return float(diff @ diff + tr_a + tr_b - 2.0 * trace_sqrt_cov_product(a, b, ddof))


def bootstrap_interval(feats_real: np.ndarray, feats_gen: np.ndarray, *, num: int, level: float,
                       seed: int, progress: bool = False, value: float | None = None,
                       ddof: int = 1) -> dict[str, Any]:
    """Percentile interval of the distance over ``num`` resamples (with replacement) of both sets.

    With ``value`` (the distance of the full sets) both percentiles are shifted by the bootstrap's bias
    estimate ``mean(resampled) − value`` (recorded as ``bias``); without it, the plain percentiles."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    real = np.asarray(feats_real, np.float64)
    gen = np.asarray(feats_gen, np.float64)
    values = []
    for _ in tqdm(range(num), desc="bootstrap", disable=not progress):
        i = rng.integers(0, len(real), len(real))
        j = rng.integers(0, len(gen), len(gen))
        values.append(frechet_distance_fast(real[i], gen[j], ddof))
    v = np.asarray(values)
    alpha = (1.0 - level) / 2.0
    bias = float(v.mean()) - value if value is not None else 0.0
    return {"method": "bootstrap", "level": level, "num_bootstrap": num, "seed": seed,
            "bias_correction": value is not None, "bias": bias,
            "low": float(np.quantile(v, alpha)) - bias, "high": float(np.quantile(v, 1.0 - alpha)) - bias,
            "std": float(v.std(ddof=1)) if num > 1 else float("nan")}


def bootstrap_entry(feats_real: np.ndarray, feats_gen: np.ndarray, cfg: EvalConfig, value: float, *, ddof: int = 1,
                    progress: bool = False) -> dict[str, Any]:
    """``{"interval": [low, high], "interval_info": {...}}`` of a distance ``value`` by :func:`bootstrap_interval`
    with ``cfg``'s settings (bias-corrected when ``cfg.bootstrap_bias_correction``); ``{}`` when
    ``cfg.num_bootstrap`` is 0. Shared by FVD, fvd2048_16f and the frame FIDs."""
    if cfg.num_bootstrap <= 0:
        return {}
    info = bootstrap_interval(feats_real, feats_gen, num=cfg.num_bootstrap, level=cfg.interval_level,
                              seed=cfg.bootstrap_seed, progress=progress,
                              value=value if cfg.bootstrap_bias_correction else None, ddof=ddof)
    return {"interval": [info.pop("low"), info.pop("high")], "interval_info": info}


def chunk_fvds(feats_real: np.ndarray, feats_gen: np.ndarray, num_chunks: int) -> np.ndarray:
    """Distance of each of ``num_chunks`` disjoint, equal chunks of the generated set to all real features."""
    size = len(feats_gen) // num_chunks
    if size < 2:
        raise FVDError(f"{len(feats_gen)} generated videos cannot make {num_chunks} chunks of >= 2")
    mu_r, s_r = gaussian_stats(feats_real)
    return np.asarray([frechet_distance_from_stats(mu_r, s_r, *gaussian_stats(feats_gen[k * size:(k + 1) * size]))
                       for k in range(num_chunks)])


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def compute_fvd(feats_real: np.ndarray, feats_gen: np.ndarray, cfg: EvalConfig, *,
                progress: bool = False) -> dict[str, Any]:
    """Value, interval and the small-sample guard (``reliable``, ``warnings``) as in the metrics JSON."""
    feats_real, feats_gen = np.asarray(feats_real), np.asarray(feats_gen)
    n_real, n_gen, dim = len(feats_real), len(feats_gen), feats_real.shape[1]
    min_samples = cfg.min_samples if cfg.min_samples is not None else dim + 1
    if min(n_real, n_gen) < 2:
        raise FVDError(f"FVD needs at least 2 videos on each side, got {n_real} real and {n_gen} generated")
    notes: list[str] = []
    reliable = min(n_real, n_gen) >= min_samples
    if not reliable:
        notes.append(
            f"too few samples for a meaningful covariance: {n_real} real and {n_gen} generated, "
            f"guard {min_samples} (feature dimension {dim}); the value is biased and not comparable "
            f"with published numbers")
    out: dict[str, Any] = {"n_real": n_real, "n_generated": n_gen, "feature_dim": dim,
                           "min_samples": min_samples, "reliable": reliable}
    if cfg.interval == "chunks":
        values = chunk_fvds(feats_real, feats_gen, cfg.num_chunks)
        mean, std = float(values.mean()), float(values.std(ddof=1))
        half = _normal_quantile(0.5 + cfg.interval_level / 2.0) * std / math.sqrt(len(values))
        out["value"] = mean
        out["interval"] = [mean - half, mean + half]
        out["interval_info"] = {"method": "chunks", "level": cfg.interval_level, "num_chunks": len(values),
                                "chunk_size": len(feats_gen) // len(values), "std": std,
                                "unused_generated": len(feats_gen) % len(values),
                                "chunk_values": values.tolist()}
        if len(feats_gen) // len(values) < min_samples:
            notes.append(f"chunks of {len(feats_gen) // len(values)} generated videos are below the guard "
                         f"{min_samples}")
            out["reliable"] = False
    else:
        out["value"] = frechet_distance(feats_real, feats_gen)
        out.update(bootstrap_entry(feats_real, feats_gen, cfg, out["value"], progress=progress)
                   or {"interval": None, "interval_info": {"method": "none"}})
    out["warnings"] = notes
    for note in notes:
        warnings.warn(f"FVD: {note}", stacklevel=2)
        log.warning("FVD: %s", note)
    return out


# --------------------------------------------------------------------------------------------
# A second convention, for comparison with recent papers: StyleGAN-V's fvd2048_16f
# --------------------------------------------------------------------------------------------
STYLEGAN_V_FRAMES = 16
STYLEGAN_V_N = 2048
STYLEGAN_V_NOTE = ("StyleGAN-V fvd2048_16f: I3D logits of 16-frame clips, the first 2048 generated vs the first "
                   "2048 real clips, Gaussians with the biased (1/N) covariance; the real clips are this "
                   "protocol's (evaluate.split, data.eval_offset), StyleGAN-V draws random 16-frame windows, "
                   "and its TorchScript I3D resizes to 224 its own way")


def fvd2048_16f(feats_real: np.ndarray, feats_gen: np.ndarray, frames: int, features: str, cfg: EvalConfig, *,
                progress: bool = False) -> dict[str, Any]:
    """StyleGAN-V's ``fvd2048_16f`` (Skorokhodov et al., 2022; src/metrics/frechet_video_distance.py): the same
    I3D logits, 16 consecutive frames, up to 2048 videos on each side, biased covariance (its FeatureStats
    divides by N). Computed only where it means that: 16-frame videos and logits features; otherwise
    ``{"computed": False, "reason": ...}``. The interval is a bootstrap as for FVD (same settings)."""
    if features != "logits":
        return {"computed": False, "reason": f"needs I3D logits (evaluate.features is {features!r})"}
    if frames != STYLEGAN_V_FRAMES:
        return {"computed": False, "reason": f"needs {STYLEGAN_V_FRAMES}-frame videos (these have {frames})"}
    real = np.asarray(feats_real, np.float64)[:STYLEGAN_V_N]
    gen = np.asarray(feats_gen, np.float64)[:STYLEGAN_V_N]
    value = frechet_distance(real, gen, ddof=0)
    out: dict[str, Any] = {"computed": True, "value": value, "n_real": len(real), "n_generated": len(gen),
                           "convention_n": STYLEGAN_V_N, "full_convention": len(real) == len(gen) == STYLEGAN_V_N,
                           "covariance": "biased (1/N)", "note": STYLEGAN_V_NOTE, "interval": None}
    out.update(bootstrap_entry(real, gen, cfg, value, ddof=0, progress=progress))
    return out


# --------------------------------------------------------------------------------------------
# Real-clip features, cached per split / clip protocol / detector
# --------------------------------------------------------------------------------------------
def cache_key(info: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything the cached features depend on."""
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


def detector_info(features: str) -> dict[str, Any]:
    return {"detector_id": i3d_lib.DETECTOR_ID, "weights_sha256": i3d_lib.WEIGHTS_SHA256,
            "features": features, "preprocess": PREPROCESS_ID, "cache_format": CACHE_FORMAT}


def _differences(cached: Any, wanted: Any, where: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON trees, as 'key: cached -> wanted'."""
    if isinstance(cached, dict) and isinstance(wanted, dict):
        out: list[str] = []
        for k in sorted(set(cached) | set(wanted)):
            out += _differences(cached.get(k), wanted.get(k), f"{where}.{k}" if where else str(k))
        return out
    return [] if cached == wanted else [f"{where}: {cached!r} -> {wanted!r}"]


def load_cached_features(path: str | os.PathLike, key: str,
                         info: Mapping[str, Any] | None = None) -> np.ndarray | None:
    """Features from ``path`` if it exists and was made with ``key``; a different key is an error
    (naming the settings that differ from ``info``)."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if "key" not in z or "features" not in z:
            raise FVDError(f"{path}: not a real-feature cache (needs 'key' and 'features')")
        stored = str(z["key"])
        if stored != key:
            cached = json.loads(str(z["info"])) if "info" in z else {}
            differ = _differences(cached, json.loads(json.dumps(info, default=str))) if info else ["?"]
            raise FVDError(f"{path}: cached real features were made with other settings "
                           f"(differ: {'; '.join(differ[:8])}); delete the file or choose another --real-cache")
        return np.asarray(z["features"])


def save_cached_features(path: str | os.PathLike, feats: np.ndarray, key: str, info: Mapping[str, Any]) -> None:
    save_npz(path, {"features": np.asarray(feats, np.float32), "key": np.array(key),
                    "info": np.array(json.dumps(info, sort_keys=True, default=str))})


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``<path>.lock`` (parallel evaluations compute the real features once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no POSIX locks here (e.g. some network file systems): no lock
            pass
        yield


def cached_features(path: str | os.PathLike | None, info: Mapping[str, Any],
                    compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """(features, came_from_cache): read ``path`` if its key matches ``info``, else compute and write it."""
    key = cache_key(info)
    if path is None:
        return compute(), False

    path = Path(path)
    with _exclusive(path):
        remove_stale_temporaries_of(path)  # under the lock: no other evaluation is writing it now
        feats = load_cached_features(path, key, info)
        if feats is not None:
            log.info("real features: cache hit %s", path)
            return feats, True
        feats = compute()
        save_cached_features(path, feats, key, info)
    log.info("real features: cached in %s", path)
    return feats, False


def default_cache_path(cfg: EvalConfig, info: Mapping[str, Any], split: str) -> Path | None:
    if not cfg.cache_dir:
        return None
    return Path(cfg.cache_dir) / f"real-{split}-{cache_key(info)[:16]}.npz"


def load_videos_npz(path: str | os.PathLike, key: str = "videos") -> tuple[np.ndarray, dict[str, Any]]:
    """A samples/clips ``.npz`` read with :func:`vdm.artifacts.samples.read_samples`, checked for I3D
    (uint8 [N, T, H, W, C], T >= 9); every error is a :class:`FVDError` naming the file."""
    try:
        videos, extra = read_samples(path, key)
    except ArtifactError as e:
        raise FVDError(str(e)) from None
    check_videos(videos, name=f"{path}:{key}")
    return videos, extra
