"""Samplers (paper §1): plain functions of a denoiser callable, k-diffusion style.

A *denoiser* is any callable ``denoiser(z_t, logsnr_t, **extra_args) -> x_hat`` with ``z_t`` [B, ...]
(any rank: images and videos alike) and ``logsnr_t`` [B]. Samplers know nothing of networks,
parameterizations or conditioning; guidance (``vdm.sampling.guidance``) wraps the denoiser.
The time grid (``logsnr_grid``) is separate from the solvers.

Ancestral step from t to s < t (paper §1), with r = e^{λ_t − λ_s}:
    μ̃_{s|t}(z_t, x̂) = r (α_s/α_t) z_t + (1 − r) α_s x̂
    σ̃²_{s|t} = (1 − r) σ_s²   (reverse-posterior variance),   σ²_{t|s} = (1 − r) σ_t²  (forward variance)
    z_s = μ̃_{s|t} + sqrt((σ̃²_{s|t})^{1−γ} (σ²_{t|s})^{γ}) ε
Langevin corrector (predictor-corrector sampler): z_s ← z_s − ½ δ σ_s ε̂(z_s) + √δ σ_s ε′.
The coefficients are computed in float64 (1 − r via expm1) and applied as Python floats.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vdm.sampling.config import SampleConfig

DenoiserFn = Callable[..., Tensor]  # (z_t [B, ...], logsnr_t [B], **extra_args) -> x_hat [B, ...]
NoiseFn = Callable[[Tensor], Tensor]  # like -> standard normal of the same shape/dtype/device
Callback = Callable[[dict[str, Any]], None]


def logsnr_grid(schedule: Callable[[Tensor], Tensor], steps: int) -> Tensor:
    """λ at the uniform grid t_i = 1 − i/steps, i = 0..steps: float64 [steps + 1], from λ(1) to λ(0)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return schedule(t).to(torch.float64)


def _alpha_sigma(logsnr: float) -> tuple[float, float]:
    """α = sqrt(sigmoid(λ)), σ = sqrt(sigmoid(−λ)) in float64."""
    return math.sqrt(1.0 / (1.0 + math.exp(-logsnr))), math.sqrt(1.0 / (1.0 + math.exp(logsnr)))


def ancestral_coefficients(logsnr_t: float, logsnr_s: float, gamma: float) -> tuple[float, float, float]:
    """(c_z, c_x, std) with z_s = c_z z_t + c_x x̂ + std ε (paper §1), all in float64."""
    if logsnr_s < logsnr_t:
        raise ValueError(f"ancestral step must increase λ (λ_t={logsnr_t}, λ_s={logsnr_s})")
    alpha_t, sigma_t = _alpha_sigma(logsnr_t)
    alpha_s, sigma_s = _alpha_sigma(logsnr_s)
    one_minus_r = -math.expm1(logsnr_t - logsnr_s)  # 1 − e^{λ_t − λ_s} ∈ [0, 1)
    r = 1.0 - one_minus_r
    c_z = r * alpha_s / alpha_t
    c_x = one_minus_r * alpha_s
    var_post = one_minus_r * sigma_s**2  # σ̃²_{s|t}
    var_fwd = one_minus_r * sigma_t**2  # σ²_{t|s}
    std = math.sqrt(var_post ** (1.0 - gamma) * var_fwd**gamma)  # 0**0 = 1, so γ ∈ {0, 1} is safe
    return c_z, c_x, std


def _full(logsnr: float, z: Tensor) -> Tensor:
    return torch.full((z.shape[0],), logsnr, dtype=z.dtype, device=z.device)  # [B]


def langevin_step(
    denoiser: DenoiserFn, z_s: Tensor, logsnr_s: float, delta: float, noise: NoiseFn, extra_args: Mapping[str, Any]
) -> Tensor:
    """One Langevin correction at level s (paper §1): z_s − ½ δ σ_s ε̂(z_s) + √δ σ_s ε′."""
    alpha_s, sigma_s = _alpha_sigma(logsnr_s)
    x_hat = denoiser(z_s, _full(logsnr_s, z_s), **extra_args)  # [B, ...]
    eps_hat = (z_s - alpha_s * x_hat) / sigma_s  # [B, ...]
    return z_s - (0.5 * delta * sigma_s) * eps_hat + (math.sqrt(delta) * sigma_s) * noise(z_s)


def _sample(
    denoiser: DenoiserFn,
    z: Tensor,
    logsnrs: Tensor,
    *,
    gamma: float,
    corrector_steps: int,
    delta: float,
    final_step: str,
    extra_args: Mapping[str, Any] | None,
    noise: NoiseFn | None,
    callback: Callback | None,
    disable: bool,
) -> Tensor:
    if final_step not in ("x_hat", "z_0"):
        raise ValueError(f"final_step must be 'x_hat' or 'z_0', got {final_step!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    extra_args = dict(extra_args or {})
    noise = noise or torch.randn_like
    lam = [float(v) for v in logsnrs.to(torch.float64)]
    steps = len(lam) - 1
    for i in tqdm(range(steps), disable=disable, desc="steps", leave=False):
        lam_t, lam_s = lam[i], lam[i + 1]
        x_hat = denoiser(z, _full(lam_t, z), **extra_args)  # [B, ...]
        if callback is not None:
            callback({"i": i, "z_t": z, "logsnr_t": lam_t, "x_hat": x_hat})
        last = i == steps - 1
        if last and final_step == "x_hat":
            return x_hat
        c_z, c_x, std = ancestral_coefficients(lam_t, lam_s, gamma)
        z = c_z * z + c_x * x_hat + std * noise(z)  # z_s [B, ...]
        if not last:
            for _ in range(corrector_steps):
                z = langevin_step(denoiser, z, lam_s, delta, noise, extra_args)
    return z


def sample_ancestral(
    denoiser: DenoiserFn,
    z: Tensor,
    logsnrs: Tensor,
    *,
    gamma: float = 0.0,
    final_step: str = "x_hat",
    extra_args: Mapping[str, Any] | None = None,
    noise: NoiseFn | None = None,
    callback: Callback | None = None,
    disable: bool = True,
) -> Tensor:
    """The paper's ancestral sampler. ``z``: z_1 ~ N(0, I) [B, ...]; ``logsnrs``: λ grid from t=1 to t=0.

    Returns x̂ at the last grid point before t = 0 (``final_step="x_hat"``) or z_0 (``"z_0"``).
    """
    return _sample(denoiser, z, logsnrs, gamma=gamma, corrector_steps=0, delta=0.0, final_step=final_step,
                   extra_args=extra_args, noise=noise, callback=callback, disable=disable)


def sample_predictor_corrector(
    denoiser: DenoiserFn,
    z: Tensor,
    logsnrs: Tensor,
    *,
    gamma: float = 0.0,
    delta: float = 0.1,
    corrector_steps: int = 1,
    final_step: str = "x_hat",
    extra_args: Mapping[str, Any] | None = None,
    noise: NoiseFn | None = None,
    callback: Callback | None = None,
    disable: bool = True,
) -> Tensor:
    """Predictor-corrector sampler (paper §1): every ancestral step to an intermediate level s is
    followed by ``corrector_steps`` Langevin corrections at s (none after the final step to t = 0)."""
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    return _sample(denoiser, z, logsnrs, gamma=gamma, corrector_steps=corrector_steps, delta=delta,
                   final_step=final_step, extra_args=extra_args, noise=noise, callback=callback, disable=disable)


def sample(cfg: SampleConfig, denoiser: DenoiserFn, z: Tensor, logsnrs: Tensor, **kwargs: Any) -> Tensor:
    """Dispatch on a :class:`~vdm.sampling.config.SampleConfig` (``sampler``, ``gamma``, δ, ...)."""
    common = dict(gamma=cfg.gamma, final_step=cfg.final_step, **kwargs)
    if cfg.sampler == "ancestral":
        return sample_ancestral(denoiser, z, logsnrs, **common)
    if cfg.sampler == "langevin":
        return sample_predictor_corrector(denoiser, z, logsnrs, delta=cfg.langevin_delta,
                                          corrector_steps=cfg.corrector_steps, **common)
    raise ValueError(f"unknown sampler {cfg.sampler!r} (expected ancestral or langevin)")


def network_evaluations(cfg: SampleConfig) -> int:
    """Denoiser calls per sampled block (CFG doubles the batch, not the count)."""
    corrections = cfg.corrector_steps * (cfg.steps - 1) if cfg.sampler == "langevin" else 0
    return cfg.steps + corrections

