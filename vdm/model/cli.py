"""``vdm sizes``: parameter counts of the named U-Net sizes (the paper does not report them)."""

from __future__ import annotations

import argparse

from vdm.model.config import SIZES, named_size
from vdm.model.unet import UNet3D, count_parameters


def parameter_table(names: list[str]) -> list[tuple[str, str, int]]:
    import torch

    rows = []
    for name in names:
        cfg = named_size(name)
        with torch.device("meta"):
            net = UNet3D(cfg)
        shape = f"{cfg.image_size}x{cfg.image_size}, ch {cfg.base_channels}x{list(cfg.channel_mult)}"
        rows.append((name, shape, count_parameters(net)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vdm sizes", description=__doc__)
    ap.add_argument("names", nargs="*", default=list(SIZES), help="sizes to count (default: all)")
    args = ap.parse_args(argv)
    print("| size | input / channels | parameters |\n|---|---|---|")
    for name, shape, n in parameter_table(args.names):
        print(f"| {name} | {shape} | {n / 1e6:.1f} M ({n:,}) |")
    return 0
