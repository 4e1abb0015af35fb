"""Evaluation (FVD) settings (paper §5)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    num_real: int = 256  # real clips in the reference statistics
    batch_size: int = 8  # videos per I3D forward pass
