"""``vdm shard``: write the webdataset shards + manifest of one split of the configured source.

    vdm shard --config CFG.yaml --split train [--out DIR] [--strict] [--workers N] [--seed S]
              [--set data.resolution=32 ...] [--no-model-check] [--dry-run] [--quiet]

Exits 2 (``vdm.cliargs``: bad input) with a message naming the file/value: empty source, missing split
file, a clip the network cannot take, and with --strict any rejected video.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from vdm.cliargs import EXIT_OK, add_config_flags, config_from_args, fail, print_dry_run
from vdm.config import ConfigError
from vdm.data.checks import check_data_for_model
from vdm.data.common import DataError
from vdm.data.shard import shard_split


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vdm shard", description=__doc__.split("\n\n")[0])
    add_config_flags(p)
    p.add_argument("--split", required=True, choices=["train", "test"])
    p.add_argument("--out", default=None, help="output folder (default: data.shards); writes OUT/<split>/")
    p.add_argument("--strict", action="store_true", help="fail on the first rejected input instead of listing it")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="decoding processes")
    p.add_argument("--seed", type=int, default=None, help="generation seed (default: the config's seed)")
    p.add_argument("--no-model-check", action="store_true", help="skip the data-vs-network compatibility check")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        cfg = config_from_args(args)
        if args.dry_run:
            return print_dry_run(cfg, ("data", "model"))
        if not args.no_model_check:
            check_data_for_model(cfg.data, cfg.model)
        manifest = shard_split(cfg.data, args.split, args.out, seed=cfg.seed if args.seed is None else args.seed,
                               strict=args.strict, workers=args.workers, progress=not args.quiet)
    except (ConfigError, DataError) as e:
        return fail("vdm shard", e)
    print(f"{manifest['split']}: {manifest['num_records']} records, {manifest['num_frames']} frames, "
          f"{manifest['num_shards']} shards, {len(manifest['rejected'])} rejected")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
