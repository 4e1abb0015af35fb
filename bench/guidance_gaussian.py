"""Replacement vs reconstruction guidance on Gaussian videos with the exact denoiser (paper §4).

x ~ N(μ, Σ) over videos [C=1, T=4, H=2, W=2] with AR(1) correlation over frames (ρ_t) and pixels
(ρ_s); x^a = the first frame, x^b = the other three. Prints, for conditioning values near and far
from the prior mean, the errors of sampled x^b against the exact E[x^b | x^a] and Cov[x^b | x^a]:
    mean error = ‖m̂ − m‖ / sqrt(tr C),   cov error = ‖Ĉ − C‖_F / ‖C‖_F.

    python bench/guidance_gaussian.py [--n 20000] [--steps 128] [--sampler ancestral|langevin] [--gamma 1]
                                      [--w-r 1,2,5]
The "exact draws" row is N draws from the exact conditional: the sampling-noise floor of both errors.
"""

from __future__ import annotations

import argparse
import time

import torch

from vdm.sampling.gaussian import GaussianDenoiser, ar1_video_covariance, conditional_sampling_errors, moment_errors


def problem(rho_t: float = 0.9, rho_s: float = 0.5, scale: float = 0.5) -> GaussianDenoiser:
    T, H, W = 4, 2, 2
    cov = ar1_video_covariance(T, H * W, rho_t, rho_s, scale)
    mu = torch.linspace(-0.3, 0.4, T * H * W, dtype=torch.float64)
    return GaussianDenoiser(mu, cov, (1, T, H, W))


def conditioning_value(den: GaussianDenoiser, offset_std: float) -> torch.Tensor:
    """x^a = μ^a + offset_std · (prior std) on the first frame: [C, 1, H, W]."""
    C, T, H, W = den.shape
    mu = den.mu.reshape(C, T, H, W)[:, :1]
    std = den.cov.diagonal().sqrt().reshape(C, T, H, W)[:, :1]
    signs = torch.tensor([1.0, -1.0, 1.0, 1.0], dtype=torch.float64).reshape(1, 1, H, W)
    return mu + offset_std * std * signs


def exact_draw_errors(den: GaussianDenoiser, x_a: torch.Tensor, n: int, seed: int) -> tuple[float, float]:
    """Errors of n exact draws from N(E[x^b | x^a], Cov[x^b | x^a]) (the Monte-Carlo floor)."""
    C, T, H, W = den.shape
    a = torch.zeros(C, T, H, W, dtype=torch.bool)
    a[:, :1] = True
    mean, cov = den.conditional(a.reshape(-1), x_a)
    g = torch.Generator().manual_seed(seed + 1)
    draws = mean + torch.randn(n, len(mean), generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    return moment_errors(draws, mean, cov)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--sampler", default="ancestral", choices=["ancestral", "langevin"])
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--w-r", default="1,2,5", help="comma-separated reconstruction-guidance weights")
    args = p.parse_args()
    den = problem()
    print(f"N={args.n} sampler={args.sampler} steps={args.steps} gamma={args.gamma} seed={args.seed}")
    print("| x^a | method | w_r | mean error | cov error |")
    print("|---|---|---|---|---|")
    t0 = time.time()
    for name, off in (("near (0.5 std)", 0.5), ("far (3 std)", 3.0)):
        x_a = conditioning_value(den, off)
        floor = exact_draw_errors(den, x_a, args.n, args.seed)
        print(f"| {name} | exact draws | – | {floor[0]:.4f} | {floor[1]:.4f} |", flush=True)
        weights = [float(w) for w in args.w_r.split(",") if w]
        for method, w_r in [("replacement", 0.0)] + [("reconstruction", w) for w in weights]:
            me, ce = conditional_sampling_errors(den, 1, x_a, method=method, w_r=w_r, sampler=args.sampler,
                                                 steps=args.steps, gamma=args.gamma, n=args.n, seed=args.seed)
            w = "–" if method == "replacement" else f"{w_r:g}"
            print(f"| {name} | {method} | {w} | {me:.4f} | {ce:.4f} |", flush=True)
    print(f"({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
