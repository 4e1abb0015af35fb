"""Statistics of feature sets, apart from the networks that make them: Gaussian fits, the Fréchet distance
forms, intervals, the small-sample guard and the Inception score. Every function takes feature arrays
([N, D], float64 inside) and the evaluation settings, so a paired or per-sample resampling across two
sample sets can be added beside them without touching the detectors.

    FD = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 sqrtm(S_r S_g))
"""

from __future__ import annotations

import logging
import math
import warnings
from statistics import NormalDist
from typing import Any

import numpy as np

from vdm.metrics import resampling
from vdm.metrics.config import EvalConfig
from vdm.metrics.errors import FVDError

log = logging.getLogger(__name__)


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
    import scipy.linalg  # here, not at module level: the workflow reads the registry (and so this module) at
    # every DAG build, and only an evaluation needs scipy's sqrtm

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


def interval_entry(feats_real: np.ndarray, feats_gen: np.ndarray, cfg: EvalConfig, value: float, *, ddof: int = 1,
                   progress: bool = False) -> dict[str, Any]:
    """``{"interval": [low, high], "interval_info": {...}}`` of a distance ``value`` by ``cfg.interval``: the
    grouped jackknife of :mod:`vdm.metrics.resampling` ("jackknife"; also for "chunks", which only FVD
    implements), or :func:`bootstrap_interval` ("bootstrap"; ``{}`` when ``cfg.num_bootstrap`` is 0). Shared by
    FVD, fvd2048_16f, the frame FIDs and every further Fréchet distance."""
    if cfg.interval == "bootstrap":
        if cfg.num_bootstrap <= 0:
            return {}
        info = bootstrap_interval(feats_real, feats_gen, num=cfg.num_bootstrap, level=cfg.interval_level,
                                  seed=cfg.bootstrap_seed, progress=progress,
                                  value=value if cfg.bootstrap_bias_correction else None, ddof=ddof)
        return {"interval": [info.pop("low"), info.pop("high")], "interval_info": info}
    real = np.asarray(feats_real, np.float64)
    info = resampling.distance_interval(real, np.asarray(feats_gen, np.float64),
                                        distance=resampling.fixed_real_distance(real, ddof), level=cfg.interval_level,
                                        num_groups=cfg.jackknife_groups, seed=cfg.bootstrap_seed)
    low, high = info.pop("low"), info.pop("high")
    info.pop("value")
    return {"interval": [low, high], "interval_info": {**info, "method": "jackknife", "detail": info["method"]}}


def chunk_fvds(feats_real: np.ndarray, feats_gen: np.ndarray, num_chunks: int) -> np.ndarray:
    """Distance of each of ``num_chunks`` disjoint, equal chunks of the generated set to all real features."""
    size = len(feats_gen) // num_chunks
    if size < 2:
        raise FVDError(f"{len(feats_gen)} generated videos cannot make {num_chunks} chunks of >= 2")
    mu_r, s_r = gaussian_stats(feats_real)
    return np.asarray([frechet_distance_from_stats(mu_r, s_r, *gaussian_stats(feats_gen[k * size:(k + 1) * size]))
                       for k in range(num_chunks)])


def _normal_quantile(p: float) -> float:
    return float(NormalDist().inv_cdf(p))


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
        out.update(interval_entry(feats_real, feats_gen, cfg, out["value"], progress=progress)
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


def fvd2048_16f_unavailable(frames: int, features: str) -> str:
    """Why ``fvd2048_16f`` is not computed for these videos and I3D features ("" when it is)."""
    if features != "logits":
        return f"needs I3D logits (evaluate.features is {features!r})"
    if frames != STYLEGAN_V_FRAMES:
        return f"needs {STYLEGAN_V_FRAMES}-frame videos (these have {frames})"
    return ""


def fvd2048_16f(feats_real: np.ndarray, feats_gen: np.ndarray, frames: int, features: str, cfg: EvalConfig, *,
                progress: bool = False) -> dict[str, Any]:
    """StyleGAN-V's ``fvd2048_16f`` (Skorokhodov et al., 2022; src/metrics/frechet_video_distance.py): the same
    I3D logits, 16 consecutive frames, up to 2048 videos on each side, biased covariance (its FeatureStats
    divides by N). Computed only where it means that: 16-frame videos and logits features; otherwise
    ``{"computed": False, "reason": ...}``. The interval is a bootstrap as for FVD (same settings)."""
    why = fvd2048_16f_unavailable(frames, features)
    if why:
        return {"computed": False, "reason": why}
    real = np.asarray(feats_real, np.float64)[:STYLEGAN_V_N]
    gen = np.asarray(feats_gen, np.float64)[:STYLEGAN_V_N]
    value = frechet_distance(real, gen, ddof=0)
    out: dict[str, Any] = {"computed": True, "value": value, "n_real": len(real), "n_generated": len(gen),
                           "convention_n": STYLEGAN_V_N, "full_convention": len(real) == len(gen) == STYLEGAN_V_N,
                           "covariance": "biased (1/N)", "note": STYLEGAN_V_NOTE, "interval": None}
    out.update(interval_entry(real, gen, cfg, value, ddof=0, progress=progress))
    return out


# --------------------------------------------------------------------------------------------
# Metrics entries of the JSON's "also": a Fréchet distance and an Inception score
# --------------------------------------------------------------------------------------------
def fid_entry(real: np.ndarray, gen: np.ndarray, ev: EvalConfig, **labels: Any) -> dict[str, Any]:
    """A Fréchet distance of generated features [N, D] to real ones [M, D] as a metrics entry: value (exact,
    float64, unbiased covariances), N, the small-sample flag (fewer than D + 1 on a side), the bootstrap
    interval as FVD's, and ``labels`` (split, frames, ...)."""
    r, g = real.astype(np.float64), gen.astype(np.float64)
    value = frechet_distance_fast(r, g)
    entry: dict[str, Any] = {"computed": True, "value": value, "n_real": len(r), "n_generated": len(g), **labels,
                             "reliable": min(len(r), len(g)) > r.shape[1], "interval": None}
    entry.update(interval_entry(r, g, ev, value))
    return entry


def inception_score(probs: np.ndarray, splits: int = 1) -> tuple[float, float]:
    """(mean, std over splits) of exp(E_x KL(p(y|x) || p(y))) for class probabilities [N, C] (float64), the
    set cut into ``splits`` consecutive parts of N // splits or N // splits + 1 samples (part k holds samples
    k N // splits .. (k + 1) N // splits - 1, as torch-fidelity: no sample is dropped); std over the parts
    with 1/splits (numpy's default, as torch-fidelity and OpenAI's code)."""
    p = np.asarray(probs, np.float64)
    n = len(p)
    if n < splits:
        raise ValueError(f"{n} samples cannot make {splits} splits")
    scores = []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None)))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def is_entry(probs: np.ndarray, splits: int, too_few: str) -> dict[str, Any]:
    """The IS of class probabilities [N, C] with ``splits`` equal parts as a metrics entry (more than one part:
    value = mean over the parts, interval = mean ± std); "not computed: ``too_few``" when N < splits."""
    if len(probs) < splits:
        return {"computed": False, "reason": too_few}
    mean, std = inception_score(probs, splits)
    return {"computed": True, "value": mean, "n_generated": len(probs), "n_real": 0, "splits": splits,
            "interval": [mean - std, mean + std] if splits > 1 else None}


# --------------------------------------------------------------------------------------------
# The digit metrics' math (vdm.metrics.digits): shares of frames, with an interval that treats the videos as clusters
# --------------------------------------------------------------------------------------------
def predicted(logits: np.ndarray) -> np.ndarray:
    """logits [N, T, 10] -> the predicted digit of every frame, int64 [N, T]."""
    return np.asarray(logits).argmax(axis=-1).astype(np.int64)


def class_hits(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """bool [N, T]: the frame's predicted digit is its video's class label (labels [N])."""
    return predicted(logits) == np.asarray(labels, np.int64)[:, None]


def majority(pred: np.ndarray) -> np.ndarray:
    """pred int [N, T] -> each video's most frequent digit [N] (a tie: the smallest of them)."""
    return np.array([np.bincount(p, minlength=10).argmax() for p in pred], np.int64)


def identity_hits(logits: np.ndarray) -> np.ndarray:
    """bool [N, T]: the frame's predicted digit is its video's most frequent one."""
    pred = predicted(logits)
    return pred == majority(pred)[:, None]


def kept_hits(logits: np.ndarray, given: list[int]) -> np.ndarray:
    """bool [N, T - len(given)]: each other frame's predicted digit is the most frequent of the ``given`` ones."""
    pred = predicted(logits)
    others = [t for t in range(pred.shape[1]) if t not in set(given)]
    return pred[:, others] == majority(pred[:, given])[:, None]


def wilson(p: float, n: float, level: float) -> tuple[float, float]:
    """Wilson score interval of a share ``p`` of ``n`` trials."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def share_entry(hits: np.ndarray, level: float) -> dict[str, Any]:
    """The share of frames of ``hits`` bool [N, T] that hold, with a Wilson interval at the effective sample
    size of clustered frames (the frames of one video are not independent): n_eff = p (1 - p) / SE^2, SE the
    standard error of the mean over videos of their shares (equal T: that of p), kept within [N, N T]; N
    where p is 0 or 1 or the videos do not vary."""
    hits = np.asarray(hits, bool)
    n, t = hits.shape
    per_video = hits.mean(axis=1)  # [N]
    p = float(per_video.mean())
    se2 = float(per_video.var(ddof=1)) / n if n > 1 else 0.0
    n_eff = float(np.clip(p * (1 - p) / se2, n, n * t)) if 0 < p < 1 and se2 > 0 else float(n)
    return {"value": p, "interval": list(wilson(p, n_eff, level)), "n_videos": n, "n_frames": n * t,
            "n_effective": round(n_eff, 1),
            "interval_method": "Wilson at the effective N of videos as clusters (n_eff = p(1-p)/SE^2)"}
