"""Building blocks of the factorized space-time U-Net (paper §2).

Layout inside the network: frames as batch, ``h`` is [B·T, C, H, W] in channels-last memory
([B·T, H, W, C], so attention tokens are views). Convolutions are 1×3×3
(space only, applied per frame as 2-D convolutions), GroupNorm normalises each frame on its
own, so frames are mixed by temporal attention and nothing else. No diffusion math here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with at most ``groups`` groups, reduced until it divides ``channels``."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels, eps=1e-6)


def zero_init(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


# --- Memory-lean fused blocks -------------------------------------------------------------------
# GroupNorm → SiLU (→ dropout) → conv is the pattern of every ResBlock half and of the output head;
# GroupNorm → projection opens every attention block. Run as separate autograd ops, each keeps its
# own input for the backward pass (the norm keeps h, SiLU keeps the normalised tensor, the conv keeps
# the activation): three activation-sized tensors per conv. ``_NormActProject`` keeps only h (plus a
# 1-byte dropout mask) and recomputes the cheap normalisation and activation in the backward pass; the
# projection (the expensive part) is not recomputed. Forward values and gradients are the same ops
# on the same numbers, so results equal the unfused modules. Under autocast (bf16 training on CUDA)
# the plain module path is used.


def _norm_act(h: Tensor, norm: nn.GroupNorm, weight: Tensor, bias: Tensor, act: bool) -> Tensor:
    a = F.group_norm(h, norm.num_groups, weight, bias, norm.eps)
    return F.silu(a) if act else a


def _dropout_scale(keep: Tensor, p: float, dtype: torch.dtype) -> Tensor:
    # the numbers of F.dropout (CPU): bernoulli(1 − p) noise divided by (1 − p), then x · noise
    return keep.to(dtype).div_(1.0 - p)


class _NormActProject(torch.autograd.Function):
    """y = project(dropout(SiLU(GroupNorm(h)))), saving h instead of the intermediate activations."""

    @staticmethod
    def forward(ctx, h, norm_w, norm_b, proj_w, proj_b, norm, proj, act, p):
        a = _norm_act(h, norm, norm_w, norm_b, act)
        keep = None
        if p > 0.0:
            noise = torch.empty_like(a).bernoulli_(1.0 - p)  # the draw F.dropout makes
            keep = noise.bool()  # saved as 1 byte per element
            a = a * noise.div_(1.0 - p)
        y = _project(proj, a, proj_w, proj_b)
        ctx.norm, ctx.proj, ctx.act, ctx.p = norm, proj, act, p
        ctx.save_for_backward(h, norm_w, norm_b, proj_w, keep)
        return y

    @staticmethod
    def backward(ctx, gy):
        h, norm_w, norm_b, proj_w, keep = ctx.saved_tensors
        need_h, need_nw, need_nb, need_pw, need_pb = ctx.needs_input_grad[:5]
        with torch.enable_grad():
            h_ = h.detach().requires_grad_(need_h)
            nw = norm_w.detach().requires_grad_(need_nw)
            nb = norm_b.detach().requires_grad_(need_nb)
            a = _norm_act(h_, ctx.norm, nw, nb, ctx.act)  # recomputed: same ops, same numbers
            if keep is not None:
                a = a * _dropout_scale(keep, ctx.p, a.dtype)
        ga, gpw, gpb = _project_backward(ctx.proj, gy, a.detach(), proj_w, need_h or need_nw or need_nb,
                                         need_pw, need_pb)
        inputs = [t for t, need in ((h_, need_h), (nw, need_nw), (nb, need_nb)) if need]
        grads = iter(torch.autograd.grad(a, inputs, ga) if inputs else ())
        gh = next(grads) if need_h else None
        gnw = next(grads) if need_nw else None
        gnb = next(grads) if need_nb else None
        return gh, gnw, gnb, gpw, gpb, None, None, None, None


def _project(proj: nn.Module, a: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    if isinstance(proj, nn.Conv2d):
        return F.conv2d(a, w, b, proj.stride, proj.padding, proj.dilation, proj.groups)
    # nn.Linear over channels of a [N, C, H, W] map: tokens [N, H, W, C_out]
    return F.linear(a.permute(0, 2, 3, 1), w, b)


def _project_backward(proj: nn.Module, gy: Tensor, a: Tensor, w: Tensor, need_a: bool, need_w: bool,
                      need_b: bool) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    has_b = proj.bias is not None
    if isinstance(proj, nn.Conv2d):
        return torch.ops.aten.convolution_backward(
            gy, a, w, [w.shape[0]] if has_b else None, list(proj.stride), list(proj.padding), list(proj.dilation),
            False, [0, 0], proj.groups, [need_a, need_w, need_b and has_b])
    # Linear over channels: gy tokens [N, H, W, C_out], a [N, C, H, W]
    gy2 = gy.reshape(-1, gy.shape[-1])  # [N·H·W, C_out]
    ga = (gy @ w).permute(0, 3, 1, 2) if need_a else None  # [N, C, H, W]
    gw = gy2.t() @ a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]) if need_w else None  # [C_out, C]
    gb = gy2.sum(0) if need_b and has_b else None
    return ga, gw, gb


def norm_act_project(h: Tensor, norm: nn.GroupNorm, proj: nn.Module, *, act: bool = True,
                     dropout: float = 0.0, training: bool = False, recompute: bool = True) -> Tensor:
    """``proj(dropout(SiLU(norm(h))))`` (SiLU if ``act``) for h [N, C, H, W]; ``proj`` is a Conv2d
    (output [N, C_out, H', W']) or a Linear over channels (output tokens [N, H, W, C_out]).

    With gradients on and ``recompute`` it keeps only h for the backward pass (see ``_NormActProject``);
    otherwise the separate autograd ops keep their own inputs (more memory, no recomputation)."""
    p = dropout if training else 0.0
    if recompute and torch.is_grad_enabled() and not torch.is_autocast_enabled(h.device.type):
        return _NormActProject.apply(h, norm.weight, norm.bias, proj.weight, proj.bias, norm, proj, act, p)
    a = norm(h)
    if act:
        a = F.silu(a, inplace=not torch.is_grad_enabled())
    if p > 0.0:
        a = F.dropout(a, p, True)
    if isinstance(proj, nn.Conv2d):
        return proj(a)
    return proj(a.permute(0, 2, 3, 1))


def logsnr_embedding(logsnr: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding [B, dim] of λ, mapped first to t' = arctan(e^{−λ/2})/(π/2) ∈ [0, 1] and scaled
    by 1000 (the convention of Google's diffusion code), so the standard timestep frequencies apply."""
    t = torch.atan(torch.exp(-0.5 * logsnr.float())) / (0.5 * math.pi) * 1000.0  # [B]
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=logsnr.device, dtype=torch.float32) / half)
    args = t[:, None] * freqs[None]  # [B, half]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """GroupNorm → SiLU → 1×3×3 conv → + emb → GroupNorm → SiLU → dropout → 1×3×3 conv, plus skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int,
                 recompute_norm_act: bool):
        super().__init__()
        self.recompute_norm_act = recompute_norm_act  # UNetConfig.recompute_norm_act
        self.norm1 = norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        # h: [B·T, C_in, H, W]; emb: [B·T, E] (already SiLU-activated)
        y = norm_act_project(h, self.norm1, self.conv1, recompute=self.recompute_norm_act)  # [B·T, C_out, H, W]
        y = y + self.emb(emb)[:, :, None, None]
        y = norm_act_project(y, self.norm2, self.conv2, dropout=self.dropout.p, training=self.training,
                             recompute=self.recompute_norm_act)
        return self.skip(h) + y


class SpatialAttention(nn.Module):
    """Self-attention over H·W positions of each frame (frames are batch)."""

    def __init__(self, channels: int, head_dim: int, groups: int, recompute_norm_act: bool):
        super().__init__()
        self.recompute_norm_act = recompute_norm_act  # UNetConfig.recompute_norm_act
        self.heads = max(1, channels // head_dim)
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, h: Tensor) -> Tensor:
        N, C, H, W = h.shape  # N = B·T
        qkv = norm_act_project(h, self.norm, self.qkv, act=False, recompute=self.recompute_norm_act)  # [N, 3C, H, W]
        # tokens [N, HW, 3, heads, d] (a view when h is channels_last); q, k, v keep d contiguous, which
        # the fused CPU attention kernel needs (otherwise SDPA falls back to the O(HW²)-memory math path)
        qkv = qkv.permute(0, 2, 3, 1).reshape(N, H * W, 3, self.heads, C // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, HW, d]
        y = F.scaled_dot_product_attention(q, k, v)  # [N, heads, HW, d]
        y = y.transpose(1, 2).reshape(N, H, W, C).permute(0, 3, 1, 2)  # [N, C, H, W]
        return h + self.out(y)


class RelativePositionEmbedding(nn.Module):
    """Learned embeddings a_{j−i} of the clipped relative frame distance (Shaw et al. 2018).

    ``forward(T)`` returns a table [T, T, d] whose entry (i, j) depends on clip(j − i) only, so the
    network knows frame order without an absolute notion of time.
    """

    def __init__(self, max_distance: int, dim: int):
        super().__init__()
        self.max_distance = max_distance
        self.emb = nn.Parameter(torch.randn(2 * max_distance + 1, dim) * dim**-0.5)

    def forward(self, T: int) -> Tensor:
        pos = torch.arange(T, device=self.emb.device)
        rel = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance)  # [T, T]
        return self.emb[rel + self.max_distance]  # [T, T, d]

    def key_logits(self, q: Tensor) -> Tensor:
        """The Shaw key term q_i·a_{clip(j−i)} for queries q [..., T, d], as logits [..., T, T].

        Equal to ``einsum("...id,ijd->...ij", q, self(T))``, computed as one matrix product against
        the 2T − 1 distinct distances followed by a gather (no copy of q, no [T, T, d] table)."""
        T = q.shape[-2]
        r = torch.arange(-(T - 1), T, device=self.emb.device).clamp(-self.max_distance, self.max_distance)
        logits = q @ self.emb[r + self.max_distance].to(q.dtype).t()  # [..., T, 2T−1], column k: distance k−(T−1)
        pos = torch.arange(T, device=q.device)
        idx = pos[None, :] - pos[:, None] + (T - 1)  # [T, T]: column of distance j − i
        return logits.gather(-1, idx.expand(*logits.shape[:-1], T))  # [..., T, T]


def temporal_allowed(is_image: Tensor) -> Tensor:
    """Which frame pairs may attend, [B, T, T] bool, from the per-frame image mask [B, T].

    Video frames attend to video frames; an appended independent image attends to itself only
    (identity attention, paper §3); no video frame attends to an image frame.
    """
    T = is_image.shape[1]
    video = ~is_image
    eye = torch.eye(T, dtype=torch.bool, device=is_image.device)
    return eye[None] | (video[:, :, None] & video[:, None, :])


def temporal_sdpa(q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
    """softmax(q·kᵀ/√d + bias)·v over the frames: q, k, v [N, heads, T, d], bias [N, heads, T, T].

    On CPU as explicit matrix products: with T ≤ 16 frames and N = B·H·W sequences the fused CPU
    attention kernel's per-block overhead dominates (forward + backward of the temporal attention at the
    bench/unet.py shapes, 2 threads: 7.3 → 2.4 ms at [512, 3, 8, 32], 3.6 → 1.1 ms at [128, 6, 8, 32]) and
    the [T, T] attention matrices are small. Elsewhere (CUDA, long T) the fused kernels."""
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    logits = torch.baddbmm(bias.flatten(0, 1), q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2),
                           alpha=q.shape[-1] ** -0.5)  # [N·heads, T, T]
    return torch.bmm(logits.softmax(-1), v.flatten(0, 1)).view(q.shape)  # [N, heads, T, d]


class TemporalAttention(nn.Module):
    """Self-attention over the T frames at each spatial position (H·W positions are batch), with
    relative position embeddings on the keys (Shaw et al. 2018, key term) and the joint-training mask."""

    def __init__(self, channels: int, head_dim: int, groups: int, max_distance: int,
                 recompute_norm_act: bool):
        super().__init__()
        self.recompute_norm_act = recompute_norm_act  # UNetConfig.recompute_norm_act
        self.heads = max(1, channels // head_dim)
        self.head_dim = channels // self.heads
        self.norm = norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.relpos = RelativePositionEmbedding(max_distance, self.head_dim)
        self.out = zero_init(nn.Linear(channels, channels))

    def forward(self, h: Tensor, B: int, T: int, allowed: Tensor | None) -> Tensor:
        # h: [B·T, C, H, W]; allowed: [B, T, T] bool or None (all frames are one video)
        N, C, H, W = h.shape
        HW, heads, d = H * W, self.heads, self.head_dim
        qkv = norm_act_project(h, self.norm, self.qkv, act=False, recompute=self.recompute_norm_act)  # [B·T, H, W, 3C]
        qkv = qkv.reshape(B, T, HW, 3, heads, d).permute(3, 0, 2, 4, 1, 5).reshape(3, B * HW, heads, T, d)
        q, k, v = qkv.unbind(0)  # each [B·HW, heads, T, d]
        scale = d**-0.5
        bias = self.relpos.key_logits(q) * scale  # Shaw key term q_i·a_{j−i}, [B·HW, heads, T, T]
        if allowed is not None:
            bias = bias.view(B, HW, heads, T, T).masked_fill(~allowed[:, None, None], float("-inf"))
            bias = bias.view(B * HW, heads, T, T)
        y = temporal_sdpa(q, k, v, bias)  # [B·HW, heads, T, d]
        y = y.view(B, HW, heads, T, d).permute(0, 3, 1, 2, 4).reshape(N, H, W, C)  # frames as batch again
        return h + self.out(y).permute(0, 3, 1, 2)  # [B·T, C, H, W]


class SpaceTimeAttention(nn.Module):
    """A spatial attention block followed by a temporal attention block (paper §2)."""

    def __init__(self, channels: int, head_dim: int, groups: int, max_distance: int,
                 recompute_norm_act: bool):
        super().__init__()
        self.spatial = SpatialAttention(channels, head_dim, groups, recompute_norm_act)
        self.temporal = TemporalAttention(channels, head_dim, groups, max_distance, recompute_norm_act)

    def forward(self, h: Tensor, B: int, T: int, allowed: Tensor | None) -> Tensor:
        return self.temporal(self.spatial(h), B, T, allowed)


class Downsample(nn.Module):
    """Halve H and W (space only): 1×3×3 conv with stride (1, 2, 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return self.conv(h)


class Upsample(nn.Module):
    """Double H and W (space only): nearest neighbour then 1×3×3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))  # [N, C, 2H, 2W]


class AttentionPool(nn.Module):
    """Attention pooling of a token sequence [B, L, D] into one vector [B, E] (paper: BERT-large tokens).

    The query is a learned vector plus a projection of the masked mean token (CLIP-style pooling).
    """

    def __init__(self, in_dim: int, out_dim: int, head_dim: int = 64):
        super().__init__()
        self.heads = max(1, out_dim // head_dim)
        self.kv = nn.Linear(in_dim, 2 * out_dim)
        self.q_mean = nn.Linear(in_dim, out_dim)
        self.q = nn.Parameter(torch.zeros(out_dim))
        self.out = nn.Linear(out_dim, out_dim)

    def forward(self, tokens: Tensor, mask: Tensor | None) -> Tensor:
        B, L, _ = tokens.shape
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=tokens.device)
        m = mask.to(tokens.dtype)[..., None]  # [B, L, 1]
        mean = (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)  # [B, D]
        E = self.q.shape[0]
        q = (self.q + self.q_mean(mean)).reshape(B, self.heads, 1, E // self.heads)  # [B, h, 1, d]
        k, v = self.kv(tokens).reshape(B, L, 2, self.heads, E // self.heads).permute(2, 0, 3, 1, 4)  # [B, h, L, d]
        safe = mask | ~mask.any(1, keepdim=True)  # an all-masked row attends everywhere (then zeroed by the caller)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=safe[:, None, None, :])  # [B, h, 1, d]
        return self.out(y.reshape(B, E))
