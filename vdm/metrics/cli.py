"""``vdm evaluate``: FVD of a sample set against real clips; writes the metrics JSON (DESIGN.md).

    vdm evaluate --config CFG.yaml --samples SAMPLES.npz --out METRICS.json \
        [--real-cache FEATS.npz] [--real REAL.npz] [--set evaluate.num_bootstrap=200 ...] [--device cpu]
    vdm evaluate --config CFG.yaml --real-only --real-cache FEATS.npz    # real features only

Real clips: ``vdm.data.loader.eval_clips(cfg.data, cfg.evaluate.split, cfg.evaluate.num_real,
cfg.evaluate.real_seed, frames=T of the samples)``, or every video of ``--real REAL.npz`` (``videos``
uint8 [N, T, H, W, C]). Their I3D features are cached (``--real-cache``, else a file under
``evaluate.cache_dir`` named by the cache key) and reused while the key matches.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("vdm.evaluate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="experiment YAML")
    p.add_argument("--samples", help="npz with 'videos' uint8 [N, T, H, W, C] (required unless --real-only)")
    p.add_argument("--out", help="metrics JSON to write (required unless --real-only)")
    p.add_argument("--real-only", action="store_true",
                   help="only compute and cache the real clips' features (data.frames frames) in --real-cache")
    p.add_argument("--real-cache", default=None,
                   help="npz of cached real-clip features (read if its key matches, else written)")
    p.add_argument("--real", default=None,
                   help="npz with real 'videos' uint8 [N, T, H, W, C] instead of eval_clips of the data")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. evaluate.num_bootstrap=200 (repeatable)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _real_clips(cfg, frames: int) -> np.ndarray:
    try:
        from vdm.data.loader import eval_clips
    except ImportError as e:
        from vdm.metrics.fvd import FVDError

        raise FVDError(f"real clips need vdm.data.loader.eval_clips ({e}); pass --real REAL.npz instead") from e
    ev = cfg.evaluate
    clips = np.asarray(eval_clips(cfg.data, ev.split, ev.num_real, ev.real_seed, frames=frames))
    log.info("real clips: %s from split %r (seed %d)", clips.shape, ev.split, ev.real_seed)
    return clips


# DataConfig fields that do not change the evaluation clips (training-only): left out of the cache
# key so that runs differing only in these share one set of real features.
TRAIN_ONLY_DATA_FIELDS = ("images_per_video", "num_classes", "shuffle_buffer", "image_pool", "flip", "verify")


def real_features(cfg, frames: int, detector, *, real: str | Path | None = None,
                  real_cache: str | Path | None = None, device: str | None = None,
                  progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """I3D features of the real clips [N, D] (cached) and their provenance for the metrics JSON."""
    from vdm.config import to_dict
    from vdm.metrics import fvd
    from vdm.utils.io import sha256_file

    ev = cfg.evaluate
    info = fvd.detector_info(ev.features)
    shape: list[int] | None = None
    if real is not None:
        real_videos, _ = fvd.load_videos_npz(real)
        if real_videos.shape[1] != frames:
            raise fvd.FVDError(f"{real}: real videos have {real_videos.shape[1]} frames, the samples have "
                               f"{frames}; FVD compares clips of equal length")
        info["real"] = {"source": "npz", "path": str(real), "sha256": sha256_file(real),
                        "n": int(real_videos.shape[0])}
        shape = list(real_videos.shape)
        split = "npz"

        def compute() -> np.ndarray:
            return fvd.extract_features(real_videos, detector, batch_size=ev.batch_size, device=device,
                                        progress=progress, desc="I3D real")
    else:
        data = {k: v for k, v in to_dict(cfg.data).items() if k not in TRAIN_ONLY_DATA_FIELDS}
        info["real"] = {"source": "eval_clips", "data": data, "split": ev.split, "num": ev.num_real,
                        "seed": ev.real_seed, "frames": int(frames)}
        split = ev.split

        def compute() -> np.ndarray:
            clips = _real_clips(cfg, frames)
            return fvd.extract_features(clips, detector, batch_size=ev.batch_size, device=device,
                                        progress=progress, desc="I3D real")
    cache_path = Path(real_cache) if real_cache else fvd.default_cache_path(ev, info, split)
    feats, from_cache = fvd.cached_features(cache_path, info, compute)
    log.info("real features %s %s", "read from" if from_cache else "computed and cached in", cache_path)
    if shape is None:  # eval clips: [N, frames, resolution, resolution, channels], cached or not
        shape = [int(len(feats)), int(frames), cfg.data.resolution, cfg.data.resolution, cfg.data.channels]
    # What the metrics record does not depend on which evaluation filled the cache first: the same
    # inputs give a byte-identical metrics JSON.
    provenance = {**info["real"], "cache": str(cache_path) if cache_path else None, "shape": shape}
    return feats, provenance


def evaluate(cfg, samples: str | Path, *, real: str | Path | None = None, real_cache: str | Path | None = None,
             device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """The metrics dict of DESIGN.md for the sample set ``samples`` (see module docstring)."""
    from vdm.config import to_dict
    from vdm.metrics import fvd, i3d
    from vdm.utils.io import sha256_file

    ev = cfg.evaluate
    videos, sample_meta = fvd.load_videos_npz(samples)
    frames = int(videos.shape[1])
    device = device or str(fvd.default_device())
    detector = i3d.load_i3d(device, endpoint=ev.features)
    feats_real, real_info = real_features(cfg, frames, detector, real=real, real_cache=real_cache,
                                          device=device, progress=progress)
    notes: list[str] = []
    if real_info["shape"] is not None and tuple(real_info["shape"][2:]) != tuple(videos.shape[2:]):
        notes.append(f"real frames are {tuple(real_info['shape'][2:])} (H, W, C), generated "
                     f"{tuple(videos.shape[2:])}")
    feats_gen = fvd.extract_features(videos, detector, batch_size=ev.batch_size, device=device,
                                     progress=progress, desc="I3D generated")
    result = fvd.compute_fvd(feats_real, feats_gen, ev, progress=progress)
    result["warnings"] = result["warnings"] + notes
    for note in notes:
        log.warning("%s", note)
    return {
        "metric": "fvd",
        "value": result.pop("value"),
        "interval": result.pop("interval"),
        **result,
        "detector_id": i3d.DETECTOR_ID,
        "weights_sha256": i3d.WEIGHTS_SHA256,
        "settings": {
            "evaluate": to_dict(ev),
            "frames": frames,
            "input_size": i3d.INPUT_SIZE,
            "preprocess": fvd.PREPROCESS_ID,
            "real": real_info,
            "samples": {"path": str(samples), "sha256": sha256_file(samples), **sample_meta},
            "experiment": cfg.name,
            "device": str(device),
        },
    }


def main(argv: list[str] | None = None) -> int:
    from vdm.config import ConfigError, load_config, parse_override
    from vdm.data.common import DataError
    from vdm.metrics.fvd import FVDError
    from vdm.metrics.i3d import I3DWeightsError
    from vdm.artifacts.metrics import write_metrics
    from vdm.utils.io import write_json

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.real_only and args.samples:
        parser.error("--real-only takes no --samples")
    if not args.real_only and not (args.samples and args.out):
        parser.error("--samples and --out are required (or --real-only)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = load_config(args.config, dict(parse_override(o) for o in args.overrides))
        if args.real_only:
            from vdm.metrics import fvd, i3d

            device = args.device or str(fvd.default_device())
            detector = i3d.load_i3d(device, endpoint=cfg.evaluate.features)
            feats, info = real_features(cfg, cfg.data.frames, detector, real=args.real, real_cache=args.real_cache,
                                        device=device, progress=not args.no_progress)
            log.info("real features %s in %s", feats.shape, info["cache"])
            if args.out:
                write_json(args.out, {"real_features": info, "n_real": int(len(feats)),
                                      "detector_id": i3d.DETECTOR_ID, "weights_sha256": i3d.WEIGHTS_SHA256})
            return 0
        from vdm.utils.io import remove_stale_temporaries_of

        remove_stale_temporaries_of(args.out)  # left by a killed earlier run of this job
        metrics = evaluate(cfg, args.samples, real=args.real, real_cache=args.real_cache,
                           device=args.device, progress=not args.no_progress)
    except (ConfigError, DataError, FVDError, I3DWeightsError) as e:
        print(f"vdm evaluate: error: {e}", file=sys.stderr)
        return 2
    write_metrics(args.out, metrics)
    lo_hi = metrics["interval"]
    interval = f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else ""
    log.info("FVD = %.3f%s (%d real, %d generated%s) -> %s", metrics["value"], interval, metrics["n_real"],
             metrics["n_generated"], "" if metrics["reliable"] else ", UNRELIABLE: too few samples", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
