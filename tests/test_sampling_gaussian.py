"""Samplers against an exactly solvable case: Gaussian videos x ~ N(μ, Σ) with the exact denoiser.

Two checks, both with no trained network:
1. the Monte-Carlo moments of each sampler equal the exact moments of its discretised chain
   (``chain_moments``: linear-Gaussian recursion, no sampling) within sampling error, for several
   step counts, γ ∈ {0, 0.3, 1}, ancestral and predictor-corrector — this pins the implementation;
2. the chain converges to (μ, Σ) as steps grow, and at 256 steps (predictor-corrector: 128 + 127
   corrections) the samplers reproduce μ and Σ.
Tolerances (N = 8000 draws, D = 16): mean error ‖m̂ − m‖/sqrt(tr Σ) < 4/√N = 0.045 (its typical
value is 1/√N = 0.011); covariance error ‖Ĉ − C‖_F/‖C‖_F < 0.06 (typical sampling value 0.026,
see ``cov_sampling_std``), plus, against (μ, Σ), the chain's own discretisation error.
"""

from __future__ import annotations

import pytest
import torch

from vdm.diffusion import CosineSchedule
from vdm.sampling.gaussian import (
    GaussianDenoiser,
    ar1_video_covariance,
    chain_moments,
    cov_sampling_std,
    moment_errors,
)
from vdm.sampling.samplers import ancestral_coefficients, logsnr_grid, sample_ancestral, sample_predictor_corrector

N = 8000
MEAN_TOL = 4 / N**0.5
COV_TOL = 0.06


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def den() -> GaussianDenoiser:
    T, H, W = 4, 2, 2
    cov = ar1_video_covariance(T, H * W, rho_t=0.8, rho_s=0.5, scale=0.5)
    mu = torch.linspace(-0.3, 0.4, T * H * W, dtype=torch.float64)
    return GaussianDenoiser(mu, cov, (1, T, H, W))


def _run(den, steps, gamma, corrector, seed=1):
    g = torch.Generator().manual_seed(seed)

    def noise(like):
        return torch.randn(like.shape, generator=g, dtype=like.dtype)

    z_1 = noise(torch.empty(N, *den.shape, dtype=torch.float64))
    grid = logsnr_grid(CosineSchedule(), steps)
    if corrector:
        x = sample_predictor_corrector(den, z_1, grid, gamma=gamma, delta=0.1, noise=noise)
    else:
        x = sample_ancestral(den, z_1, grid, gamma=gamma, noise=noise)
    return x.reshape(N, -1)


def test_sampling_tolerance_is_sampling_error(den):
    assert cov_sampling_std(den.cov, N) < COV_TOL / 2


@pytest.mark.parametrize("steps", [8, 32])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("corrector", [False, True], ids=["ancestral", "langevin"])
def test_sampler_matches_its_exact_chain(den, steps, gamma, corrector):
    mean, cov = chain_moments(den, logsnr_grid(CosineSchedule(), steps), gamma=gamma,
                              corrector_steps=int(corrector), delta=0.1)
    mean_err, cov_err = moment_errors(_run(den, steps, gamma, corrector), mean, cov)
    assert mean_err < MEAN_TOL and cov_err < COV_TOL, (mean_err, cov_err)


def test_gamma_matters_at_few_steps(den):
    """The check above can fail: γ = 0 and γ = 1 chains differ by far more than the tolerance."""
    grid = logsnr_grid(CosineSchedule(), 8)
    _, c0 = chain_moments(den, grid, gamma=0.0)
    _, c1 = chain_moments(den, grid, gamma=1.0)
    assert float((c0 - c1).norm() / den.cov.norm()) > 5 * COV_TOL


def test_chain_converges_to_data(den):
    for gamma in (0.0, 0.3, 1.0):
        for corr in (0, 1):
            errs = []
            for steps in (8, 32, 256, 1024):
                m, c = chain_moments(den, logsnr_grid(CosineSchedule(), steps), gamma=gamma, corrector_steps=corr)
                assert float((m - den.mu).norm()) < 1e-8  # the mean is exact at any step count
                errs.append(float((c - den.cov).norm() / den.cov.norm()))
            assert errs[-1] < 0.006 and errs[-1] < errs[0] / 10, (gamma, corr, errs)


@pytest.mark.parametrize("steps,gamma,corrector", [(256, 0.0, False), (256, 0.3, False), (256, 1.0, False),
                                                    (128, 0.0, True)])
def test_samplers_reproduce_mu_and_sigma(den, steps, gamma, corrector):
    _, chain_cov = chain_moments(den, logsnr_grid(CosineSchedule(), steps), gamma=gamma,
                                 corrector_steps=int(corrector))
    bias = float((chain_cov - den.cov).norm() / den.cov.norm())  # ≤ 0.02 (γ = 0 ancestral)
    mean_err, cov_err = moment_errors(_run(den, steps, gamma, corrector, seed=2), den.mu, den.cov)
    assert mean_err < MEAN_TOL and cov_err < COV_TOL + bias, (mean_err, cov_err, bias)


def test_ancestral_coefficients_float64_edges():
    c_z, c_x, std = ancestral_coefficients(-20.0, -20.0, 0.0)  # no move: identity, no noise
    assert (c_z, c_x, std) == (1.0, 0.0, 0.0)
    c_z, c_x, std = ancestral_coefficients(19.9, 20.0, 0.5)  # tiny step near t = 0 stays finite
    assert 0 < std < 1e-4 and abs(c_z + c_x - 1) < 1e-3
    with pytest.raises(ValueError, match="increase"):
        ancestral_coefficients(1.0, 0.0, 0.0)


def test_final_step_z0_matches_its_chain(den):
    """final_step="z_0": the last ancestral update to t = 0 (with its noise) instead of x̂ at t = 1/steps."""
    steps, gamma = 4, 1.0
    grid = logsnr_grid(CosineSchedule(), steps)
    mean, cov = chain_moments(den, grid, gamma=gamma, final_step="z_0")
    _, cov_x = chain_moments(den, grid, gamma=gamma, final_step="x_hat")
    assert float((cov - cov_x).norm() / den.cov.norm()) > 2 * COV_TOL  # γ = 1 adds σ_t² noise at the end
    g = torch.Generator().manual_seed(5)

    def noise(like):
        return torch.randn(like.shape, generator=g, dtype=like.dtype)

    x = sample_ancestral(den, noise(torch.empty(N, *den.shape, dtype=torch.float64)), grid, gamma=gamma,
                         noise=noise, final_step="z_0")
    mean_err, cov_err = moment_errors(x.reshape(N, -1), mean, cov)
    assert mean_err < MEAN_TOL and cov_err < COV_TOL, (mean_err, cov_err)
