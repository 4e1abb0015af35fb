"""Factorized space-time 3-D U-Net (paper §2, Figure 1, Appendix A).

``UNet3D(cfg)(z_t, logsnr_t, cls=, text=, text_mask=, is_image=, cond_keep=)`` (conditioning per example,
or per frame for joint image+video batches) returns the raw
network output with the shape of ``z_t`` ([B, C, T, H, W]; a 4-D image batch is a 1-frame video).
What the output means (ε, v or x) is decided by :mod:`vdm.diffusion.denoiser`, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vdm.model.config import UNetConfig
from vdm.model.layers import (
    AttentionPool,
    Downsample,
    ResBlock,
    SpaceTimeAttention,
    Upsample,
    logsnr_embedding,
    norm,
    norm_act_project,
    temporal_allowed,
    zero_init,
)


class _Level(nn.Module):
    """A ResBlock optionally followed by space-time attention."""

    def __init__(self, c_in: int, c_out: int, cfg: UNetConfig, attention: bool):
        super().__init__()
        self.res = ResBlock(c_in, c_out, cfg.emb_dim, cfg.dropout, cfg.norm_groups, cfg.recompute_norm_act)
        self.attn = (
            SpaceTimeAttention(c_out, cfg.head_dim, cfg.norm_groups, cfg.relpos_max_distance, cfg.recompute_norm_act)
            if attention else None
        )

    def forward(self, h: Tensor, emb: Tensor, B: int, T: int, allowed: Tensor | None) -> Tensor:
        h = self.res(h, emb)
        if self.attn is not None:
            h = self.attn(h, B, T, allowed)
        return h


class UNet3D(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        ch0 = cfg.base_channels
        E = cfg.emb_dim

        # Conditioning: λ_t (sinusoidal) + class + attention-pooled text, summed, then an MLP.
        self.logsnr_proj = nn.Linear(ch0, E)
        self.class_emb = nn.Embedding(cfg.num_classes, E) if cfg.num_classes > 0 else None
        self.text_pool = AttentionPool(cfg.text_dim, E) if cfg.text_dim > 0 else None
        mlp: list[nn.Module] = []
        for _ in range(cfg.emb_mlp_layers):
            mlp += [nn.SiLU(), nn.Linear(E, E)]
        self.emb_mlp = nn.Sequential(*mlp)

        self.conv_in = nn.Conv2d(cfg.in_channels, ch0, 3, padding=1)
        chans = [ch0]
        self.down = nn.ModuleList()
        ch = ch0
        res = cfg.image_size
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.down.append(_Level(ch, ch0 * mult, cfg, res in cfg.attention_resolutions))
                ch = ch0 * mult
                chans.append(ch)
            if level < len(cfg.channel_mult) - 1:
                self.down.append(Downsample(ch))
                chans.append(ch)
                res //= 2
        self.mid = nn.ModuleList([_Level(ch, ch, cfg, True), _Level(ch, ch, cfg, False)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(_Level(ch + chans.pop(), ch0 * mult, cfg, res in cfg.attention_resolutions))
                ch = ch0 * mult
            if level > 0:
                self.up.append(Upsample(ch))
                res *= 2
        self.norm_out = norm(ch, cfg.norm_groups)
        self.conv_out = zero_init(nn.Conv2d(ch, cfg.in_channels, 3, padding=1))

    def embed(
        self,
        logsnr_t: Tensor,
        cls: Tensor | None,
        text: Tensor | None,
        text_mask: Tensor | None,
        cond_keep: Tensor | None,
    ) -> Tensor:
        """Conditioning vector: [B, E], or [B, T, E] when the conditioning is given per frame.

        ``cls`` [B] or per frame [B, T]; ``text`` [B, L, D] (mask [B, L]) or per frame [B, T, L, D]
        (mask [B, T, L]) -- joint training (paper §3): each appended image frame carries the class or
        caption of the video it was taken from. ``cond_keep`` [B] bool, per example: False gives the
        null conditioning (c = 0) on every frame of that example.
        """
        B = logsnr_t.shape[0]
        emb = self.logsnr_proj(logsnr_embedding(logsnr_t, self.cfg.base_channels).to(self.logsnr_proj.weight.dtype))
        per_frame = (cls is not None and cls.ndim == 2) or (text is not None and text.ndim == 4)
        if per_frame:
            emb = emb[:, None]  # [B, 1, E], broadcast over frames
        keep = None if cond_keep is None else cond_keep.to(emb.dtype).reshape(B, *[1] * (emb.ndim - 1))
        if self.class_emb is not None and cls is not None:
            c = self.class_emb(cls)  # [B, E] or [B, T, E]
            if per_frame and c.ndim == 2:
                c = c[:, None]
            emb = emb + (c if keep is None else c * keep)
        if self.text_pool is not None and text is not None:
            if text.ndim == 4:  # per frame: pool each frame's caption
                Bt, Tt, L, D = text.shape
                mask = None if text_mask is None else text_mask.reshape(Bt * Tt, L)
                p = self.text_pool(text.reshape(Bt * Tt, L, D).to(emb.dtype), mask).reshape(Bt, Tt, -1)  # [B, T, E]
            else:
                p = self.text_pool(text.to(emb.dtype), text_mask)  # [B, E]
                if per_frame:
                    p = p[:, None]
            emb = emb + (p if keep is None else p * keep)
        assert emb.shape[0] == B
        return self.emb_mlp(emb)

    def forward(
        self,
        z_t: Tensor,
        logsnr_t: Tensor,
        *,
        cls: Tensor | None = None,
        text: Tensor | None = None,
        text_mask: Tensor | None = None,
        is_image: Tensor | None = None,
        cond_keep: Tensor | None = None,
    ) -> Tensor:
        image_input = z_t.ndim == 4
        if image_input:
            z_t = z_t[:, :, None]  # [B, C, 1, H, W]
        B, C, T, H, W = z_t.shape
        if logsnr_t.ndim == 0:
            logsnr_t = logsnr_t.expand(B)
        emb = F.silu(self.embed(logsnr_t, cls, text, text_mask, cond_keep))  # [B, E] or [B, T, E]
        if emb.ndim == 3:  # conditioning per frame
            if emb.shape[1] != T:
                raise ValueError(f"per-frame conditioning for {emb.shape[1]} frames, the input has {T}")
            emb = emb.reshape(B * T, -1)  # [B·T, E]
        else:
            emb = emb.repeat_interleave(T, dim=0)  # [B·T, E]
        allowed = None
        if is_image is not None and bool(is_image.any()):
            allowed = temporal_allowed(is_image.to(torch.bool))  # [B, T, T]

        # frames as batch, channels-last memory (tokens [B·T, H, W, C] for attention without copies)
        x = z_t.permute(0, 2, 3, 4, 1).reshape(B * T, H, W, C).permute(0, 3, 1, 2)  # [B·T, C, H, W]
        h = self.conv_in(x)  # [B·T, ch0, H, W]
        remat = self.cfg.gradient_checkpointing and self.training and torch.is_grad_enabled()

        def level(block: _Level, h: Tensor) -> Tensor:
            if remat:
                return checkpoint(block, h, emb, B, T, allowed, use_reentrant=False)
            return block(h, emb, B, T, allowed)

        skips = [h]
        for block in self.down:
            h = level(block, h) if isinstance(block, _Level) else block(h)
            skips.append(h)
        for block in self.mid:
            h = level(block, h)
        for block in self.up:
            if isinstance(block, _Level):
                h = level(block, torch.cat([h, skips.pop()], dim=1))
            else:
                h = block(h)
        out = norm_act_project(h, self.norm_out, self.conv_out, recompute=self.cfg.recompute_norm_act)  # [B·T, C, H, W]
        out = out.reshape(B, T, C, H, W).transpose(1, 2)  # [B, C, T, H, W]
        return out[:, :, 0] if image_input else out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
