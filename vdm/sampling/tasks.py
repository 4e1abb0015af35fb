"""Sampling tasks (paper §4): unconditional, video prediction, autoregressive extension, super-resolution.

Every task builds a (wrapped) denoiser and calls one sampler on a fresh z_1 ~ N(0, I) drawn from
the per-sample generators, so sample i depends only on its seed, its conditioning and the settings.
Videos are in x-space, float [B, C, T, H, W] in [−1, 1] (the data range).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vdm.diffusion.denoiser import Denoiser
from vdm.sampling.config import SampleConfig
from vdm.sampling.guidance import ClassifierFreeGuidance, ClipX, ReconstructionGuidance, condition
from vdm.sampling.samplers import DenoiserFn, logsnr_grid, sample
from vdm.sampling.seeds import StackedGenerator
from vdm.utils.precision import uses_bf16


def autocast_dtype(cfg: SampleConfig, device: torch.device | str) -> torch.dtype | None:
    """The network's autocast dtype for ``sample.precision`` on ``device`` (None: no autocast)."""
    return torch.bfloat16 if uses_bf16(cfg.precision, device) else None


def make_denoiser(net: nn.Module, prediction: str, cfg: SampleConfig,
                  device: torch.device | str = "cpu") -> DenoiserFn:
    """Network → raw x̂ denoiser (the network under bf16 autocast per ``sample.precision``), wrapped in
    classifier-free guidance when w > 0 (no clipping here: :func:`sample_block` clips the fully guided
    x̃ once, see :class:`~vdm.sampling.guidance.ClipX`)."""
    den: DenoiserFn = Denoiser(net, prediction, autocast=autocast_dtype(cfg, device))
    return ClassifierFreeGuidance(den, cfg.guidance_weight) if cfg.guidance_weight > 0 else den


def sample_block(
    cfg: SampleConfig,
    denoiser: DenoiserFn,
    shape: tuple[int, ...],
    schedule: Callable[[Tensor], Tensor],
    gen: StackedGenerator,
    *,
    extra_args: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    disable: bool = True,
) -> Tensor:
    """One sampler run: z_1 ~ N(0, I) of ``shape`` [B, C, T, H, W] from ``gen``, then ``cfg.sampler``.

    ``denoiser`` is the fully guided one (classifier-free, replacement / reconstruction guidance); with
    ``cfg.clip_x`` its x̃ is clipped to [−1, 1] here, after all guidance."""
    if cfg.clip_x:
        denoiser = ClipX(denoiser)
    z_1 = gen.randn(shape, dtype=dtype)  # [B, C, T, H, W]
    return sample(cfg, denoiser, z_1, logsnr_grid(schedule, cfg.steps), extra_args=extra_args,
                  noise=gen.randn_like, disable=disable)


def frame_mask(frames: int, cond: int, device: torch.device | str = "cpu") -> Tensor:
    """[1, 1, T, 1, 1] bool, True on the first ``cond`` frames (the part x^a)."""
    if not 0 < cond < frames:
        raise ValueError(f"conditioning frames must be in [1, {frames - 1}] for {frames}-frame blocks, got {cond}")
    mask = torch.zeros(1, 1, frames, 1, 1, dtype=torch.bool, device=device)
    mask[:, :, :cond] = True
    return mask


def predict(
    cfg: SampleConfig,
    denoiser: DenoiserFn,
    x_cond: Tensor,
    frames: int,
    schedule: Callable[[Tensor], Tensor],
    gen: StackedGenerator,
    **kwargs: Any,
) -> Tensor:
    """Video prediction: x_cond [B, C, k, H, W] are the first k frames; returns [B, C, frames, H, W]
    whose first k frames equal x_cond (paper §4: BAIR 1 → 15, Kinetics 5 → 11)."""
    B, C, k, H, W = x_cond.shape
    x_a = torch.zeros(B, C, frames, H, W, dtype=x_cond.dtype, device=x_cond.device)  # [B, C, T, H, W]
    x_a[:, :, :k] = x_cond
    mask = frame_mask(frames, k, x_cond.device)
    den = condition(denoiser, cfg.cond_method, x_a, mask, w_r=cfg.w_r, noise=gen.randn_like)
    return sample_block(cfg, den, (B, C, frames, H, W), schedule, gen, **kwargs)


def extend(
    cfg: SampleConfig,
    denoiser: DenoiserFn,
    shape: tuple[int, ...],
    total_frames: int,
    overlap: int,
    schedule: Callable[[Tensor], Tensor],
    gen: StackedGenerator,
    *,
    x_init: Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> Tensor:
    """Block-autoregressive extension (paper §4, Table 6) of ``frames``-frame blocks to ``total_frames``.

    shape: one block [B, C, frames, H, W]. The first block is sampled unconditionally (``x_init``
    None) or predicted from ``x_init`` [B, C, k, H, W]; every further block conditions on the last
    ``overlap`` frames generated so far and adds ``frames − overlap`` new ones.
    Returns [B, C, total_frames, H, W].
    """
    B, C, frames, H, W = shape
    if not 0 < overlap < frames:
        raise ValueError(f"overlap must be in [1, {frames - 1}] for {frames}-frame blocks, got {overlap}")
    if x_init is None:
        video = sample_block(cfg, denoiser, shape, schedule, gen, **kwargs)  # [B, C, T, H, W]
    elif x_init.shape[2] < frames:
        video = predict(cfg, denoiser, x_init, frames, schedule, gen, **kwargs)
    else:
        video = x_init
    if progress:
        progress(1)
    while video.shape[2] < total_frames:
        block = predict(cfg, denoiser, video[:, :, -overlap:], frames, schedule, gen, **kwargs)
        video = torch.cat([video, block[:, :, overlap:]], dim=2)  # [B, C, T', H, W]
        if progress:
            progress(1)
    return video[:, :, :total_frames]


def num_extension_blocks(frames: int, total_frames: int, overlap: int) -> int:
    """Sampler runs that :func:`extend` makes (for progress bars)."""
    blocks, have = 1, frames
    while have < total_frames:
        have += frames - overlap
        blocks += 1
    return blocks


def downsample(x: Tensor, factor: int, antialias: bool = False) -> Tensor:
    """Differentiable bilinear downsampling of every frame: [B, C, T, H, W] → [B, C, T, H/f, W/f].

    antialias=False with factor 2 averages each 2×2 block (align_corners=False samples between pixels).
    """
    if factor == 1:
        return x
    B, C, T, H, W = x.shape
    if H % factor or W % factor:
        raise ValueError(f"frame size {H}x{W} is not divisible by the super-resolution factor {factor}")
    frames = x.transpose(1, 2).reshape(B * T, C, H, W)  # [B·T, C, H, W]
    low = F.interpolate(frames, size=(H // factor, W // factor), mode="bilinear", align_corners=False,
                        antialias=antialias)  # [B·T, C, h, w]
    return low.reshape(B, T, C, H // factor, W // factor).transpose(1, 2)  # [B, C, T, h, w]


def superres(
    cfg: SampleConfig,
    denoiser: DenoiserFn,
    x_low: Tensor,
    factor: int,
    schedule: Callable[[Tensor], Tensor],
    gen: StackedGenerator,
    *,
    progress: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> Tensor:
    """Spatial super-resolution (paper §4): x_low [B, C, T, h, w] → [B, C, T, h·f, w·f] with
    reconstruction guidance through x̂^a = downsample(x̂) (the high-resolution model is unconditional).

    ``cfg.superres_block`` = k > 0 (and < T) super-resolves blocks of k frames in turn: block n covers
    frames [s, s + k) with s = (frames made so far) − ``cfg.overlap`` (the last block ends at T). Its
    x^a is the pair (its low-resolution frames, the high-resolution frames of [s, made) already sampled):
    the latter are replaced in z_t as in extension, and one reconstruction-guidance term covers both
    (‖x^a_low − downsample(x̂)‖² + ‖x^a_known − x̂_known‖²), so each block agrees with the
    low-resolution video and continues the previous one (paper Fig. 2 combines super-resolution with
    temporal extension; how is not stated)."""
    if cfg.cond_method != "reconstruction":
        raise ValueError("task superres needs sample.cond_method=reconstruction: the low-resolution video is "
                         "not a subset of z_t, so there is nothing to replace")
    B, C, T, h, w = x_low.shape
    H, W = h * factor, w * factor
    k = cfg.superres_block
    if k == 0 or k >= T:
        def observe(x: Tensor) -> Tensor:
            return downsample(x, factor, cfg.superres_antialias)

        den = ReconstructionGuidance(denoiser, x_low, observe=observe, w_r=cfg.w_r)
        video = sample_block(cfg, den, (B, C, T, H, W), schedule, gen, **kwargs)
        if progress:
            progress(1)
        return video
    if not 0 < cfg.overlap < k:
        raise ValueError(f"overlap must be in [1, {k - 1}] for {k}-frame super-resolution blocks, got {cfg.overlap}")
    video = x_low.new_zeros(B, C, 0, H, W)  # [B, C, made, H, W]
    while video.shape[2] < T:
        made = video.shape[2]
        s = 0 if made == 0 else min(made - cfg.overlap, T - k)
        n_known = made - s  # high-res frames [s, made) that this block continues (x^a, replaced as in extension)
        low = x_low[:, :, s:s + k]  # [B, C, k, h, w]

        def observe(x: Tensor) -> Tensor:
            return downsample(x, factor, cfg.superres_antialias)

        if n_known == 0:
            den = ReconstructionGuidance(denoiser, low, observe=observe, w_r=cfg.w_r)
        else:
            x_a = x_low.new_zeros(B, C, k, H, W)  # [B, C, k, H, W]
            x_a[:, :, :n_known] = video[:, :, s:made]
            den = ReconstructionGuidance(denoiser, x_a, mask=frame_mask(k, n_known, x_low.device), observe=observe,
                                         observed=low, w_r=cfg.w_r, noise=gen.randn_like)
        block = sample_block(cfg, den, (B, C, k, H, W), schedule, gen, **kwargs)  # [B, C, k, H, W]
        video = torch.cat([video, block[:, :, n_known:]], dim=2)
        if progress:
            progress(1)
    return video


def num_superres_blocks(frames: int, block: int, overlap: int) -> int:
    """Sampler runs that :func:`superres` makes for a ``frames``-frame video (for progress bars)."""
    if block == 0 or block >= frames:
        return 1
    blocks, made = 1, block
    while made < frames:
        made = min(made - overlap, frames - block) + block
        blocks += 1
    return blocks
