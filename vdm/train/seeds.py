"""Seeds of training: the noise of each example, and the global generators of one rank.

Every stream follows the project's seed rule (:mod:`vdm.seeds`): ``derive_seed(seed, purpose, *ints)``
with the purposes "example" (step, global example index) and "t0" (step), so the draws of an example
do not depend on batch splits, rank counts or resumption. Also the capture/restore of the global
generators of one rank (model dropout).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vdm.seeds import derive_seed


def draw_noise(
    seed: int, step: int, first_index: int, batch_size: int, x_shape: tuple[int, ...], device: torch.device,
    *, low_discrepancy: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """t [b], ε [b, C, T, H, W] and a uniform coin [b] for the CFG dropout, one generator per example.

    Example i of this micro-batch is example ``first_index + i`` of the global batch of ``step``
    (``batch_size`` examples: all ranks and micro-batches), so the draws do not depend on the split.
    Low-discrepancy t (Kingma et al. 2021): (u0 + j / batch_size) mod 1, one u0 per step.
    """
    b = x_shape[0]
    gen = torch.Generator(device=device)
    t, eps, coin = torch.empty(b, device=device), torch.empty(x_shape, device=device), torch.empty(b, device=device)
    for i in range(b):
        gen.manual_seed(derive_seed(seed, "example", step, first_index + i))
        t[i] = torch.rand((), generator=gen, device=device)
        coin[i] = torch.rand((), generator=gen, device=device)
        eps[i] = torch.randn(x_shape[1:], generator=gen, device=device)  # [C, T, H, W]
    if low_discrepancy:
        gen.manual_seed(derive_seed(seed, "t0", step))
        u0 = torch.rand((), generator=gen, device=device)
        j = torch.arange(first_index, first_index + b, device=device, dtype=torch.float64)
        t = torch.remainder(u0 + j / batch_size, 1.0).float()
    return t, eps, coin


# ------------------------------------------------------------------------------------------------
# RNG state of one rank (model dropout, anything drawing from the global generators).
# ------------------------------------------------------------------------------------------------
def get_rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": _py_state_to_builtin(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _py_state_to_builtin(s: tuple) -> tuple:
    return (int(s[0]), list(s[1]), s[2])
