"""``python -m vdm <stage> ...`` / ``vdm <stage> ...``: one entry point per pipeline stage.

Each stage lives in its own module and exposes ``main(argv) -> int``; they are imported lazily so
that ``vdm --help`` is instant and a stage's heavy imports are paid only by that stage.
"""

from __future__ import annotations

import importlib
import sys

from vdm import __version__

STAGES: dict[str, tuple[str, str]] = {
    "shard": ("vdm.data.cli", "write webdataset shards of a video source"),
    "train": ("vdm.train.cli", "train (locally or through submitit/SLURM), resuming automatically"),
    "sample": ("vdm.sampling.cli", "sample videos from an exported model (a whole set or one chunk)"),
    "gather": ("vdm.sampling.gather", "a sample set (and its GIF) from its chunk files"),
    "mp4": ("vdm.sampling.mp4", "a sample set as one H.264 video grid (.mp4)"),
    "evaluate": ("vdm.metrics.cli", "FVD and the further metrics of a sample set against real clips"),
    "compare": ("vdm.metrics.compare", "paired differences of the metrics between the arms of a table"),
    "digits": ("vdm.metrics.digits_cli", "train the Moving MNIST digit classifier of the digit metrics"),
    "report": ("vdm.report.cli", "tables and plots from metrics"),
    "sizes": ("vdm.model.cli", "parameter counts of the named U-Net sizes"),
    "plan": ("vdm.plan", "network evaluations, FLOPs and GPU-hours per stage of a workflow config"),
    "info": ("vdm.info", "what a file of a run is and holds (export, state, samples, metrics, shard, record)"),
    "schema": ("vdm.schema", "write the workflow's JSON schema generated from the config dataclasses"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        print(f"vdm {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: vdm [--version] <stage> [options]\n\nstages:")
        for name, (_, doc) in STAGES.items():
            print(f"  {name:<10} {doc}")
        print("\n`vdm <stage> --help` describes a stage. The workflow (Snakefile) runs the stages; see README.md.")
        return 0 if argv else 2
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"vdm: unknown stage {stage!r} (stages: {', '.join(STAGES)})", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
