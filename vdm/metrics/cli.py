"""``vdm evaluate``: FVD of a sample set against real clips; writes the metrics JSON (DESIGN.md).

    vdm evaluate --config CFG.yaml --samples SAMPLES.npz --out METRICS.json \
        [--real-cache FEATS.npz] [--real REAL.npz] [--set evaluate.num_bootstrap=200 ...] [--device cpu]
        [--dry-run] [--quiet]
    vdm evaluate --config CFG.yaml --real-only --real-cache FEATS.npz [--frames T]   # real features only
    vdm evaluate --config CFG.yaml --real-only --frame-split train --real-cache F.npz  # frame-FID real features
    vdm evaluate --config CFG.yaml --features-only --samples CHUNK.npz --out F.npz  # a chunk's features
    vdm evaluate --config CFG.yaml --samples SAMPLES.npz --gen-features F0.npz F1.npz ... --out METRICS.json

Real clips: ``vdm.data.loader.eval_clips(cfg.data, cfg.evaluate.split, cfg.evaluate.num_real,
cfg.evaluate.real_seed, frames=T of the samples)``, or every video of ``--real REAL.npz`` (``videos``
uint8 [N, T, H, W, C]). Their I3D features are cached (``--real-cache``, else a file under
``evaluate.cache_dir`` named by the cache key) and reused while the key matches.
"""

from __future__ import annotations

import argparse
import logging
import sys

from vdm.artifacts.metrics import write_metrics
from vdm.cliargs import add_config_flags, config_from_args, fail, print_dry_run
from vdm.config import ConfigError
from vdm.data.common import DataError
from vdm.metrics import fvd, i3d
from vdm.metrics.c3d import C3DWeightsError
from vdm.metrics.evaluate import evaluate, real_features, real_frame_features, sample_features
from vdm.metrics.fvd import FVDError
from vdm.metrics.i3d import I3DWeightsError
from vdm.metrics.inception import InceptionWeightsError
from vdm.runinfo import read_sidecar, run_record, write_sidecar
from vdm.utils.io import remove_stale_temporaries_of, write_json

log = logging.getLogger("vdm.evaluate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm evaluate", description=__doc__.split("\n\n")[0])
    add_config_flags(p)
    p.add_argument("--samples", help="npz with 'videos' uint8 [N, T, H, W, C] (required unless --real-only)")
    p.add_argument("--out", help="metrics JSON to write (required unless --real-only)")
    p.add_argument("--real-only", action="store_true",
                   help="only compute and cache the real clips' features (--frames frames) in --real-cache")
    p.add_argument("--frames", type=int, default=None,
                   help="--real-only: frames per real clip (default data.frames; FVD compares equal lengths)")
    p.add_argument("--features-only", action="store_true",
                   help="only write the I3D features of --samples (a set or one chunk of it) to --out")
    p.add_argument("--gen-features", nargs="+", default=None,
                   help="the per-chunk features files of --samples (from --features-only): the FVD reads them "
                        "instead of the videos")
    p.add_argument("--real-cache", default=None,
                   help="npz of cached real-clip features (read if its key matches, else written)")
    p.add_argument("--real", default=None,
                   help="npz with real 'videos' uint8 [N, T, H, W, C] instead of eval_clips of the data")
    p.add_argument("--frame-split", default=None, choices=("train", "test"),
                   help="--real-only: the real clips' Inception features (frame FID) of this split instead of I3D")
    p.add_argument("--real-frame-cache", nargs="+", default=[], metavar="SPLIT=NPZ",
                   help="cached Inception features of the real clips per split (evaluate.frame_fid)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", dest="quiet", action="store_true", help="the former name of --quiet")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.real_only and args.samples:
        parser.error("--real-only takes no --samples")
    if args.features_only and not (args.samples and args.out) and not args.dry_run:
        parser.error("--features-only needs --samples and --out")
    if not args.real_only and not args.dry_run and not (args.samples and args.out):
        parser.error("--samples and --out are required (or --real-only)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = config_from_args(args)
        if args.dry_run:
            return print_dry_run(cfg, ("data", "evaluate"))
        if args.real_only and args.frame_split:
            feats, info = real_frame_features(cfg, args.frames or cfg.data.frames, args.frame_split,
                                              real_cache=args.real_cache, device=args.device,
                                              progress=not args.quiet)
            log.info("real Inception features %s (split %s) in %s", feats.shape, args.frame_split, info["cache"])
            return 0
        if args.real_only:

            device = args.device or str(fvd.default_device())
            detector = i3d.load_i3d(device, endpoint=cfg.evaluate.features)
            feats, info = real_features(cfg, args.frames or cfg.data.frames, detector, real=args.real,
                                        real_cache=args.real_cache, device=device, progress=not args.quiet)
            log.info("real features %s in %s", feats.shape, info["cache"])
            if args.out:
                write_json(args.out, {"real_features": info, "n_real": int(len(feats)),
                                      "detector_id": i3d.DETECTOR_ID, "weights_sha256": i3d.WEIGHTS_SHA256})
            return 0

        remove_stale_temporaries_of(args.out)  # left by a killed earlier run of this job
        if args.features_only:
            n = sample_features(cfg, args.samples, args.out, device=args.device, progress=not args.quiet)
            write_sidecar(args.out, run_record("features"))
            log.info("I3D features of %d videos of %s -> %s", n, args.samples, args.out)
            return 0
        caches = {}
        for item in args.real_frame_cache:
            split, sep, path = item.partition("=")
            if not sep or split not in ("train", "test"):
                raise ConfigError(f"--real-frame-cache {item!r}: expected SPLIT=NPZ with SPLIT train or test")
            caches[split] = path
        metrics = evaluate(cfg, args.samples, real=args.real, real_cache=args.real_cache,
                           device=args.device, progress=not args.quiet, gen_features=args.gen_features,
                           real_frame_caches=caches)
    except (ConfigError, DataError, FVDError, I3DWeightsError, InceptionWeightsError, C3DWeightsError) as e:
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
