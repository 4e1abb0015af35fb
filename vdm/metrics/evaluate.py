"""Evaluating a sample set: the library behind ``vdm evaluate`` (its flags live in :mod:`vdm.metrics.cli`).

``evaluate(cfg, samples)`` computes every metric of the registry (:mod:`vdm.metrics.registry`) that applies
to the set, against the protocol's real clips (docs/DESIGN.md), and returns the metrics dict
(:mod:`vdm.artifacts.metrics`). ``real_features`` is the one function that gives a detector's outputs on
the real clips of a split (read from a real-features file, or computed). At scale the generated videos'
outputs are computed per chunk of the set (``sample_features``, a job each) and ``evaluate(...,
gen_features=[...])`` gathers them instead of reading the videos: the same numbers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vdm.artifacts import ArtifactError
from vdm.artifacts import features as feature_files
from vdm.artifacts.samples import read_samples, read_samples_header
from vdm.config import ExperimentConfig, to_dict
from vdm.data.loader import eval_clips
from vdm.metrics import i3d, registry
from vdm.metrics.detectors import DETECTORS, Networks
from vdm.metrics.videos import FVDError, default_device, load_videos_npz
from vdm.utils.io import sha256_file

log = logging.getLogger("vdm.evaluate")

Outputs = dict[str, np.ndarray]

# DataConfig fields that do not change the evaluation clips (training-only): left out of the real clips'
# record so that runs differing only in these share one set of real features.
TRAIN_ONLY_DATA_FIELDS = ("images_per_video", "num_classes", "shuffle_buffer", "image_pool", "flip", "verify")


def eval_clips_record(cfg: ExperimentConfig, split: str, frames: int) -> dict[str, Any]:
    """The provenance of the protocol's real clips of ``split``: evaluate.num_real clips of ``frames`` frames,
    evaluate.real_seed, the data settings that change them."""
    ev = cfg.evaluate
    data = {k: v for k, v in to_dict(cfg.data).items() if k not in TRAIN_ONLY_DATA_FIELDS}
    return {"source": "eval_clips", "data": data, "split": split, "num": ev.num_real, "seed": ev.real_seed,
            "frames": int(frames)}


def protocol_clips(cfg: ExperimentConfig, split: str, frames: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 [evaluate.num_real, frames, H, W, C], their class labels [N] or None): the real clips that
    :func:`eval_clips_record` describes."""
    ev = cfg.evaluate
    clips, meta = eval_clips(cfg.data, split, ev.num_real, ev.real_seed, frames=frames, return_meta=True)
    log.info("real clips: %s from split %r (seed %d)", np.shape(clips), split, ev.real_seed)
    return np.asarray(clips), meta["cls"]


def real_features(cfg: ExperimentConfig, detector: str, split: str, frames: int, nets: Networks, *,
                  path: str | Path | None = None, mode: str = "cache", real_npz: str | Path | None = None,
                  progress: bool = True) -> tuple[Outputs, dict[str, Any]]:
    """(outputs [N, ...] of ``detector`` on the real clips of ``split``, their provenance), by ``mode``:
    "read" the real-features file ``path`` (made under the same settings), "write" compute them into ``path``,
    "cache" read ``path`` (default: a file under evaluate.cache_dir) if it holds them, else compute and write it
    under a lock. ``real_npz``: every video of a user's npz instead of the protocol's clips."""
    if real_npz is not None:
        videos, _ = load_videos_npz(real_npz)
        if videos.shape[1] != frames:
            raise FVDError(f"{real_npz}: real videos have {videos.shape[1]} frames, the samples have "
                           f"{frames}; FVD compares clips of equal length")
        record = {"source": "npz", "path": str(real_npz), "sha256": sha256_file(real_npz), "n": int(len(videos))}
    else:
        record = eval_clips_record(cfg, split, frames)
    info = {**DETECTORS[detector].info(cfg.evaluate), "real": record}

    def compute() -> Outputs:  # with the clips' labels for a detector that keeps them (Detector.labels)
        clips, cls = (videos, None) if real_npz is not None else protocol_clips(cfg, split, frames)
        out = nets.outputs(detector, clips, progress, f"{DETECTORS[detector].label} real {split}")
        return {**out, "cls": cls} if DETECTORS[detector].labels and cls is not None else out
    if mode == "read":
        outputs = feature_files.read_real(path, info)
        if outputs is None:
            raise ArtifactError(f"real-features file not found: {path}")
    elif mode == "write":
        outputs = compute()
        feature_files.write_real(path, outputs, info)
    else:
        stem = "npz" if real_npz is not None else split if detector == "i3d" else f"{split}-{detector}"
        path = path or feature_files.cache_path(cfg.evaluate.cache_dir, info, stem)
        outputs, _ = feature_files.cached_real(path, info, compute)
    n = len(next(iter(outputs.values())))
    shape = list(videos.shape) if real_npz is not None else [n, int(frames), cfg.data.resolution,
                                                             cfg.data.resolution, cfg.data.channels]
    return outputs, {**record, "cache": str(path) if path else None, "shape": shape}


def _settings_of(meta: dict[str, Any]) -> dict[str, Any]:  # a set's settings as its samples file records them
    return meta.get("settings") if isinstance(meta.get("settings"), dict) else {}


def sample_features(cfg: ExperimentConfig, samples: str | Path, out: str | Path, *, device: str | None = None,
                    progress: bool = True) -> int:
    """The outputs of every detector the set's metrics need, of the videos of ``samples`` (a sample set or one
    chunk of it), as a chunk features file ``out`` (:mod:`vdm.artifacts.features`); returns their number."""
    videos, meta = load_videos_npz(samples)
    settings = _settings_of(meta)
    lo, hi = (settings.get("chunk") or {}).get("range", [0, len(videos)])
    if hi - lo != len(videos):
        raise FVDError(f"{samples}: its chunk record says samples {lo}..{hi - 1}, it holds {len(videos)}")
    nets = Networks(cfg.evaluate, device or str(default_device()))
    ctx = registry.set_context(cfg, int(videos.shape[1]), samples, meta)
    ref = _reference(ctx, samples)
    outputs = {d: (DETECTORS[d].info(cfg.evaluate), set_outputs(ctx, nets, d, videos, progress, ref))
               for d in registry.generated_detectors(ctx)}
    feature_files.write_chunk(out, outputs, lo=lo, hi=hi, set_id=feature_files.set_id(settings), frames=ctx.frames)
    return len(videos)


def _reference(ctx: registry.Context, samples: str | Path) -> np.ndarray | None:
    """The real clips the videos continue (cond_videos) when a detector compares with them, else None."""
    if not any(DETECTORS[d].reference for d in registry.generated_detectors(ctx)):
        return None
    return read_samples(samples, key="cond_videos")[0]


def set_outputs(ctx: registry.Context, nets: Networks, detector: str, videos: np.ndarray, progress: bool,
                reference: np.ndarray | None = None) -> Outputs:
    """A detector's outputs of a set's videos [N, T, ...]: of the frames ``ctx.window`` (an extension set's block) if
    set; the digit classifier's per-frame ``logits`` of every frame, its ``features`` of the window."""
    if DETECTORS[detector].reference:
        return nets.outputs(detector, videos, progress, reference=reference)
    if ctx.window is None:
        return nets.outputs(detector, videos, progress)
    part = nets.outputs(detector, videos[:, ctx.window[0]:ctx.window[1]], progress)
    return {**part, "logits": nets.outputs(detector, videos, progress)["logits"]} if detector == "digits" else part


def generated_outputs(ctx: registry.Context, nets: Networks, videos: np.ndarray | None, meta: dict[str, Any],
                      n: int, gen_features: Sequence[str | Path] | None, progress: bool,
                      samples: str | Path | None = None) -> dict[str, Outputs]:
    """{detector: outputs of the generated videos}: gathered from the chunk features files, or computed; of each
    clip's first draw only (sample.samples_per_clip) but for the detectors that read every draw."""
    out, sid = {}, feature_files.set_id(_settings_of(meta))
    ref = _reference(ctx, samples) if not gen_features else None
    for d in registry.generated_detectors(ctx):
        info = DETECTORS[d].info(ctx.ev)
        o = (feature_files.gather_chunks(gen_features, d, info, set_id=sid, n=n, frames=ctx.frames)
             if gen_features else set_outputs(ctx, nets, d, videos, progress, ref))
        out[d] = o if d in registry.ALL_DRAWS else {k: ctx.first_draws(v) for k, v in o.items()}
    return out


def real_outputs(ctx: registry.Context, nets: Networks, real: str | Path | None, files: Sequence[str | Path],
                 progress: bool, require: bool = False) -> dict[tuple[str, str], tuple[Outputs, dict[str, Any]]]:
    """{(detector, split): (outputs, provenance)} the metrics need; read from ``files`` if given or ``require``d."""
    given, out = feature_files.index_real(files), {}
    for d, split in registry.real_needs(ctx):
        npz = real if d == "i3d" else None
        path = given.get((DETECTORS[d].detector_id, split, ctx.frames))
        if (files or require) and path is None and npz is None:
            raise FVDError(f"no {d} features of the {split} clips ({ctx.frames} frames) among --real-features "
                           f"{', '.join(map(str, files)) or '(none given)'}")
        read = path is not None and npz is None
        out[(d, split)] = real_features(ctx.cfg, d, split, ctx.frames, nets, path=path if read else None,
                                        mode="read" if read else "cache", real_npz=npz, progress=progress)
    return out


def evaluate(cfg: ExperimentConfig, samples: str | Path, *, real: str | Path | None = None,
             real_features_files: Sequence[str | Path] = (), device: str | None = None, progress: bool = True,
             gen_features: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """The metrics dict of DESIGN.md for the sample set ``samples``: with ``gen_features`` (the set's chunk
    features files) the videos are not read; with ``real_features_files`` every real clips' output the
    metrics need must be among them; ``real``: a user's npz of real videos for the FVD."""
    videos = None
    if gen_features:
        try:
            shape, meta = read_samples_header(samples)
        except ArtifactError as e:
            raise FVDError(str(e)) from None
    else:
        videos, meta = load_videos_npz(samples)
        shape = videos.shape
    ctx = registry.set_context(cfg, int(shape[1]), samples, meta, real_npz=real is not None)
    nets = Networks(cfg.evaluate, device or str(default_device()))
    gen = generated_outputs(ctx, nets, videos, meta, int(shape[0]), gen_features, progress, samples)
    reals = real_outputs(ctx, nets, real, real_features_files, progress)
    also: dict[str, Any] = {}
    for name, why in registry.statuses(ctx).items():
        m = registry.METRICS[name]
        real_out = reals[(m.detector, m.real_split(ctx.ev))][0] if m.real_split and not why else None
        also[name] = {"computed": False, "reason": why} if why else m.score(gen[m.detector], real_out, ctx, progress)
    return _metrics_json(cfg, samples, meta, shape, also, reals[("i3d", cfg.evaluate.split)][1], nets.device)


def _metrics_json(cfg: ExperimentConfig, samples: str | Path, meta: dict[str, Any], shape: Sequence[int],
                  also: dict[str, Any], real_info: dict[str, Any], device: str) -> dict[str, Any]:
    """The headline FVD with the other metrics as its ``also`` and the settings that made them."""
    result = also.pop(registry.HEADLINE)
    if tuple(real_info["shape"][2:]) != tuple(shape[2:]):
        note = f"real frames are {tuple(real_info['shape'][2:])} (H, W, C), generated {tuple(shape[2:])}"
        result["warnings"] = result["warnings"] + [note]
        log.warning("%s", note)
    settings = {"evaluate": to_dict(cfg.evaluate), "frames": int(shape[1]), "input_size": i3d.INPUT_SIZE,
                "preprocess": i3d.PREPROCESS_ID, "real": real_info, "experiment": cfg.name, "device": str(device),
                "samples": {"path": str(samples), "sha256": sha256_file(samples), **meta}}
    return {"metric": "fvd", "value": result.pop("value"), "interval": result.pop("interval"), **result,
            "also": also, "detector_id": i3d.DETECTOR_ID, "weights_sha256": i3d.WEIGHTS_SHA256, "settings": settings}
