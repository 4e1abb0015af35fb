"""Forward process q(z_t | x) = N(α_t x, σ_t² I) and conversions between x̂, ε̂ and v̂ (paper §1).

Shapes: ``x``, ``z``, ``eps``, ``v`` are [B, ...] (any rank); ``logsnr`` is [B] and is broadcast.
v-parameterization (Salimans & Ho 2022): v = α ε − σ x, so x = α z − σ v and ε = σ z + α v.
"""

from __future__ import annotations

from torch import Tensor

from vdm.diffusion.schedule import alpha_sigma, append_dims


def _ab(logsnr: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    alpha, sigma = alpha_sigma(logsnr)
    return append_dims(alpha, like.ndim).to(like.dtype), append_dims(sigma, like.ndim).to(like.dtype)


def q_sample(x: Tensor, logsnr: Tensor, eps: Tensor) -> Tensor:
    """z_t = α_t x + σ_t ε."""
    alpha, sigma = _ab(logsnr, x)
    return alpha * x + sigma * eps


def x_from_eps(z: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    """x̂ = (z − σ ε̂) / α."""
    alpha, sigma = _ab(logsnr, z)
    return (z - sigma * eps) / alpha


def eps_from_x(z: Tensor, x: Tensor, logsnr: Tensor) -> Tensor:
    """ε̂ = (z − α x̂) / σ."""
    alpha, sigma = _ab(logsnr, z)
    return (z - alpha * x) / sigma


def v_from_x_eps(x: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    """v = α ε − σ x."""
    alpha, sigma = _ab(logsnr, x)
    return alpha * eps - sigma * x


def x_from_v(z: Tensor, v: Tensor, logsnr: Tensor) -> Tensor:
    """x̂ = α z − σ v̂."""
    alpha, sigma = _ab(logsnr, z)
    return alpha * z - sigma * v


def eps_from_v(z: Tensor, v: Tensor, logsnr: Tensor) -> Tensor:
    """ε̂ = σ z + α v̂."""
    alpha, sigma = _ab(logsnr, z)
    return sigma * z + alpha * v


def v_from_x(z: Tensor, x: Tensor, logsnr: Tensor) -> Tensor:
    """v̂ from z and x̂: v = α ε − σ x with ε = (z − α x)/σ, i.e. v = (α z − x)/σ."""
    alpha, sigma = _ab(logsnr, z)
    return (alpha * z - x) / sigma
