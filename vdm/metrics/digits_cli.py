"""vdm digits: train the Moving MNIST digit classifier of the digit metrics (vdm.metrics.digits) for the data
section of a config (its resolution, canvas and digit split) and write its weights file and record.

    vdm digits --config CFG.yaml --out OUT/metrics/digit-classifier.pt [--steps N] [--set data.resolution=32]
"""

from __future__ import annotations

import argparse
import logging
import sys

from vdm.cliargs import EXIT_OK, add_config_flags, config_from_args, fail, print_dry_run
from vdm.config import ConfigError
from vdm.data.common import DataError
from vdm.metrics import digits
from vdm.utils.io import remove_stale_temporaries_of

log = logging.getLogger("vdm.digits")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm digits", description=__doc__.split("\n\n")[0])
    add_config_flags(p)
    p.add_argument("--out", help="the weights file to write (its record: the same name with .json)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: evaluate.digit_steps)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = config_from_args(args)
        if args.dry_run:
            return print_dry_run(cfg, ("data", "evaluate"))
        if not args.out:
            raise ConfigError("--out is required")
        if cfg.data.source != "moving_mnist":
            raise ConfigError(f"{args.config}: data.source is {cfg.data.source!r}; the digit classifier is for "
                              "moving_mnist")
        if args.steps is not None and args.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {args.steps}")
        settings = digits.settings_of(cfg.data, steps=args.steps or cfg.evaluate.digit_steps)
        remove_stale_temporaries_of(args.out)
        net, record = digits.train(settings, log=None if args.quiet else log.info)
    except (ConfigError, DataError) as e:
        return fail("vdm digits", e)
    digits.save(args.out, net, record)
    log.info("digit classifier: %d parameters, held-out accuracy %.4f on %d test-digit frames, %.1f s -> %s",
             record["parameters"], record["heldout_accuracy"], record["heldout_frames"], record["train_seconds"],
             args.out)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
