"""Guidance as denoiser wrappers (paper §1 classifier-free guidance, §4 conditional sampling).

Each wrapper is itself a denoiser ``(z_t, logsnr_t, **extra_args) -> x̃`` so it works with every
sampler (ancestral, predictor-corrector) and wrappers compose, e.g.
``ReconstructionGuidance(ClassifierFreeGuidance(Denoiser(net, "v"), w=2), x_a, mask=..., w_r=9)``.
All wrappers work on tensors of any rank; ``logsnr_t`` is [B].
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from vdm.diffusion.schedule import alpha_sigma, append_dims
from vdm.sampling.samplers import DenoiserFn, NoiseFn


def _ab(logsnr_t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    alpha, sigma = alpha_sigma(logsnr_t.to(torch.float64))
    return append_dims(alpha, like.ndim).to(like.dtype), append_dims(sigma, like.ndim).to(like.dtype)


def _twice(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, Tensor):
        return torch.cat([v, v])
    if isinstance(v, (list, tuple)):
        return type(v)(list(v) + list(v))
    return v


# ---------------------------------------------------------------------------------------------
# Classifier-free guidance (paper §1): ε̃ = (1 + w) ε(z, c) − w ε(z, ∅)
# ---------------------------------------------------------------------------------------------
class ClassifierFreeGuidance:
    """Classifier-free guidance with weight ``w`` (w = 0: no guidance; lucidrains' cond_scale = 1 + w).

    Conditional and unconditional branches run in ONE batched call: the batch is doubled and the
    wrapped denoiser gets ``cond_keep`` = [True]*B + [False]*B (the U-Net's null conditioning).
    Since ε = (z − α x)/σ is affine in x at fixed z and the weights (1 + w) and −w sum to 1, the
    guided ε̃ corresponds exactly to x̃ = (1 + w) x̂(z, c) − w x̂(z, ∅), which is what is returned.
    With w = 0 the wrapper calls the conditional denoiser alone, so it equals it exactly.
    """

    def __init__(self, denoiser: DenoiserFn, w: float):
        if w < 0:
            raise ValueError(f"guidance weight w must be >= 0, got {w}")
        self.denoiser = denoiser
        self.w = float(w)

    def __call__(self, z_t: Tensor, logsnr_t: Tensor, **cond: Any) -> Tensor:
        if self.w == 0.0:
            return self.denoiser(z_t, logsnr_t, **cond)
        B = z_t.shape[0]
        keep = cond.pop("cond_keep", None)
        keep = torch.ones(B, dtype=torch.bool, device=z_t.device) if keep is None else keep.to(torch.bool)
        keep2 = torch.cat([keep, torch.zeros_like(keep)])  # [2B]: conditional half, then null half
        cond2 = {k: _twice(v) for k, v in cond.items()}
        x_both = self.denoiser(torch.cat([z_t, z_t]), torch.cat([logsnr_t, logsnr_t]), cond_keep=keep2, **cond2)
        x_c, x_u = x_both[:B], x_both[B:]  # [B, ...] each
        return x_c + self.w * (x_c - x_u)


# ---------------------------------------------------------------------------------------------
# Conditioning an unconditional model on x^a (paper §4)
# ---------------------------------------------------------------------------------------------
class ReplacementGuidance:
    """Replacement method (Song et al. 2021; paper §4) for x = [x^a, x^b] split by a boolean ``mask``.

    ``x_a`` has the shape of z (values outside ``mask`` are ignored); ``mask`` broadcasts against z,
    True on the conditioning part a (e.g. the first k frames: mask [1, 1, T, 1, 1]).
    At every call z^a_t is replaced by a fresh forward sample z^a_t = α_t x^a + σ_t ε ~ q(z^a_t | x^a)
    (ε from ``noise``, i.e. from the per-sample generators), the wrapped denoiser sees [z^a_t, z^b_t],
    and the returned x̂ has x̂^a = x^a, so the final sample reproduces the conditioning exactly.
    """

    def __init__(self, denoiser: DenoiserFn, x_a: Tensor, mask: Tensor, noise: NoiseFn | None = None):
        self.denoiser = denoiser
        self.x_a = x_a
        self.mask = mask.to(torch.bool)
        self.noise = noise or torch.randn_like
        try:
            torch.broadcast_shapes(self.mask.shape, x_a.shape)
        except RuntimeError:
            raise ValueError(f"mask {tuple(mask.shape)} does not broadcast against x_a {tuple(x_a.shape)}") from None

    def replace(self, z_t: Tensor, logsnr_t: Tensor) -> Tensor:
        alpha, sigma = _ab(logsnr_t, z_t)
        z_a = alpha * self.x_a.to(z_t.dtype) + sigma * self.noise(z_t)  # [B, ...] ~ q(z_t | x^a)
        return torch.where(self.mask, z_a, z_t)

    def __call__(self, z_t: Tensor, logsnr_t: Tensor, **extra: Any) -> Tensor:
        z = self.replace(z_t, logsnr_t)
        x_hat = self.denoiser(z, logsnr_t, **extra)  # [B, ...]
        return torch.where(self.mask, self.x_a.to(x_hat.dtype), x_hat)


class ReconstructionGuidance:
    """Reconstruction guidance (paper §4): x̃ = x̂ − (w_r α_t / 2) ∇_z ‖x^a − x̂^a(z_t)‖².

    Modes:
    - ``mask`` (temporal: prediction, extension): x^a is part of x; z^a is replaced as in
      :class:`ReplacementGuidance` (the paper's "variant of the replacement method"), the gradient
      is taken w.r.t. z^b only, and x̂^a = x^a is returned;
    - ``observe`` (spatial super-resolution): x^a = observe(x) is a differentiable operator of the
      whole video (bilinear downsampling); the gradient is w.r.t. all of z_t, nothing is replaced;
    - both (super-resolution in temporal blocks): ``x_a`` is the masked part as in ``mask`` mode and
      ``observed`` the target of ``observe``; the squared error is the sum of both terms, z^a is
      replaced and x̂^a = x^a returned as in ``mask`` mode.
    w_r = 1 is the plain Gaussian approximation q(x^a | z_t) ≈ N(x̂^a, σ_t²/α_t² I); the paper finds
    w_r > 1 better on real data (BAIR 50, Kinetics 9). The gradient is one backward pass through the
    wrapped denoiser (per-sample: the loss is a sum over independent samples).
    """

    def __init__(
        self,
        denoiser: DenoiserFn,
        x_a: Tensor,
        *,
        w_r: float = 1.0,
        mask: Tensor | None = None,
        observe: Callable[[Tensor], Tensor] | None = None,
        observed: Tensor | None = None,
        noise: NoiseFn | None = None,
    ):
        if mask is None and observe is None:
            raise ValueError("ReconstructionGuidance needs a mask (temporal), an observe operator, or both")
        if (observed is not None) != (mask is not None and observe is not None):
            raise ValueError("ReconstructionGuidance: `observed` (the target of observe) goes with mask and "
                             "observe together; with observe alone x_a is its target")
        if w_r < 0:
            raise ValueError(f"w_r must be >= 0, got {w_r}")
        self.denoiser = denoiser
        self.x_a = x_a
        self.w_r = float(w_r)
        self.observe = observe
        self.observed = x_a if mask is None else observed  # target of observe (None: no observe term)
        self.replacement = None if mask is None else ReplacementGuidance(denoiser, x_a, mask, noise)

    def __call__(self, z_t: Tensor, logsnr_t: Tensor, **extra: Any) -> Tensor:
        z = z_t if self.replacement is None else self.replacement.replace(z_t, logsnr_t)
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            x_hat = self.denoiser(z, logsnr_t, **extra)  # [B, ...]
            loss = x_hat.new_zeros(())
            if self.observe is not None:
                loss = loss + (self.observed.to(x_hat.dtype) - self.observe(x_hat)).pow(2).sum()  # observed residual
            if self.replacement is not None:
                m = self.replacement.mask
                loss = loss + torch.where(m, self.x_a.to(x_hat.dtype) - x_hat, torch.zeros_like(x_hat)).pow(2).sum()
            (grad,) = torch.autograd.grad(loss, z)  # ∇_z ‖x^a − x̂^a(z_t)‖², [B, ...]
        alpha, _ = _ab(logsnr_t, z_t)
        x_tilde = x_hat.detach() - (0.5 * self.w_r) * alpha * grad
        if self.replacement is None:
            return x_tilde
        return torch.where(self.replacement.mask, self.x_a.to(x_tilde.dtype), x_tilde)


# ---------------------------------------------------------------------------------------------
# x̂ clipping (sample.clip_x), once, outermost
# ---------------------------------------------------------------------------------------------
class ClipX:
    """Clamp the final x̃ to the data range [−1, 1] (``sample.clip_x``).

    The outermost wrapper: classifier-free guidance combines and reconstruction guidance
    differentiates the raw x̂ (a clamp inside would zero the reconstruction gradient wherever
    |x̂| > 1, and the guided combination of clamped predictions leaves the range again); the sampler
    then steps from the clipped x̃, as the authors' reference sampler does with its x̂ clipping.
    """

    def __init__(self, denoiser: DenoiserFn):
        self.denoiser = denoiser

    def __call__(self, z_t: Tensor, logsnr_t: Tensor, **extra: Any) -> Tensor:
        return self.denoiser(z_t, logsnr_t, **extra).clamp(-1.0, 1.0)


def condition(
    denoiser: DenoiserFn,
    method: str,
    x_a: Tensor,
    mask: Tensor,
    *,
    w_r: float = 1.0,
    noise: NoiseFn | None = None,
) -> DenoiserFn:
    """The masked conditional denoiser for ``method`` ∈ {"replacement", "reconstruction"}."""
    if method == "replacement":
        return ReplacementGuidance(denoiser, x_a, mask, noise)
    if method == "reconstruction":
        return ReconstructionGuidance(denoiser, x_a, mask=mask, w_r=w_r, noise=noise)
    raise ValueError(f"unknown conditioning method {method!r} (expected replacement or reconstruction)")
