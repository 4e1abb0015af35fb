"""``vdm gather``: a sample set from its chunk files (``vdm sample --chunk I``), and its GIF grid.

    vdm gather --out SAMPLES.npz [--gif G.gif] CHUNK_0.npz CHUNK_1.npz ...

The set is written one chunk at a time (never the whole set in memory), byte for byte the file an
unchunked ``vdm sample`` writes; the GIF shows the first ``sample.gif_max_videos`` videos, read from
the first chunks only. Chunks of different sets, missing or overlapping chunks are refused, naming the file.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import gather_samples, read_samples, read_samples_record
from vdm.cliargs import fail
from vdm.runinfo import read_sidecar, run_record, write_sidecar
from vdm.sampling.gif import write_gif_grid
from vdm.utils.io import remove_stale_temporaries_of

log = logging.getLogger("vdm.gather")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm gather", description=__doc__.split("\n\n")[0])
    p.add_argument("chunks", nargs="+", help="the chunk files of one sample set (any order)")
    p.add_argument("--out", required=True, help="the sample set .npz to write")
    p.add_argument("--gif", default=None, help="optional GIF grid of the first sample.gif_max_videos videos")
    return p


def first_videos(chunk_paths: list[str], limit: int) -> np.ndarray:
    """uint8 [min(limit, N), T, H, W, C]: the set's first videos, reading chunks in order until enough."""
    ordered = sorted(chunk_paths, key=lambda p: read_samples_record(p)[1]["chunk"]["range"][0])
    parts, have = [], 0
    for p in ordered:
        if have >= limit:
            break
        v, _ = read_samples(p, limit=limit - have)
        parts.append(v)
        have += len(v)
    return np.concatenate(parts)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for p in remove_stale_temporaries_of(args.out, args.gif):  # left by a killed earlier run of this job
        log.info("removed stale temporary %s", p)
    try:
        settings = gather_samples(args.out, args.chunks)
    except ArtifactError as e:
        return fail("vdm gather", e)
    write_sidecar(args.out, {**run_record("gather"), "chunks": [read_sidecar(c) for c in args.chunks]})
    log.info("wrote %s from %d chunk(s)", args.out, len(args.chunks))
    if args.gif:
        sample = settings.get("sample", {})
        videos = first_videos(args.chunks, max(1, int(sample.get("gif_max_videos", 16))))
        write_gif_grid(args.gif, videos, fps=float(sample.get("gif_fps", 8.0)))
        log.info("wrote %s", args.gif)
    return 0


if __name__ == "__main__":
    sys.exit(main())
