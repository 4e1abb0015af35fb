"""U-Net settings and the named sizes (paper §2, Appendix A).

The paper's six models are given by Appendix A; the paper does not report parameter counts,
ResBlock layout, norm layers or head counts — our choices are documented on the fields
(GroupNorm with 32 groups, BigGAN/ADM-style ResBlocks, heads = channels / head_dim).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from vdm.config_base import ConfigError, from_dict


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    size: str = "custom"  # name from SIZES this config was built from (informative)
    # frame side (pixels) the network is built for; attention levels follow from it (follows from data.resolution)
    image_size: int = 64
    in_channels: int = 3  # video channels (1 grayscale, 3 RGB); output has the same count (follows from data.channels)
    base_channels: int = 128  # channels at the first level
    channel_mult: tuple[int, ...] = (1, 2, 4, 8)  # channels per level = base_channels × mult; K levels
    num_res_blocks: int = 2  # ResBlocks per level on the way down (one more on the way up)
    attention_resolutions: tuple[int, ...] = (8, 16, 32)  # feature-map sides (pixels) with spatial+temporal attention
    head_dim: int = 64  # channels per attention head (heads = channels / head_dim)
    emb_dim: int = 1024  # conditioning embedding width (λ_t, class, text), paper: 1024
    emb_mlp_layers: int = 4  # MLP layers applied to the summed conditioning embedding (paper: 2–4)
    dropout: float = 0.1  # dropout inside ResBlocks (paper: 0.1 UCF/BAIR/Kinetics, 0.0 text)
    num_classes: int = 0  # class-conditioning labels (0: no class embedding); follows from data.num_classes, or 0
    text_dim: int = 0  # width of the frozen text encoder's token embeddings (0: no text conditioning)
    relpos_max_distance: int = 32  # relative frame distances are clipped to ±this (Shaw et al. 2018)
    norm_groups: int = 32  # GroupNorm groups (capped to divide the channel count)
    # Memory option, not in the paper: recompute each U-Net level (ResBlock + attention) in the backward
    # pass (torch.utils.checkpoint) instead of keeping its activations: lower peak memory for about one
    # more forward pass of time; outputs and gradients are unchanged (dropout draws are replayed).
    gradient_checkpointing: bool = False
    # GroupNorm → SiLU → projection blocks (every ResBlock half, the attention inputs, the output head)
    # in training without autocast: True keeps only the block's input and recomputes the normalisation and
    # activation in the backward pass (less activation memory); False keeps the autograd ops' own inputs
    # (no recomputation). At the bench/unet.py setting against lucidrains' network (CPU, 2 threads):
    # False: train step x2.22, peak RSS 0.47 of theirs; True: x1.94, 0.40. Same outputs and gradients up
    # to float32 rounding. A resume may change it (vdm.train.loop.MODEL_EXECUTION_FIELDS).
    recompute_norm_act: bool = False

    def validate(self) -> None:
        if self.head_dim <= 0:
            raise ConfigError(f"head_dim must be > 0, got {self.head_dim}")
        levels = len(self.channel_mult)
        if self.image_size % (2 ** (levels - 1)):
            raise ConfigError(
                f"image_size {self.image_size} is not divisible by 2^{levels - 1} (channel_mult has {levels} levels)"
            )
        if self.emb_mlp_layers < 1:
            raise ConfigError(f"emb_mlp_layers must be >= 1, got {self.emb_mlp_layers}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Feature-map side per level."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mult)))


_PAPER_COMMON = dict(head_dim=64, emb_dim=1024, attention_resolutions=(8, 16, 32), image_size=64, in_channels=3)

# Appendix A, "Details and hyperparameters". text_dim 1024 = BERT-large token width.
SIZES: dict[str, dict[str, Any]] = {
    "ucf101": dict(_PAPER_COMMON, base_channels=256, channel_mult=(1, 2, 4, 8), num_res_blocks=2,
                   emb_mlp_layers=4, dropout=0.1),
    "bair": dict(_PAPER_COMMON, base_channels=128, channel_mult=(1, 2, 3, 4), num_res_blocks=3,
                 emb_mlp_layers=2, dropout=0.1),
    "kinetics600": dict(_PAPER_COMMON, base_channels=256, channel_mult=(1, 2, 4, 8), num_res_blocks=2,
                        emb_mlp_layers=2, dropout=0.1),
    "text-small": dict(_PAPER_COMMON, base_channels=128, channel_mult=(1, 2, 4, 8), num_res_blocks=2,
                       emb_mlp_layers=4, dropout=0.0, text_dim=1024),
    "text-large-16x64": dict(_PAPER_COMMON, base_channels=256, channel_mult=(1, 2, 4, 8), num_res_blocks=2,
                             emb_mlp_layers=4, dropout=0.0, text_dim=1024),
    "text-large-9x128": dict(_PAPER_COMMON, image_size=128, base_channels=128, channel_mult=(1, 2, 4, 8, 16),
                             num_res_blocks=2, head_dim=128, emb_mlp_layers=4, dropout=0.0, text_dim=1024),
    # Small CPU sizes (not in the paper).
    "demo": dict(image_size=32, in_channels=1, base_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1,
                 attention_resolutions=(8, 16), head_dim=32, emb_dim=128, emb_mlp_layers=2, dropout=0.0,
                 norm_groups=8),
    "tiny": dict(image_size=16, in_channels=1, base_channels=16, channel_mult=(1, 2), num_res_blocks=1,
                 attention_resolutions=(8,), head_dim=16, emb_dim=32, emb_mlp_layers=2, dropout=0.0,
                 norm_groups=4),
}

PAPER_SIZES = ("ucf101", "bair", "kinetics600", "text-small", "text-large-16x64", "text-large-9x128")


def resolve_model_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    """Expand ``{size: name, **overrides}`` into a full field dict (overrides win)."""
    d = dict(d)
    name = d.get("size")
    if name is None or name == "custom":
        return d
    if name not in SIZES:
        raise ConfigError(f"model.size: unknown size {name!r} (known: {', '.join(SIZES)})")
    out = dict(SIZES[name])
    out.update(d)
    return out


def named_size(name: str, **overrides: Any) -> UNetConfig:
    return from_dict(UNetConfig, resolve_model_dict({"size": name, **overrides}), "model")
