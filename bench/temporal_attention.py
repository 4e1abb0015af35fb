"""Attention forward + backward at the U-Net's shapes: the fused CPU kernel against explicit matrix products.

    python bench/temporal_attention.py [--threads 2] [--repeats 20]

Shapes of `bench/unet.py --vs-lucidrains` (batch 2, 8 frames, 32x32, channels 48/96/192, head dim 32):
spatial attention [frames, heads, H*W, d] and temporal attention [B*H*W, heads, T, d] with its
relative-position bias. Prints milliseconds per forward + backward for each backend; the temporal rows
are why `vdm.model.layers.temporal_sdpa` uses matrix products on CPU.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [("spatial 32px", (16, 1, 1024, 48), False), ("spatial 16px", (16, 3, 256, 32), False),
          ("spatial 8px", (16, 6, 64, 32), False), ("temporal 16px", (512, 3, 8, 32), True),
          ("temporal 8px", (128, 6, 8, 32), True)]


def time_ms(shape: tuple[int, ...], with_bias: bool, backend: SDPBackend, repeats: int) -> float:
    q, k, v = (torch.randn(*shape, requires_grad=True) for _ in range(3))
    bias = torch.randn(shape[0], shape[1], shape[2], shape[2]) if with_bias else None

    def run() -> None:
        with sdpa_kernel(backend):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        y.backward(torch.ones_like(y))

    for _ in range(3):
        run()
    t = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - t) / repeats * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name, shape, with_bias in SHAPES:
        fused = time_ms(shape, with_bias, SDPBackend.FLASH_ATTENTION, args.repeats)
        math_ = time_ms(shape, with_bias, SDPBackend.MATH, args.repeats)
        print(f"{name} {list(shape)}: fused {fused:.2f} ms, matrix products {math_:.2f} ms, ratio {fused / math_:.2f}")


if __name__ == "__main__":
    main()
