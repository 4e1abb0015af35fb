"""vdm evaluate: the metrics of a samples ``.npz`` (FVD and every further metric of the registry) against the
protocol's real clips; writes the metrics JSON (DESIGN.md).

    vdm evaluate --config CFG.yaml --samples SAMPLES.npz --out METRICS.json \
        [--real-features R.npz ...] [--real REAL.npz] [--set evaluate.num_bootstrap=200 ...] [--device cpu]
        [--dry-run] [--quiet]
    vdm evaluate --config CFG.yaml --real-only --detector i3d --frames T --out R.npz        # real features only
    vdm evaluate --config CFG.yaml --real-only --detector inception --split train --out R.npz
    vdm evaluate --config CFG.yaml --features-only --samples CHUNK.npz --out F.npz  # a chunk's features
    vdm evaluate --config CFG.yaml --samples SAMPLES.npz --gen-features F0.npz F1.npz ... --out METRICS.json

Real clips: ``vdm.data.loader.eval_clips(cfg.data, split, cfg.evaluate.num_real, cfg.evaluate.real_seed,
frames=T of the samples)`` of each split a metric compares with, or, for the FVD, every video of ``--real
REAL.npz`` (``videos`` uint8 [N, T, H, W, C]). Each detector's outputs on them are a real-features file
(``--real-only``; read with ``--real-features``, which must then hold every one the metrics need); without
``--real-features`` they are computed and kept under ``evaluate.cache_dir``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from vdm.artifacts import ArtifactError
from vdm.artifacts.metrics import write_metrics
from vdm.cliargs import add_config_flags, config_from_args, fail, print_dry_run
from vdm.config import ConfigError, ExperimentConfig
from vdm.data.common import DataError
from vdm.metrics import registry
from vdm.metrics.detectors import DETECTORS, WEIGHTS_ERRORS, Networks
from vdm.metrics.evaluate import evaluate, real_features, sample_features
from vdm.metrics.videos import FVDError, default_device
from vdm.runinfo import read_sidecar, run_record, write_sidecar
from vdm.utils.io import remove_stale_temporaries_of

log = logging.getLogger("vdm.evaluate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm evaluate", description=__doc__.split("\n\n")[0])
    add_config_flags(p)
    p.add_argument("--samples", help="npz with 'videos' uint8 [N, T, H, W, C] (required unless --real-only)")
    p.add_argument("--out", help="metrics JSON to write; with --real-only / --features-only the features file")
    p.add_argument("--real-only", action="store_true",
                   help="only the real clips' outputs of --detector (--split, --frames) into --out")
    p.add_argument("--detector", default="i3d", choices=sorted(DETECTORS),
                   help="--real-only: the feature network (default i3d)")
    p.add_argument("--split", default=None, choices=("train", "test"),
                   help="--real-only: the real clips' split (default: the one the detector's metrics use)")
    p.add_argument("--frames", type=int, default=None,
                   help="--real-only: frames per real clip (default data.frames; FVD compares equal lengths)")
    p.add_argument("--features-only", action="store_true",
                   help="only write the outputs of --samples (a set or one chunk of it) the metrics need to --out")
    p.add_argument("--gen-features", nargs="+", default=None,
                   help="the per-chunk features files of --samples (from --features-only): read instead of the videos")
    p.add_argument("--real-features", nargs="+", default=[], metavar="NPZ",
                   help="real-features files (from --real-only); every one the metrics need must be among them")
    p.add_argument("--real", default=None,
                   help="npz with real 'videos' uint8 [N, T, H, W, C] instead of eval_clips of the data (FVD)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", dest="quiet", action="store_true", help="the former name of --quiet")
    return p


def default_split(cfg: ExperimentConfig, detector: str) -> str:
    """The split of the real clips ``detector``'s metrics compare with, when they all use one."""
    splits = {m.real_split(cfg.evaluate) for m in registry.METRICS.values() if m.detector == detector and m.real_split}
    if len(splits) != 1:
        raise ConfigError(f"--detector {detector}: its metrics use the real splits {sorted(splits)}; give --split")
    return splits.pop()


def real_only(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    split = args.split or default_split(cfg, args.detector)
    nets = Networks(cfg.evaluate, args.device or str(default_device()))
    outputs, info = real_features(cfg, args.detector, split, args.frames or cfg.data.frames, nets, path=args.out,
                                  mode="write", real_npz=args.real, progress=not args.quiet)
    log.info("real %s outputs %s in %s", args.detector, {k: v.shape for k, v in outputs.items()}, info["cache"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.real_only and args.samples:
        parser.error("--real-only takes no --samples")
    if (args.features_only or args.real_only) and not args.out and not args.dry_run:
        parser.error("--features-only and --real-only need --out")
    if not args.real_only and not args.dry_run and not (args.samples and args.out):
        parser.error("--samples and --out are required (or --real-only)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = config_from_args(args)
        if args.dry_run:
            return print_dry_run(cfg, ("data", "evaluate"))
        remove_stale_temporaries_of(args.out)  # left by a killed earlier run of this job
        if args.real_only:
            return real_only(cfg, args)
        if args.features_only:
            n = sample_features(cfg, args.samples, args.out, device=args.device, progress=not args.quiet)
            write_sidecar(args.out, run_record("features"))
            log.info("features of %d videos of %s -> %s", n, args.samples, args.out)
            return 0
        metrics = evaluate(cfg, args.samples, real=args.real, real_features_files=args.real_features,
                           device=args.device, progress=not args.quiet, gen_features=args.gen_features)
    except (ConfigError, DataError, FVDError, ArtifactError, *WEIGHTS_ERRORS) as e:
        return fail("vdm evaluate", e)
    write_metrics(args.out, metrics)
    write_sidecar(args.out, {**run_record("evaluate"),
                             "features": [read_sidecar(f) for f in args.gen_features or ()]})
    lo_hi = metrics["interval"]
    interval = f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else ""
    log.info("FVD = %.3f%s (%d real, %d generated%s) -> %s", metrics["value"], interval, metrics["n_real"],
             metrics["n_generated"], "" if metrics["reliable"] else ", UNRELIABLE: too few samples", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
