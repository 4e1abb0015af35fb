"""Sampling settings (paper §1, §4, Appendix A)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    sampler: Literal["ancestral", "langevin"] = "ancestral"  # langevin = ancestral + Langevin corrector
    steps: int = 256  # ancestral steps on a uniform t grid from 1 to 0
    gamma: float = 0.1  # log-variance interpolation γ (paper: UCF 0.1, BAIR/Kinetics 0.0, text 0.3)
    guidance_weight: float = 0.0  # classifier-free guidance w (0 = none)
    num_samples: int = 16  # videos to generate
