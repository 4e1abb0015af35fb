"""Per-sample random streams: sample i depends only on (checkpoint, settings, seed i).

Like EDM's ``StackedRandomGenerator``: one ``torch.Generator`` per sample, and every random draw of
a batch is the stack of one draw per sample. Splitting the same seeds into other batch sizes, or
running them on another number of devices, gives the same videos.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class StackedGenerator:
    """``StackedGenerator(seeds, device)``: ``randn_like(x)`` [B, ...] with row i from seed i's generator."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        if len(seeds) == 0:
            raise ValueError("StackedGenerator needs at least one seed")
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = [torch.Generator(self.device).manual_seed(s) for s in self.seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        """Standard normal [B, *shape[1:]]; ``shape[0]`` must equal the number of seeds."""
        self._check(shape)
        return torch.stack(
            [torch.randn(tuple(shape[1:]), generator=g, device=self.device, dtype=dtype) for g in self.generators]
        )

    def randn_like(self, x: Tensor) -> Tensor:
        return self.randn(x.shape, dtype=x.dtype).to(x.device)

    def randint(self, high: int) -> Tensor:
        """One integer in [0, high) per sample, [B] long."""
        return torch.stack([torch.randint(high, (), generator=g, device=self.device) for g in self.generators])

    def _check(self, shape: Sequence[int]) -> None:
        if len(shape) == 0 or shape[0] != len(self.generators):
            raise ValueError(f"batch dimension {tuple(shape)[:1]} does not match {len(self.generators)} seeds")


def sample_seeds(first: int, num: int) -> list[int]:
    """The seeds of ``num`` samples: ``first, first + 1, ...`` (recorded in the samples file)."""
    return [first + i for i in range(num)]
