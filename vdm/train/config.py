"""Training and launcher settings (paper Appendix A; options the paper is silent on are named)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000  # optimizer steps
    batch_size: int = 128  # global batch (videos per step, all ranks and accumulation together)
    lr: float = 3e-4  # Adam learning rate
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    weight_decay: float = 0.0
    ema_decay: float = 0.9999  # EMA of the weights (paper: 0.9999, BAIR 0.999)
    cond_drop_prob: float = 0.1  # probability of dropping the conditioning (classifier-free guidance; paper silent)


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    executor: Literal["local", "debug", "slurm"] = "local"  # submitit executor
