"""An exactly solvable reference: Gaussian data x ~ N(μ, Σ) over small videos.

For Gaussian data the ideal denoiser is known in closed form,
    E[x | z_t] = μ + α Σ (α² Σ + σ² I)⁻¹ (z_t − α μ),
so samplers and guidance methods can be checked against exact answers with no trained network
(tests and ``bench/guidance_gaussian.py``). Computed in float64 through the eigendecomposition
Σ = U diag(s) Uᵀ, which makes it cheap for any per-sample λ and differentiable in z_t.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from vdm.diffusion.schedule import CosineSchedule, alpha_sigma
from vdm.sampling.guidance import condition
from vdm.sampling.samplers import (
    _alpha_sigma,
    ancestral_coefficients,
    logsnr_grid,
    sample_ancestral,
    sample_predictor_corrector,
)


def ar1_video_covariance(frames: int, pixels: int, rho_t: float, rho_s: float, scale: float = 1.0) -> Tensor:
    """Σ = scale² · R_T ⊗ R_S with AR(1) correlations ρ^|i−j| over frames and over (flattened) pixels.

    Flattening order is (T, pixels), i.e. a video [1, T, H, W] flattened with one channel.
    """
    it = torch.arange(frames, dtype=torch.float64)
    ip = torch.arange(pixels, dtype=torch.float64)
    r_t = rho_t ** (it[:, None] - it[None, :]).abs()  # [T, T]
    r_s = rho_s ** (ip[:, None] - ip[None, :]).abs()  # [P, P]
    return scale**2 * torch.kron(r_t, r_s)  # [T·P, T·P]


class GaussianDenoiser:
    """Exact x̂(z_t) = E[x | z_t] for x ~ N(μ, Σ); x has per-sample ``shape`` (e.g. (C, T, H, W))."""

    def __init__(self, mu: Tensor, cov: Tensor, shape: Sequence[int]):
        self.shape = tuple(int(s) for s in shape)
        self.dim = int(torch.tensor(self.shape).prod())
        self.mu = mu.to(torch.float64).reshape(self.dim)  # [D]
        self.cov = cov.to(torch.float64)  # [D, D]
        if self.cov.shape != (self.dim, self.dim):
            raise ValueError(f"cov {tuple(cov.shape)} does not match shape {self.shape} (D={self.dim})")
        s, U = torch.linalg.eigh(self.cov)
        if float(s.min()) <= 0:
            raise ValueError("cov must be positive definite")
        self.s, self.U = s, U  # [D], [D, D]

    def __call__(self, z_t: Tensor, logsnr_t: Tensor, **_: Any) -> Tensor:
        B = z_t.shape[0]
        alpha, sigma = alpha_sigma(logsnr_t.to(torch.float64))  # [B]
        zf = z_t.reshape(B, self.dim).to(torch.float64)  # [B, D]
        r = (zf - alpha[:, None] * self.mu) @ self.U  # [B, D] in the eigenbasis
        gain = alpha[:, None] * self.s / (alpha[:, None] ** 2 * self.s + sigma[:, None] ** 2)  # [B, D]
        x_hat = self.mu + (gain * r) @ self.U.T  # [B, D]
        return x_hat.reshape(z_t.shape).to(z_t.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n exact draws [n, *shape] (float64)."""
        L = torch.linalg.cholesky(self.cov)
        e = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.mu + e @ L.T).reshape(n, *self.shape)

    def conditional(self, index_a: Tensor, x_a: Tensor) -> tuple[Tensor, Tensor]:
        """Exact E[x^b | x^a] [D_b] and Cov[x^b | x^a] [D_b, D_b]; ``index_a`` bool [D], x_a [D_a]."""
        a = index_a.reshape(self.dim)
        b = ~a
        S_aa, S_ab, S_bb = self.cov[a][:, a], self.cov[a][:, b], self.cov[b][:, b]
        K = torch.linalg.solve(S_aa, S_ab).T  # [D_b, D_a] = Σ_ba Σ_aa⁻¹
        mean = self.mu[b] + K @ (x_a.to(torch.float64).reshape(-1) - self.mu[a])
        cov = S_bb - K @ S_ab
        return mean, cov


def moment_errors(samples: Tensor, mean: Tensor, cov: Tensor) -> tuple[float, float]:
    """(‖m̂ − μ‖ / sqrt(tr Σ), ‖Ĉ − Σ‖_F / ‖Σ‖_F) of samples [N, D] against the exact moments."""
    x = samples.to(torch.float64).reshape(samples.shape[0], -1)
    m = x.mean(0)
    c = torch.cov(x.T)
    mean_err = float((m - mean).norm() / cov.diagonal().sum().sqrt())
    cov_err = float((c - cov).norm() / cov.norm())
    return mean_err, cov_err


def chain_moments(
    den: GaussianDenoiser,
    logsnrs: Tensor,
    *,
    gamma: float,
    delta: float = 0.1,
    corrector_steps: int = 0,
    final_step: str = "x_hat",
) -> tuple[Tensor, Tensor]:
    """Exact output mean [D] and covariance [D, D] of the discretised sampler chain with the exact
    denoiser, started from z_1 ~ N(0, I) (no Monte Carlo).

    Everything is linear-Gaussian and diagonal in Σ's eigenbasis: with u = Uᵀz, m = Uᵀμ and
    g = α s/(α² s + σ²), x̂_u = m + g (u − α m); each ancestral step, Langevin correction and the
    final x̂ map (mean, variance) of every eigen-coordinate affinely. This is what the samplers must
    reproduce for any number of steps; its distance to (μ, Σ) is the discretisation error alone.
    """

    m = den.U.T @ den.mu  # [D]
    s = den.s  # [D]
    mean = torch.zeros_like(s)
    var = torch.ones_like(s)
    lam = [float(v) for v in logsnrs.to(torch.float64)]
    steps = len(lam) - 1

    def gain(logsnr: float) -> tuple[float, Tensor]:
        a, sg = _alpha_sigma(logsnr)
        return a, a * s / (a * a * s + sg * sg)

    for i in range(steps):
        a_t, g = gain(lam[i])
        if i == steps - 1 and final_step == "x_hat":
            mean, var = m + g * (mean - a_t * m), g * g * var
            break
        c_z, c_x, std = ancestral_coefficients(lam[i], lam[i + 1], gamma)
        mean = (c_z + c_x * g) * mean + c_x * m * (1 - g * a_t)
        var = (c_z + c_x * g) ** 2 * var + std**2
        if i < steps - 1:
            a_s, g_s = gain(lam[i + 1])
            _, sig_s = _alpha_sigma(lam[i + 1])
            for _ in range(corrector_steps):
                k = 1 - 0.5 * delta * (1 - a_s * g_s)  # u ← k u + ½δ α_s m (1 − g α_s) + √δ σ_s ε′
                mean = k * mean + 0.5 * delta * a_s * m * (1 - g_s * a_s)
                var = k * k * var + delta * sig_s**2
    return den.U @ mean, den.U @ torch.diag(var) @ den.U.T


def cov_sampling_std(cov: Tensor, n: int) -> float:
    """Approximate standard deviation of ‖Ĉ − Σ‖_F / ‖Σ‖_F for n Gaussian draws:
    sqrt(Σ_ij(Σ_ii Σ_jj + Σ_ij²)/n)/‖Σ‖_F."""
    d = cov.diagonal()
    return float(((d[:, None] * d[None, :] + cov**2).sum() / n).sqrt() / cov.norm())


def conditional_sampling_errors(
    den: GaussianDenoiser,
    frames_a: int,
    x_a: Tensor,
    *,
    method: str,
    w_r: float = 1.0,
    sampler: str = "ancestral",
    steps: int = 128,
    gamma: float = 1.0,
    n: int = 8000,
    seed: int = 0,
    delta: float = 0.1,
) -> tuple[float, float]:
    """Sample x^b given the first ``frames_a`` frames x_a [C, k, H, W] with ``method`` (replacement or
    reconstruction guidance), and return (mean error, covariance error) of the x^b samples against
    the exact E[x^b | x^a], Cov[x^b | x^a] (errors as in :func:`moment_errors`)."""

    C, T, H, W = den.shape
    mask = torch.zeros(1, C, T, H, W, dtype=torch.bool)
    mask[:, :, :frames_a] = True
    x_full = torch.zeros(n, C, T, H, W, dtype=torch.float64)
    x_full[:, :, :frames_a] = x_a.to(torch.float64)
    gen = torch.Generator().manual_seed(seed)

    def noise(like: Tensor) -> Tensor:
        return torch.randn(like.shape, generator=gen, dtype=like.dtype)

    guided = condition(den, method, x_full, mask, w_r=w_r, noise=noise)
    z_1 = noise(x_full)
    grid = logsnr_grid(CosineSchedule(), steps)
    if sampler == "ancestral":
        x = sample_ancestral(guided, z_1, grid, gamma=gamma, noise=noise)
    else:
        x = sample_predictor_corrector(guided, z_1, grid, gamma=gamma, delta=delta, noise=noise)
    mean_b, cov_b = den.conditional(mask[0].reshape(-1), x_a)
    b = ~mask[0].reshape(-1)
    return moment_errors(x.reshape(n, -1)[:, b], mean_b, cov_b)
