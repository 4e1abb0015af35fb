"""Samplers on Gaussian videos with the exact denoiser (paper §1): Monte-Carlo vs exact chain vs data.

x ~ N(μ, Σ) over videos [C=1, T=4, H=2, W=2], Σ = 0.5² · AR(1)(ρ_t=0.8) ⊗ AR(1)(ρ_s=0.5). For each
sampler, step count and γ, prints the covariance error ‖Ĉ − Σ‖_F/‖Σ‖_F of N samples, the same error
of the exact discretised chain (``chain_moments``: the discretisation error alone, no sampling), and
the Monte-Carlo error against that chain (the implementation check; ≈ sampling noise). Mean errors
‖m̂ − μ‖/sqrt(tr Σ) are ≈ 1/√N in every row (the chain's mean is exact at any step count).

    python bench/sampler_gaussian.py [--n 20000] [--steps 8,32,128,256]
"""

from __future__ import annotations

import argparse
import time

import torch

from vdm.diffusion import CosineSchedule
from vdm.sampling.gaussian import GaussianDenoiser, ar1_video_covariance, chain_moments, cov_sampling_std, moment_errors
from vdm.sampling.samplers import logsnr_grid, sample_ancestral, sample_predictor_corrector


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--steps", default="8,32,128,256")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    T, H, W = 4, 2, 2
    cov = ar1_video_covariance(T, H * W, 0.8, 0.5, 0.5)
    mu = torch.linspace(-0.3, 0.4, T * H * W, dtype=torch.float64)
    den = GaussianDenoiser(mu, cov, (1, T, H, W))
    n = args.n
    print(f"N={n}, D={den.dim}; sampling noise of the cov error ≈ {cov_sampling_std(cov, n):.4f}, "
          f"of the mean error ≈ {1 / n**0.5:.4f}")
    print("| sampler | steps | γ | mean err (MC vs μ) | cov err (MC vs Σ) | cov err (chain vs Σ) "
          "| cov err (MC vs chain) |")
    print("|---|---|---|---|---|---|---|")
    t0 = time.time()
    for sampler in ("ancestral", "langevin"):
        for steps in [int(s) for s in args.steps.split(",")]:
            for gamma in (0.0, 0.3, 1.0):
                grid = logsnr_grid(CosineSchedule(), steps)
                g = torch.Generator().manual_seed(args.seed)

                def noise(like, g=g):
                    return torch.randn(like.shape, generator=g, dtype=like.dtype)

                z_1 = noise(torch.empty(n, *den.shape, dtype=torch.float64))
                if sampler == "ancestral":
                    x = sample_ancestral(den, z_1, grid, gamma=gamma, noise=noise)
                else:
                    x = sample_predictor_corrector(den, z_1, grid, gamma=gamma, delta=0.1, noise=noise)
                x = x.reshape(n, -1)
                cm, cc = chain_moments(den, grid, gamma=gamma, corrector_steps=int(sampler == "langevin"))
                me, ce = moment_errors(x, mu, cov)
                chain_err = float((cc - cov).norm() / cov.norm())
                _, ce_chain = moment_errors(x, cm, cc)
                print(f"| {sampler} | {steps} | {gamma:g} | {me:.4f} | {ce:.4f} | {chain_err:.4f} | {ce_chain:.4f} |",
                      flush=True)
    print(f"({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
