"""``vdm sample``: videos from an exported model → ``.npz`` (+ a GIF grid).

    vdm sample --export EXPORT.pt --config CFG.yaml --out SAMPLES.npz [--gif G.gif]
               [--set sample.guidance_weight=2 ...] [--device cpu|cuda] [--dry-run] [--quiet]
    vdm sample --export EXPORT.pt --config CFG.yaml --chunk I --out CHUNK_I.npz   # one chunk of the set
    vdm gather --out SAMPLES.npz [--gif G.gif] CHUNK_0.npz CHUNK_1.npz ...        # the set from its chunks

The ``.npz`` holds ``videos`` uint8 [N, T, H, W, C], ``seeds`` int64 [N] (sample i used seed i
alone), ``settings`` (JSON: sampling config, model and diffusion config from the export, export
path and sha256, task details, versions) and, when used, ``cls`` int64 [N], ``txt`` [N] str,
``cond_videos`` uint8 (prediction/extension: the real clips [N, T, H, W, C] whose first
``cond_frames`` frames were given; superres: the low-resolution inputs [N, T, h, w, C]) and
``cond_frame_indices`` int64 [k] (frames of ``videos`` that are conditioning, not generated).
With ``--chunk I`` only chunk I of the set (``sample.chunk_size`` samples) is drawn; its settings add
the chunk record ``vdm gather`` checks (see :mod:`vdm.artifacts.samples`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from vdm.artifacts.export import load_export
from vdm.artifacts.samples import write_samples
from vdm.cliargs import add_config_flags, config_from_args, fail, print_dry_run
from vdm.config import ConfigError
from vdm.runinfo import run_record, write_sidecar
from vdm.sampling.config import chunk_range, num_chunks
from vdm.sampling.generate import generate, settings_dict
from vdm.sampling.gif import write_gif_grid
from vdm.utils.io import remove_stale_temporaries_of

log = logging.getLogger("vdm.sample")


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm sample", description="Sample videos from an exported model.")
    p.add_argument("--export", "--checkpoint", dest="export",
                   help="the exported model written by `vdm train` (EMA weights + configs); "
                        "--checkpoint is a deprecated alias")
    add_config_flags(p)  # the `sample` and `data` sections are used
    p.add_argument("--out", help="output .npz (videos, seeds, settings, conditioning); required unless --dry-run")
    p.add_argument("--gif", default=None, help="optional GIF grid of the first sample.gif_max_videos videos")
    p.add_argument("--chunk", type=int, default=None,
                   help="draw only chunk I of the set (samples I*chunk_size ..), written as a chunk file for "
                        "`vdm gather`")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.dry_run and not (args.export and args.out):
        parser.error("--export and --out are required (unless --dry-run)")
    if args.chunk is not None and args.gif:
        parser.error("--gif is written by `vdm gather` from the whole set, not per chunk")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        return fail("vdm sample", e)
    if args.dry_run:
        return print_dry_run(cfg, ("data", "sample"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    export_path = Path(args.export)
    try:
        export = load_export(export_path, device)
    except (FileNotFoundError, ValueError) as e:
        return fail("vdm sample", e)
    if export.model_cfg.image_size != cfg.data.resolution and cfg.sample.task != "superres":
        log.warning("model image_size %d differs from data.resolution %d", export.model_cfg.image_size,
                    cfg.data.resolution)

    for p in remove_stale_temporaries_of(args.out, args.gif):  # left by a killed earlier run of this job
        log.info("removed stale temporary %s", p)
    settings = settings_dict(cfg, export, export_path, device)
    log.info("sampling %d videos (%s, %s, %d steps, gamma=%g, w=%g) from %s", cfg.sample.num_samples,
             cfg.sample.task, cfg.sample.sampler, cfg.sample.steps, cfg.sample.gamma, cfg.sample.guidance_weight,
             export_path)
    try:
        if args.chunk is not None:
            lo, hi = chunk_range(cfg.sample, args.chunk)
            settings["chunk"] = {"index": args.chunk, "range": [lo, hi], "num_samples": cfg.sample.num_samples,
                                 "chunk_size": cfg.sample.chunk_size}
            log.info("chunk %d of %d: samples %d..%d", args.chunk, num_chunks(cfg.sample), lo, hi - 1)
        arrays = generate(cfg, export, device, progress=not args.quiet, chunk=args.chunk)
    except (FileNotFoundError, ValueError) as e:
        return fail("vdm sample", e)
    write_samples(args.out, arrays, settings)
    write_sidecar(args.out, run_record("sample"))  # what ran, when and where: beside the set, not inside it
    log.info("wrote %s: videos %s", args.out, arrays["videos"].shape)
    if args.gif:

        write_gif_grid(args.gif, arrays["videos"][: max(1, cfg.sample.gif_max_videos)], fps=cfg.sample.gif_fps)
        log.info("wrote %s", args.gif)
    return 0


if __name__ == "__main__":
    sys.exit(main())
