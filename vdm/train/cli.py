"""``vdm train``: run training through submitit (local / debug / SLURM), resuming automatically.

    vdm train --config CFG.yaml --workdir DIR --export OUT.pt [--executor local|debug|slurm]
              [--set key.sub=value ...] [--dry-run] [--quiet]

Flags only: the job, its executor and the wait are :mod:`vdm.train.launch`, imported after the flags
are parsed, so that ``vdm train --help`` and a bad flag answer without importing torch.

Example (the embedded default's main arm, locally):

    vdm train --config config/config.yaml --workdir results/mmnist/train/img4 \\
              --export results/mmnist/exports/img4.pt

Outputs: the training state, CSV log, TensorBoard events and sample grids under ``--workdir``; the EMA
weights in ``--export``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vdm.cliargs import EXIT_FAILED, add_config_flags, config_from_args, fail, print_dry_run
from vdm.config import ConfigError
from vdm.utils.io import WorkdirBusy, WorkdirLock


def build_parser() -> argparse.ArgumentParser:
    paragraphs = __doc__.replace("``", "").split("\n\n")  # plain text: no RST quotes
    # the docstring's example and outputs, as written there (one text for the module's docs and --help)
    p = argparse.ArgumentParser(prog="vdm train", description=paragraphs[0], epilog="\n\n".join(paragraphs[-3:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p)
    p.add_argument("--workdir", required=True, help="training state folder (resumed from if it holds a state)")
    p.add_argument("--export", default=None, help="where to write the export (EMA weights + model config)")
    p.add_argument("--executor", choices=("local", "debug", "slurm"), default=None,
                   help="override launch.executor")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        extra = {"launch.executor": args.executor} if args.executor else {}
        if args.quiet:
            extra["train.progress"] = False
        cfg = config_from_args(args, extra)
    except ConfigError as e:
        return fail("vdm train", e)
    if args.dry_run:
        return print_dry_run(cfg)
    from vdm.train.launch import submit_and_wait  # torch and submitit: after parsing (fast --help)
    from vdm.train.loop import LOCK_NAME

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    try:  # fail before submitting when a training holds the folder (the job takes the lock for itself)
        WorkdirLock(workdir, LOCK_NAME, "training").acquire().release()
    except WorkdirBusy as e:
        return fail("vdm train", e, EXIT_FAILED)
    export = Path(args.export).resolve() if args.export else None
    return submit_and_wait(cfg, workdir, export, cfg.launch.executor)


if __name__ == "__main__":
    sys.exit(main())
