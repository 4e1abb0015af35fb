"""Coverage, width and paired power of interval methods for a Fréchet distance, on Gaussian features.

The evidence for ``vdm.metrics.resampling``'s choice. Features: D = 64, real ~ N(0, I) (one fixed set
per replicate, as the protocol's real clips are fixed), generated ~ N(m, diag(s^2)) with m = 0.3 and
log s evenly spaced in [-0.3, 0.3]. Target of every interval: theta_N = E_gen[d(real, gen_N)] for that
real set, estimated with ``--mc`` fresh generated sets (its Monte-Carlo SD gives the "true" SD).

Paired arms (N gen = 64, 256 real): correlated latents (sample i of both arms from the same seed),
gen_a = m + s ⊙ z_i, gen_b = m + delta u + sqrt(s) ⊙ (rho z_i + sqrt(1 - rho^2) w_i), rho = 0.9,
u = 1 / sqrt(D) (rho = 1 makes Delta nearly deterministic: SD 0.18 against 0.57 at rho = 0.9). The mean shift enters
the distance exactly: d(real, b) = d(real, b0) + delta^2 - 2 delta u·(mu_real - mean(b0)), so the true
gap E[d_b] - E[d_a] = c0 + delta^2 - 2 delta u·(mu_real - m), c0 = E[d(real, b0) - d(real, a)] by Monte
Carlo over z; delta is solved for each gap (gap 0: arms that differ but have the same expected distance).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/intervals.py
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import numpy as np

from vdm.metrics import resampling
from vdm.metrics.stats import bootstrap_interval, frechet_distance_fast

D = 64
Z95 = 1.959963984540054


def gen_params(dim: int = D) -> tuple[np.ndarray, np.ndarray]:
    """(m [D], s [D]) of the generated Gaussian."""
    return np.full(dim, 0.3), np.exp(np.linspace(-0.3, 0.3, dim))


def draw(rng: np.random.Generator, n: int, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    return m + s * rng.standard_normal((n, len(m)))  # [n, D]


# --------------------------------------------------------------------------------------------
# Candidate intervals: (real, gen, seed) -> (low, high)
# --------------------------------------------------------------------------------------------
def old_bootstrap(real: np.ndarray, gen: np.ndarray, seed: int) -> tuple[float, float]:
    """vdm.metrics.stats.bootstrap_interval, both sets resampled, percentiles shifted by the bias estimate."""
    r = bootstrap_interval(real, gen, num=100, level=0.95, seed=seed, value=frechet_distance_fast(real, gen))
    return r["low"], r["high"]


def bootstrap_gen_normal(real: np.ndarray, gen: np.ndarray, seed: int, num: int = 100) -> tuple[float, float]:
    """value ± 1.96 SD of 100 with-replacement resamples of the generated set only (real fixed)."""
    rng = np.random.default_rng(seed)
    dist = resampling.fixed_real_distance(real)
    v = dist(real, gen)
    reps = [dist(real, gen[rng.integers(0, len(gen), len(gen))]) for _ in range(num)]
    sd = float(np.std(reps, ddof=1))
    return v - Z95 * sd, v + Z95 * sd


def half_sampling(real: np.ndarray, gen: np.ndarray, seed: int, num: int = 40) -> tuple[float, float]:
    """m-out-of-n subsampling without replacement, m = N/2: var_N = var_m · m / (N - m); normal interval."""
    rng = np.random.default_rng(seed)
    n = len(gen)
    m = n // 2
    dist = resampling.fixed_real_distance(real)
    v = dist(real, gen)
    reps = [dist(real, gen[rng.choice(n, m, replace=False)]) for _ in range(num)]
    sd = math.sqrt(float(np.var(reps, ddof=1)) * m / (n - m))
    return v - Z95 * sd, v + Z95 * sd


def jackknife(groups: int, vary_real: bool = False) -> Callable[[np.ndarray, np.ndarray, int], tuple[float, float]]:
    def f(real: np.ndarray, gen: np.ndarray, seed: int) -> tuple[float, float]:
        r = resampling.distance_interval(real, gen, num_groups=groups, seed=seed, vary_real=vary_real)
        return r["low"], r["high"]
    return f


METHODS: dict[str, Callable[[np.ndarray, np.ndarray, int], tuple[float, float]]] = {
    "old: bootstrap both, bias-shifted percentiles": old_bootstrap,
    "bootstrap gen only, normal (SD)": bootstrap_gen_normal,
    "half-sampling m=N/2, normal": half_sampling,
    "jackknife delete-1, t": jackknife(10**9),
    "jackknife G=50, t": jackknife(50),
    "jackknife G=20, t (chosen)": jackknife(20),
    "jackknife G=10, t": jackknife(10),
    "jackknife G=20 + real, t": jackknife(20, vary_real=True),
}


SLOW = {"old: bootstrap both, bias-shifted percentiles", "old: intervals do not overlap",
        "paired bootstrap, shared indices"}  # 100 full distances per interval: fewer trials (--old-trials)


def coverage_table(sizes: list[tuple[int, int]], reals: int, trials: int, mc: int, seed: int,
                   old_trials: int) -> None:
    m, s = gen_params()
    print(f"\n## Coverage of theta_N (real fixed), {reals} real sets x {trials} trials, theta_N from {mc} draws")
    print("| method | " + " | ".join(f"{g}/{r} cov | width ratio" for g, r in sizes) + " |")
    print("|---|" + "---|---|" * len(sizes))
    res: dict[str, list[str]] = {k: [] for k in METHODS}
    for n_gen, n_real in sizes:
        cover = {k: [] for k in METHODS}
        ratio = {k: [] for k in METHODS}
        for r in range(reals):
            rng = np.random.default_rng([seed, n_gen, n_real, r])
            real = rng.standard_normal((n_real, D))
            dist = resampling.fixed_real_distance(real)
            truth = np.array([dist(real, draw(rng, n_gen, m, s)) for _ in range(mc)])
            theta, sd = truth.mean(), truth.std(ddof=1)
            for t in range(trials):
                gen = draw(rng, n_gen, m, s)
                for k, f in METHODS.items():
                    if t >= old_trials and k in SLOW:
                        continue
                    lo, hi = f(real, gen, seed + t)
                    cover[k].append(lo <= theta <= hi)
                    ratio[k].append((hi - lo) / (2 * Z95 * sd))
        for k in METHODS:
            res[k] += [f"{np.mean(cover[k]):.3f}", f"{np.mean(ratio[k]):.2f}"]
    for k in METHODS:
        print(f"| {k} | " + " | ".join(res[k]) + " |")
    n = reals * trials
    print(f"(coverage Monte-Carlo SE at 0.95: {math.sqrt(0.95 * 0.05 / n):.3f}; the 'old' and paired-bootstrap "
          f"rows use {reals * min(old_trials, trials)} trials)")


# --------------------------------------------------------------------------------------------
# Paired arms
# --------------------------------------------------------------------------------------------
def paired_setup(real: np.ndarray, rng: np.random.Generator, n_gen: int, mc: int) -> tuple[float, float, float]:
    """(c0, beta, its MC SE): gap(delta) = c0 + delta^2 - 2 delta beta (module doc)."""
    m, s = gen_params()
    u = np.full(D, 1.0 / math.sqrt(D))
    dist = resampling.fixed_real_distance(real)
    diffs = []
    for _ in range(mc):
        z = rng.standard_normal((n_gen, D))
        diffs.append(dist(real, m + np.sqrt(s) * z) - dist(real, m + s * z))
    beta = float(u @ (real.mean(0) - m))
    return float(np.mean(diffs)), beta, float(np.std(diffs, ddof=1) / math.sqrt(mc))


def delta_for_gap(gap: float, c0: float, beta: float) -> float:
    return beta + math.sqrt(beta**2 + gap - c0)


RHO = 0.9


def paired_arms(rng: np.random.Generator, n_gen: int, delta: float) -> tuple[np.ndarray, np.ndarray]:
    m, s = gen_params()
    z = rng.standard_normal((n_gen, D))  # [N, D], shared: sample i of both arms from one seed
    w = rng.standard_normal((n_gen, D))  # [N, D], arm b's own part
    return m + s * z, m + delta / math.sqrt(D) + np.sqrt(s) * (RHO * z + math.sqrt(1 - RHO**2) * w)


def paired_bootstrap(real: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int, num: int = 100) -> tuple[float, float]:
    """Percentile interval of Delta over 100 resamples sharing one set of indices for both arms and the real set."""
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(num):
        i = rng.integers(0, len(real), len(real))
        j = rng.integers(0, len(a), len(a))
        reps.append(frechet_distance_fast(real[i], a[j]) - frechet_distance_fast(real[i], b[j]))
    v = frechet_distance_fast(real, a) - frechet_distance_fast(real, b)
    bias = float(np.mean(reps)) - v
    return float(np.quantile(reps, 0.025)) - bias, float(np.quantile(reps, 0.975)) - bias


def old_overlap(real: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
    """vdm.report.findings.compare on the two arms' old intervals, as an interval-like (lo, hi) of Delta's sign."""
    lo_a, hi_a = old_bootstrap(real, a, seed)
    lo_b, hi_b = old_bootstrap(real, b, seed)
    if hi_a < lo_b:
        return -2.0, -1.0  # a separated below b
    if hi_b < lo_a:
        return 1.0, 2.0
    return -1.0, 1.0


def paired_jackknife(groups: int, vary_real: bool = False) -> Callable[..., tuple[float, float]]:
    def f(real: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
        r = resampling.paired_difference(real, a, b, num_groups=groups, seed=seed, vary_real=vary_real)
        return r["low"], r["high"]
    return f


PAIRED: dict[str, Callable[..., tuple[float, float]]] = {
    "old: intervals do not overlap": old_overlap,
    "paired bootstrap, shared indices": paired_bootstrap,
    "paired jackknife delete-1": paired_jackknife(10**9),
    "paired jackknife G=20 (chosen)": paired_jackknife(20),
    "paired jackknife G=20 + real": paired_jackknife(20, vary_real=True),
}


def paired_table(gaps: list[float], reals: int, trials: int, mc: int, seed: int, old_trials: int,
                 n_gen: int = 64, n_real: int = 256) -> None:
    print(f"\n## Paired verdicts, rho = {RHO:g}, {n_gen} gen / {n_real} real, {reals} real sets x {trials} trials "
          f"(gap = E[d_b] - E[d_a], a better; 'reproduced' = interval of d_a - d_b below 0)")
    print("| method | " + " | ".join(f"gap {g:g}: repr / contra" for g in gaps) + " |")
    print("|---|" + "---|" * len(gaps))
    res: dict[str, list[str]] = {k: [] for k in PAIRED}
    mc_se = []
    for gap in gaps:
        rep = {k: [] for k in PAIRED}
        con = {k: [] for k in PAIRED}
        for r in range(reals):
            rng = np.random.default_rng([seed, 7, r])
            real = rng.standard_normal((n_real, D))
            c0, beta, se0 = paired_setup(real, rng, n_gen, mc)
            mc_se.append(se0)
            delta = delta_for_gap(gap, c0, beta)
            rng = np.random.default_rng([seed, 8, r, int(gap * 100)])
            for t in range(trials):
                a, b = paired_arms(rng, n_gen, delta)
                for k, f in PAIRED.items():
                    if t >= old_trials and k in SLOW:
                        continue
                    lo, hi = f(real, a, b, seed + t)
                    v = resampling.verdict(lo, hi, expected_sign=-1)
                    rep[k].append(v == resampling.REPRODUCED)
                    con[k].append(v == resampling.CONTRADICTED)
        for k in PAIRED:
            res[k].append(f"{np.mean(rep[k]):.3f} / {np.mean(con[k]):.3f}")
    for k in PAIRED:
        print(f"| {k} | " + " | ".join(res[k]) + " |")
    print(f"(true gap's Monte-Carlo SE <= {max(mc_se):.4f}; at gap 0 both columns are false verdicts)")


def main() -> None:
    global RHO
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reals", type=int, default=4)
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--mc", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--old-trials", type=int, default=10, help="trials per real set of the 100-resample methods")
    p.add_argument("--skip", choices=["coverage", "paired"], default=None)
    p.add_argument("--rho", type=float, default=RHO, help="latent correlation of the paired arms")
    a = p.parse_args()
    RHO = a.rho
    t0 = time.perf_counter()
    if a.skip != "coverage":
        coverage_table([(64, 256), (256, 256), (64, 64)], a.reals, a.trials, a.mc, a.seed, a.old_trials)
    if a.skip != "paired":
        paired_table([0.0, 1.05, 2.25, 4.65], a.reals, a.trials, a.mc, a.seed, a.old_trials)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
