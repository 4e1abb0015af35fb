"""Building blocks of the factorized space-time U-Net (paper §2).

Layout inside the network: frames as batch, ``h`` is [B·T, C, H, W]. Convolutions are 1×3×3
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

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        # h: [B·T, C_in, H, W]; emb: [B·T, E] (already SiLU-activated)
        y = self.conv1(F.silu(self.norm1(h)))  # [B·T, C_out, H, W]
        y = y + self.emb(emb)[:, :, None, None]
        y = self.conv2(self.dropout(F.silu(self.norm2(y))))
        return self.skip(h) + y


class SpatialAttention(nn.Module):
    """Self-attention over H·W positions of each frame (frames are batch)."""

    def __init__(self, channels: int, head_dim: int, groups: int):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, h: Tensor) -> Tensor:
        N, C, H, W = h.shape  # N = B·T
        qkv = self.qkv(self.norm(h)).reshape(N, 3, self.heads, C // self.heads, H * W)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each [N, heads, HW, d]
        y = F.scaled_dot_product_attention(q, k, v)  # [N, heads, HW, d]
        y = y.transpose(-1, -2).reshape(N, C, H, W)
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


def temporal_allowed(is_image: Tensor) -> Tensor:
    """Which frame pairs may attend, [B, T, T] bool, from the per-frame image mask [B, T].

    Video frames attend to video frames; an appended independent image attends to itself only
    (identity attention, paper §3); no video frame attends to an image frame.
    """
    T = is_image.shape[1]
    video = ~is_image
    eye = torch.eye(T, dtype=torch.bool, device=is_image.device)
    return eye[None] | (video[:, :, None] & video[:, None, :])


class TemporalAttention(nn.Module):
    """Self-attention over the T frames at each spatial position (H·W positions are batch), with
    relative position embeddings on the keys (Shaw et al. 2018, key term) and the joint-training mask."""

    def __init__(self, channels: int, head_dim: int, groups: int, max_distance: int):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.head_dim = channels // self.heads
        self.norm = norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.relpos = RelativePositionEmbedding(max_distance, self.head_dim)
        self.out = zero_init(nn.Linear(channels, channels))

    def forward(self, h: Tensor, B: int, T: int, allowed: Tensor | None) -> Tensor:
        # h: [B·T, C, H, W]; allowed: [B, T, T] bool or None (all frames are one video)
        N, C, H, W = h.shape
        x = self.norm(h).reshape(B, T, C, H * W).permute(0, 3, 1, 2).reshape(B * H * W, T, C)  # [B·HW, T, C]
        q, k, v = self.qkv(x).reshape(B * H * W, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # q, k, v: [B·HW, heads, T, d]
        scale = self.head_dim**-0.5
        rel = self.relpos(T).to(q.dtype)  # [T, T, d]
        bias = torch.einsum("nhid,ijd->nhij", q, rel) * scale  # [B·HW, heads, T, T]
        if allowed is not None:
            neg = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill(~allowed, float("-inf"))
            bias = (bias.view(B, H * W, self.heads, T, T) + neg[:, None, None]).view(B * H * W, self.heads, T, T)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # [B·HW, heads, T, d]
        y = self.out(y.transpose(1, 2).reshape(B * H * W, T, C))  # [B·HW, T, C]
        y = y.reshape(B, H * W, T, C).permute(0, 2, 3, 1).reshape(N, C, H, W)
        return h + y


class SpaceTimeAttention(nn.Module):
    """A spatial attention block followed by a temporal attention block (paper §2)."""

    def __init__(self, channels: int, head_dim: int, groups: int, max_distance: int):
        super().__init__()
        self.spatial = SpatialAttention(channels, head_dim, groups)
        self.temporal = TemporalAttention(channels, head_dim, groups, max_distance)

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
        return self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))


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
