"""Text conditioning of a training batch: captions to frozen text-encoder tokens (paper §2)."""

from __future__ import annotations

import torch
from torch import Tensor


class TextConditioning:
    """Captions → frozen text-encoder tokens on the training device (paper §2: BERT-large embeddings).

    The encoder (``vdm.model.text_encoder``) computes each distinct caption once and caches it.
    """

    def __init__(self, name: str, text_dim: int):
        # imported here: the text encoder loads a transformer stack only text-conditioned runs need
        from vdm.model.text_encoder import load_text_encoder

        self.name = name or "minilm"
        self.encoder = load_text_encoder(self.name)
        if self.encoder.dim != text_dim:
            raise ValueError(f"train.text_encoder {self.name!r} gives {self.encoder.dim}-d tokens but the model "
                             f"has text_dim={text_dim}")

    def __call__(self, captions: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
        tokens, mask = self.encoder(captions)  # [b, L, D], [b, L]
        return tokens.to(device, torch.float32), mask.to(device, torch.bool)
