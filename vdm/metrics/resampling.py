"""Intervals of a Fréchet distance (FVD, FID) and of a paired difference of two arms, by grouped jackknife.

**Target.** A Fréchet distance of N generated features to a real set is biased upward by O(D / N), so
the population distance is not what an N-sample value estimates. What the value estimates without
bias is the *expected distance at this N*,

    theta_N = E_gen[ d(real, gen_N) ],

over fresh draws of the N generated samples, with the real set held fixed: the real clips are a fixed
protocol set, every arm is measured against the same one, and in a difference of two arms the real set
is common to both. The interval is ``value ± t_{G-1, 1-alpha/2} · se`` with ``value = d(real, gen)``
(unbiased for theta_N by construction, so no bias correction) and ``se`` the grouped (delete-d)
jackknife standard error of the distance over the generated set. With ``vary_real=True`` the real set
is jackknifed as well (its variance added), and the target becomes E_{real, gen}[d(real_M, gen_N)]:
use that only to compare with a value computed on another real set of the same size.

**Why the jackknife.** A with-replacement bootstrap resample of 64 points holds about 41 distinct
points; the covariance term of the distance follows that count, so bootstrap replicates spread 2-3x
wider than fresh draws do (``bench/intervals.py`` measures it). Deleting a group leaves N - N/G
distinct points, and the jackknife's (G - 1) / G factor rescales the spread of those replicates to
size N. Grouping (G = 20 by default, delete-1 when N <= G) keeps the cost at G + 1 distances for any
N, e.g. an FID at D = 2048, N = 2048.

**Evidence** (``bench/intervals.py``, D = 64, 100 trials per cell): coverage of theta_N 0.96 / 0.94 /
0.92 with width 1.22 / 1.13 / 1.18 x the true 2 · 1.96 · SD at N gen / real = 64/256, 256/256, 64/64;
the old bootstrap of both sets covers 100 % at 1.8-2.6 x that width. Delete-1 is as good at N + 1
distances; near-equal (not equal) groups inflated the SE 1.4x at N = 64 (see :func:`jackknife_groups`).

**Cost and scale.** :func:`fixed_real_distance` computes S_r^(1/2) once (one D x D eigendecomposition,
seconds at D = 2048); a replicate is one eigendecomposition of a min(N, D)^2 Gram matrix. At N <= D
the generated covariance is singular (rank N - h - 1 in a replicate); the formula stays exact there,
but the coverage was measured only at D = 64 with N = 64..256, not at N = 16 against D = 2048, where
G = N (delete-1) and the t quantile has 15 degrees of freedom.

**Paired differences.** With arms sampled from the same seeds (sample i of every arm uses seed + i),
Delta = d(real, gen_a) - d(real, gen_b) is jackknifed deleting the same groups from both arms, so the
shared seed noise cancels in the replicates as it does in Delta.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Callable

import numpy as np

Distance = Callable[[np.ndarray, np.ndarray], float]

DEFAULT_GROUPS = 20
METHOD = "grouped jackknife (delete-d), t interval"
TARGET = "E_gen[d(real, gen_N)]: expected distance at this N over fresh generated sets, real set fixed"
TARGET_VARY_REAL = "E_real,gen[d(real_M, gen_N)]: expected distance at these sizes over fresh real and generated sets"
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


class ResamplingError(ValueError):
    """Bad input to an interval (shapes, sizes, unpaired arms); the message names it."""


# --------------------------------------------------------------------------------------------
# The distance with the real set's statistics computed once
# --------------------------------------------------------------------------------------------
def fixed_real_distance(real: np.ndarray, ddof: int = 1) -> Distance:
    """The exact Fréchet distance (as ``vdm.metrics.stats.frechet_distance_fast``) with ``real``'s mean, trace
    and S_r^(1/2) computed once.

    tr sqrtm(S_r S_g) = tr sqrtm(R S_g R) with R = S_r^(1/2) (PSD): the sum of the square roots of the
    eigenvalues of the Gram matrix of G_c R / sqrt(N - ddof) (N x N or D x D, the smaller), so a
    replicate costs one symmetric eigendecomposition. Another real set (a replicate of it) gets its own."""
    r = _as_features(real, "real")  # [M, D]
    mu_r = r.mean(axis=0)  # [D]
    r_c = r - mu_r
    s_r = r_c.T @ r_c / (len(r) - ddof)  # [D, D]
    w, v = np.linalg.eigh(s_r)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # [D, D]
    tr_r = float(np.trace(s_r))

    def distance(real_: np.ndarray, gen: np.ndarray) -> float:
        if real_ is not r and not (np.shape(real_) == r.shape and np.array_equal(real_, r)):
            return fixed_real_distance(real_, ddof)(real_, gen)
        g = np.asarray(gen, np.float64)  # [N, D]
        n, dim = g.shape
        if dim != r.shape[1] or n < 2:
            raise ResamplingError(f"generated features must be [N >= 2, {r.shape[1]}], got {g.shape}")
        mu_g = g.mean(axis=0)
        g_c = g - mu_g
        x = g_c @ root  # [N, D]
        gram = x @ x.T if n <= dim else x.T @ x  # [min(N, D)]^2
        tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None)).sum()) / math.sqrt(n - ddof)
        diff = mu_r - mu_g
        return float(diff @ diff + tr_r + (g_c**2).sum() / (n - ddof) - 2.0 * tr_sqrt)

    return distance


# --------------------------------------------------------------------------------------------
# Grouped jackknife
# --------------------------------------------------------------------------------------------
def jackknife_groups(n: int, num_groups: int, seed: int) -> list[np.ndarray]:
    """G = min(num_groups, n) disjoint random groups of h = n // G indices each (the n - G h left over are
    in every replicate).

    Equal sizes matter: the distance's O(D / N) bias differs between replicates of N - 3 and N - 4
    points, and near-equal groups would add that difference to the spread (x 1.4 the SE at N = 64)."""
    if n < 3:
        raise ResamplingError(f"the jackknife needs at least 3 samples, got {n}")
    g = min(num_groups, n)
    if g < 2:
        raise ResamplingError(f"the jackknife needs at least 2 groups, got {num_groups}")
    h = n // g
    perm = np.random.default_rng(seed).permutation(n)  # [n]
    return [np.sort(perm[k * h:(k + 1) * h]) for k in range(g)]


def jackknife_variance(replicates: np.ndarray, n: int, h: int) -> float:
    """Delete-h jackknife variance at the full n of G replicates, each with a different h points deleted:
    (n - h) / (h G) · sum_g (theta_(g) - mean)^2; (G - 1) / G · sum when the groups partition the n points.

    For the mean of n points and h = 1 (delete-1) this is s^2 / n exactly (the classical variance of the mean)."""
    r = np.asarray(replicates, np.float64)  # [G]
    return float((n - h) / (h * len(r)) * ((r - r.mean()) ** 2).sum())


def _deleted(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    keep = np.ones(len(x), bool)
    keep[group] = False
    return x[keep]


def _replicates(statistic: Callable[..., float], real: np.ndarray, gens: list[np.ndarray],
                groups: list[np.ndarray], on: str) -> np.ndarray:
    """statistic(real, gens) with one group deleted from the generated sets (jointly) or from the real set."""
    out = []
    for grp in groups:
        if on == "gen":
            out.append(statistic(real, *[_deleted(x, grp) for x in gens]))
        else:
            out.append(statistic(_deleted(real, grp), *gens))
    return np.asarray(out)  # [G]


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(x, np.float64)
    if f.ndim != 2 or f.shape[0] < 3:
        raise ResamplingError(f"{name}: features must be [N >= 3, D], got shape {f.shape}")
    return f


def _interval(value: float, var_gen: float, df_gen: int, var_real: float | None, df_real: int | None,
              level: float) -> tuple[float, float, float, float]:
    """(low, high, se, df): value ± t quantile · se, df by Welch-Satterthwaite when two variances add."""
    var = var_gen + (var_real or 0.0)
    se = math.sqrt(var)
    if var_real is None or var == 0.0:
        df = float(df_gen)
    else:
        df = var**2 / (var_gen**2 / df_gen + var_real**2 / df_real)
    from scipy.special import stdtrit  # here: the workflow's DAG build imports this module, only intervals need it

    half = float(stdtrit(df, 0.5 + level / 2.0)) * se
    return value - half, value + half, se, df


# --------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------
def distance_interval(real: np.ndarray, gen: np.ndarray, *, distance: Distance | None = None,
                      level: float = 0.95, num_groups: int = DEFAULT_GROUPS, seed: int = 0,
                      vary_real: bool = False) -> dict[str, Any]:
    """The distance of ``gen`` [N, D] to ``real`` [M, D] with its ``level`` interval of theta_N (module doc).

    G + 1 distances (G = min(num_groups, N)); ``vary_real`` adds G more for the real set. ``distance``
    (real, gen) -> float defaults to the Fréchet distance (:func:`fixed_real_distance` of ``real``)."""
    real, gen = _as_features(real, "real"), _as_features(gen, "generated")
    distance = distance if distance is not None else fixed_real_distance(real)
    value = float(distance(real, gen))
    groups = jackknife_groups(len(gen), num_groups, seed)
    var_gen = jackknife_variance(_replicates(distance, real, [gen], groups, "gen"), len(gen), len(groups[0]))
    var_real = df_real = None
    if vary_real:
        groups_real = jackknife_groups(len(real), num_groups, seed + 1)
        var_real = jackknife_variance(_replicates(distance, real, [gen], groups_real, "real"), len(real),
                                      len(groups_real[0]))
        df_real = len(groups_real) - 1
    low, high, se, df = _interval(value, var_gen, len(groups) - 1, var_real, df_real, level)
    return {"value": value, "low": low, "high": high, "se": se, "method": METHOD, "level": level,
            "target": TARGET_VARY_REAL if vary_real else TARGET, "num_groups": len(groups), "df": df,
            "n_real": len(real), "n_generated": len(gen), "seed": seed}


def min_detectable_difference(se: float, level: float = 0.95, power: float = 0.8) -> float:
    """(z_{1-alpha/2} + z_power) · se: the smallest true |Delta| that a two-sided ``level`` interval
    excludes 0 for with probability ``power`` (normal approximation)."""
    return float((NormalDist().inv_cdf(0.5 + level / 2.0) + NormalDist().inv_cdf(power)) * se)


def verdict(low: float, high: float, expected_sign: int) -> str:
    """"reproduced" when [low, high] excludes 0 on the side of ``expected_sign`` (+1: Delta > 0, -1: Delta < 0),
    "contradicted" when it excludes 0 on the other side, else "inconclusive"."""
    if expected_sign not in (1, -1):
        raise ResamplingError(f"expected_sign must be +1 or -1, got {expected_sign!r}")
    if low > 0.0:
        return REPRODUCED if expected_sign == 1 else CONTRADICTED
    if high < 0.0:
        return REPRODUCED if expected_sign == -1 else CONTRADICTED
    return INCONCLUSIVE


def paired_difference(real: np.ndarray, gen_a: np.ndarray, gen_b: np.ndarray, *,
                      distance: Distance | None = None, level: float = 0.95,
                      num_groups: int = DEFAULT_GROUPS, seed: int = 0, vary_real: bool = False,
                      power: float = 0.8, expected_sign: int | None = None) -> dict[str, Any]:
    """Delta = d(real, gen_a) - d(real, gen_b) of two arms whose sample i comes from the same seed, with its
    interval of E[Delta] (the same groups deleted from both arms; from the real set too with ``vary_real``).

    ``min_detectable`` is (z_{1-alpha/2} + z_power) · se; with ``expected_sign`` (the sign of Delta the
    paper reports, e.g. -1 for "arm a has the lower FVD") the dict holds the ``verdict``."""
    real = _as_features(real, "real")
    gen_a, gen_b = _as_features(gen_a, "gen_a"), _as_features(gen_b, "gen_b")
    if len(gen_a) != len(gen_b):
        raise ResamplingError(f"paired arms need equal N (sample i of each from the same seed): gen_a has "
                              f"{len(gen_a)} samples, gen_b has {len(gen_b)}")
    distance = distance if distance is not None else fixed_real_distance(real)

    def delta(r: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return float(distance(r, a)) - float(distance(r, b))

    value_a, value_b = float(distance(real, gen_a)), float(distance(real, gen_b))
    value = value_a - value_b
    groups = jackknife_groups(len(gen_a), num_groups, seed)
    var_gen = jackknife_variance(_replicates(delta, real, [gen_a, gen_b], groups, "gen"), len(gen_a),
                                 len(groups[0]))
    var_real = df_real = None
    if vary_real:
        groups_real = jackknife_groups(len(real), num_groups, seed + 1)
        var_real = jackknife_variance(_replicates(delta, real, [gen_a, gen_b], groups_real, "real"), len(real),
                                      len(groups_real[0]))
        df_real = len(groups_real) - 1
    low, high, se, df = _interval(value, var_gen, len(groups) - 1, var_real, df_real, level)
    out: dict[str, Any] = {
        "value": value, "low": low, "high": high, "se": se, "method": "paired " + METHOD, "level": level,
        "target": "E[Delta] of " + (TARGET_VARY_REAL if vary_real else TARGET),
        "value_a": value_a, "value_b": value_b, "num_groups": len(groups), "df": df, "n_real": len(real),
        "n_generated": len(gen_a), "seed": seed, "power": power,
        "min_detectable": min_detectable_difference(se, level, power),
    }
    if expected_sign is not None:
        out["expected_sign"] = expected_sign
        out["verdict"] = verdict(low, high, expected_sign)
    return out


def paired_share_difference(scores_a: np.ndarray, scores_b: np.ndarray, *, level: float = 0.95,
                            power: float = 0.8) -> dict[str, Any]:
    """Delta = mean(scores_b) - mean(scores_a) of a per-video score (e.g. the share of a video's frames that show
    the requested digit) of two arms whose video i comes from the same seed: a paired t interval over the N
    per-video differences (df N - 1), the target E[Delta] over fresh draws of the seeds. ``min_detectable`` as for
    :func:`paired_difference`. Its coverage is measured in tests/test_resampling.py."""
    a = np.asarray(scores_a, np.float64).reshape(-1)
    b = np.asarray(scores_b, np.float64).reshape(-1)
    if len(a) != len(b) or len(a) < 2:
        raise ResamplingError(f"paired arms need equal N >= 2 (video i of each from the same seed): {len(a)} vs "
                              f"{len(b)}")
    d = b - a  # [N]
    value = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    low, high, se, df = _interval(value, se * se, len(d) - 1, None, None, level)
    return {"value": value, "low": low, "high": high, "se": se, "df": df, "level": level,
            "method": "paired t over videos", "target": "E[Delta] of the per-video mean at this N",
            "value_a": float(a.mean()), "value_b": float(b.mean()), "n_generated": len(d), "power": power,
            "min_detectable": min_detectable_difference(se, level, power), "higher_is_better": True}
