"""Evaluating a sample set: the library behind ``vdm evaluate`` (its flags live in :mod:`vdm.metrics.cli`).

``evaluate(cfg, samples)`` computes the FVD of a samples ``.npz`` against real clips (canonical protocol,
docs/DESIGN.md) and returns the metrics dict (see :mod:`vdm.artifacts.metrics`); ``real_features`` gives
the I3D features of the real clips, cached by their key. At scale the generated videos' features are
computed per chunk of the set (``sample_features``, a job each) and ``evaluate(..., gen_features=[...])``
reads them instead of the videos: the same FVD, without the whole set in one process's memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vdm.artifacts import ArtifactError
from vdm.artifacts.samples import read_samples_header
from vdm.config import ExperimentConfig, to_dict
from vdm.data.loader import eval_clips
from vdm.metrics import c3d, fvd, i3d, inception
from vdm.metrics.inception_net import PYTORCH_FID_FILE, inception_score, load_pytorch_fid_weights
from vdm.utils.io import save_npz, sha256_file

log = logging.getLogger("vdm.evaluate")


# DataConfig fields that do not change the evaluation clips (training-only): left out of the cache
# key so that runs differing only in these share one set of real features.
TRAIN_ONLY_DATA_FIELDS = ("images_per_video", "num_classes", "shuffle_buffer", "image_pool", "flip", "verify")


def eval_clips_record(cfg: ExperimentConfig, split: str, frames: int) -> dict[str, Any]:
    """The provenance (and cache-key part) of the protocol's real clips of ``split``: evaluate.num_real clips of
    ``frames`` frames, evaluate.real_seed, the data settings that change them."""
    ev = cfg.evaluate
    data = {k: v for k, v in to_dict(cfg.data).items() if k not in TRAIN_ONLY_DATA_FIELDS}
    return {"source": "eval_clips", "data": data, "split": split, "num": ev.num_real, "seed": ev.real_seed,
            "frames": int(frames)}


def protocol_clips(cfg: ExperimentConfig, split: str, frames: int) -> np.ndarray:
    """uint8 [evaluate.num_real, frames, H, W, C]: the real clips that :func:`eval_clips_record` describes."""
    ev = cfg.evaluate
    clips = np.asarray(eval_clips(cfg.data, split, ev.num_real, ev.real_seed, frames=frames))
    log.info("real clips: %s from split %r (seed %d)", clips.shape, split, ev.real_seed)
    return clips


def real_features(cfg: ExperimentConfig, frames: int, detector, *, real: str | Path | None = None,
                  real_cache: str | Path | None = None, device: str | None = None,
                  progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """I3D features of the real clips [N, D] (cached) and their provenance for the metrics JSON.
    ``detector`` None: loaded only if the features must be computed."""
    ev = cfg.evaluate

    def _detector():
        return detector if detector is not None else i3d.load_i3d(device or str(fvd.default_device()),
                                                                  endpoint=ev.features)
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
            return fvd.extract_features(real_videos, _detector(), batch_size=ev.batch_size, device=device,
                                        progress=progress, desc="I3D real")
    else:
        info["real"] = eval_clips_record(cfg, ev.split, frames)
        split = ev.split

        def compute() -> np.ndarray:
            clips = protocol_clips(cfg, ev.split, frames)
            return fvd.extract_features(clips, _detector(), batch_size=ev.batch_size, device=device,
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


def frame_detector_info() -> dict[str, Any]:
    return {"detector_id": inception.DETECTOR_ID, "weights_sha256": inception.WEIGHTS_SHA256,
            "preprocess": inception.PREPROCESS_ID, "features": "pool3 [avg over frames, first frame]",
            "cache_format": fvd.CACHE_FORMAT}


def real_frame_features(cfg: ExperimentConfig, frames: int, split: str, *, real_cache: str | Path | None = None,
                        device: str | None = None, progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Inception features [N, 2, 2048] (per clip: averaged over its frames, its first frame) of the real clips
    of ``split`` (the FVD's clip protocol: evaluate.num_real clips of ``frames`` frames, evaluate.real_seed),
    cached in ``real_cache`` (or under evaluate.cache_dir) by their key."""
    ev = cfg.evaluate
    info = {**frame_detector_info(), "real": eval_clips_record(cfg, split, frames)}

    def compute() -> np.ndarray:
        clips = protocol_clips(cfg, split, frames)
        f = inception.video_frame_features(clips, inception.load_inception(device=device or "cpu"),
                                           device=device or "cpu", progress=progress, desc=f"Inception real {split}")
        return np.stack([f["avg"], f["first"]], axis=1)  # [N, 2, 2048]

    cache_path = Path(real_cache) if real_cache else fvd.default_cache_path(ev, info, f"{split}-inception")
    feats, _ = fvd.cached_features(cache_path, info, compute)
    return feats, {**info["real"], "cache": str(cache_path) if cache_path else None}


def c3d_detector_info(ev) -> dict[str, Any]:
    """What identifies C3D outputs: the network, the pinned hashes of TGANv2's two files, the preprocessing."""
    return {"detector_id": c3d.DETECTOR_ID, "weights_sha256": ev.c3d_weights_sha256.lower(),
            "mean_sha256": ev.c3d_mean_sha256.lower(), "preprocess": c3d.PREPROCESS_ID,
            "cache_format": fvd.CACHE_FORMAT}


def load_c3d_files(ev, device: str) -> tuple[c3d.C3DUCF101, np.ndarray]:
    """(network, cropped mean clip) from the pinned files of evaluate.c3d_weights / c3d_mean."""
    return (c3d.load_c3d(ev.c3d_weights, ev.c3d_weights_sha256, device),
            c3d.load_mean(ev.c3d_mean, ev.c3d_mean_sha256))


def _c3d_outputs(videos: np.ndarray, ev, device: str, progress: bool, desc: str,
                 files: tuple[c3d.C3DUCF101, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fc7 features [N, 4096], class probabilities [N, 101]) of uint8 videos [N, 16, H, W, C]; ``files``:
    :func:`load_c3d_files`' result (loaded here when None)."""
    net, mean = files if files is not None else load_c3d_files(ev, device)
    return c3d.c3d_outputs(videos, net, mean, batch_size=ev.batch_size, device=device, progress=progress, desc=desc)


def real_c3d_features(cfg: ExperimentConfig, frames: int, *, device: str | None = None, progress: bool = True,
                      files: tuple[c3d.C3DUCF101, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """C3D fc7 features [N, 4096] of the real clips of evaluate.c3d_fid_split (the FVD's clip protocol:
    evaluate.num_real clips of ``frames`` frames, evaluate.real_seed), cached under evaluate.cache_dir.
    ``files``: the loaded network and mean clip, or None: loaded only if the features must be computed."""
    ev = cfg.evaluate
    split = ev.c3d_fid_split
    info = {**c3d_detector_info(ev), "real": eval_clips_record(cfg, split, frames)}

    def compute() -> np.ndarray:
        return _c3d_outputs(protocol_clips(cfg, split, frames), ev, device or "cpu", progress, f"C3D real {split}",
                            files)[0]

    cache_path = fvd.default_cache_path(ev, info, f"{split}-c3d")
    feats, _ = fvd.cached_features(cache_path, info, compute)
    return feats, {**info["real"], "cache": str(cache_path) if cache_path else None}


def fid_entry(real: np.ndarray, gen: np.ndarray, ev, **labels: Any) -> dict[str, Any]:
    """A Fréchet distance of generated features [N, D] to real ones [M, D] as a metrics entry: value (exact,
    float64, unbiased covariances), N, the small-sample flag (fewer than D + 1 on a side), the bootstrap
    interval as FVD's, and ``labels`` (split, frames, ...)."""
    r, g = real.astype(np.float64), gen.astype(np.float64)
    value = fvd.frechet_distance_fast(r, g)
    entry: dict[str, Any] = {"computed": True, "value": value, "n_real": len(r), "n_generated": len(g), **labels,
                             "reliable": min(len(r), len(g)) > r.shape[1], "interval": None}
    entry.update(fvd.bootstrap_entry(r, g, ev, value))
    return entry


def is_entry(probs: np.ndarray, splits: int, too_few: str) -> dict[str, Any]:
    """The IS of class probabilities [N, C] with ``splits`` equal parts as a metrics entry (more than one part:
    value = mean over the parts, interval = mean ± std); "not computed: ``too_few``" when N < splits."""
    if len(probs) < splits:
        return {"computed": False, "reason": too_few}
    mean, std = inception_score(probs, splits)
    return {"computed": True, "value": mean, "n_generated": len(probs), "n_real": 0, "splits": splits,
            "interval": [mean - std, mean + std] if splits > 1 else None}


def c3d_metrics(real: np.ndarray, feats: np.ndarray, probs: np.ndarray, ev) -> dict[str, dict[str, Any]]:
    """{"c3d_fid", "c3d_is"} (paper Table 1, TGANv2's protocol) of generated C3D features [N, 4096] and class
    probabilities [N, 101] against real features [M, 4096]: FID with the bootstrap interval of FVD's; IS of
    evaluate.c3d_is_splits equal parts of the set, mean ± std over the parts."""
    splits = ev.c3d_is_splits
    return {"c3d_fid": fid_entry(real, feats, ev, split=ev.c3d_fid_split),
            "c3d_is": is_entry(probs, splits, f"{len(probs)} videos < {splits} parts (evaluate.c3d_is_splits)")}


def frame_fids(real: dict[str, np.ndarray], gen: np.ndarray, ev) -> dict[str, dict[str, Any]]:
    """{"fid_avg_<split>", "fid_first_<split>": entry} of generated [N, 2, 2048] against each split's real
    [M, 2, 2048]: value (exact Fréchet distance, float64, unbiased covariances), bootstrap interval as FVD's,
    N, and the small-sample flag (fewer than 2049 on a side)."""
    out: dict[str, dict[str, Any]] = {}
    for split, feats in real.items():
        for k, kind in enumerate(("avg", "first")):
            out[f"fid_{kind}_{split}"] = fid_entry(feats[:, k], gen[:, k], ev, split=split,
                                                   frames="all, averaged" if kind == "avg" else "first")
    return out


def set_id(settings: dict[str, Any]) -> str:
    """sha256 of a sample set's settings without its chunk record: equal for a set and its chunks."""
    return hashlib.sha256(json.dumps({k: v for k, v in settings.items() if k != "chunk"}, sort_keys=True,
                                     default=str).encode()).hexdigest()


def sample_features(cfg: ExperimentConfig, samples: str | Path, out: str | Path, *, device: str | None = None,
                    progress: bool = True) -> int:
    """I3D features of the videos of ``samples`` (a sample set or one chunk of it) into ``out``:
    ``features`` [n, D], ``range`` [lo, hi] (the samples they are), ``set_id``, ``detector`` (JSON);
    returns n."""
    ev = cfg.evaluate
    videos, meta = fvd.load_videos_npz(samples)
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    lo, hi = (settings.get("chunk") or {}).get("range", [0, len(videos)])
    if hi - lo != len(videos):
        raise fvd.FVDError(f"{samples}: its chunk record says samples {lo}..{hi - 1}, it holds {len(videos)}")
    device = device or str(fvd.default_device())
    detector = i3d.load_i3d(device, endpoint=ev.features)
    feats = fvd.extract_features(videos, detector, batch_size=ev.batch_size, device=device, progress=progress,
                                 desc="I3D generated")
    arrays = {"features": feats, "range": np.array([lo, hi], np.int64), "set_id": np.array(set_id(settings)),
              "detector": np.array(json.dumps(fvd.detector_info(ev.features), sort_keys=True)),
              "frames": np.array(videos.shape[1], np.int64)}
    if ev.frame_fid:  # Inception features per video: [n, 2, 2048] (averaged over the frames, first frame)
        arrays["inception"] = _gen_frame_features(videos, device, progress)
        arrays["inception_detector"] = np.array(json.dumps(frame_detector_info(), sort_keys=True))
        if ev.is_weights:  # class probabilities per video: [n, 2, 1008]
            arrays["inception_probs"] = _gen_class_probs(videos, ev.is_weights, device)
    if ev.c3d_weights:  # C3D fc7 features [n, 4096] and class probabilities [n, 101] per video
        arrays["c3d_features"], arrays["c3d_probs"] = _c3d_outputs(videos, ev, device, progress, "C3D generated")
        arrays["c3d_detector"] = np.array(json.dumps(c3d_detector_info(ev), sort_keys=True))
    save_npz(out, arrays)
    return len(feats)


def _gen_class_probs(videos: np.ndarray, weights: str, device: str) -> np.ndarray:
    """[n, 2, 1008]: softmax of the Inception logits per frame, averaged over each video's frames / of its first
    frame (FIDInceptionV3 with pytorch-fid's weights)."""
    import torch

    net = load_pytorch_fid_weights(weights, device)
    out = []
    with torch.inference_mode():
        for v in videos:  # [T, H, W, C]
            _, logits = net(inception.preprocess_frames(v).to(device))
            p = torch.softmax(logits.double(), dim=1).cpu().numpy()  # [T, 1008]
            out.append(np.stack([p.mean(axis=0), p[0]]))
    return np.stack(out).astype(np.float32)


def _gen_frame_features(videos: np.ndarray, device: str, progress: bool) -> np.ndarray:
    f = inception.video_frame_features(videos, inception.load_inception(device=device), device=device,
                                       progress=progress, desc="Inception generated")
    return np.stack([f["avg"], f["first"]], axis=1)  # [n, 2, 2048]


def gathered_frame_features(paths: Sequence[str | Path], n: int, key: str = "inception",
                            detector: dict[str, Any] | None = None) -> np.ndarray:
    """[n, ...]: the chunks' Inception features (``inception``, [n, 2, 2048]) or class probabilities
    (``inception_probs``), or their C3D features / probabilities (``c3d_features``, ``c3d_probs``; give
    ``detector`` = :func:`c3d_detector_info`) in sample order (after :func:`gathered_features` checked the
    chunks); an error names a chunk made without the setting or with another network."""
    parts = []
    network = "c3d" if key.startswith("c3d") else "inception"
    want = json.loads(json.dumps(detector if detector is not None else frame_detector_info()))
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            if key not in z.files:
                raise fvd.FVDError(f"{p}: no {key} (made with evaluate.frame_fid off or without evaluate.is_weights / "
                                   "evaluate.c3d_weights); rerun its features job")
            if json.loads(str(z[f"{network}_detector"])) != want:
                raise fvd.FVDError(f"{p}: {network} features of another network, weights or preprocessing")
            parts.append((int(z["range"][0]), np.asarray(z[key])))
    parts.sort(key=lambda t: t[0])
    out = np.concatenate([f for _, f in parts])
    if len(out) != n:
        raise fvd.FVDError(f"the chunks' {key} cover {len(out)} of {n} samples")
    return out


def gathered_features(paths: Sequence[str | Path], settings: dict[str, Any], n: int, frames: int,
                      features: str) -> np.ndarray:
    """[n, D]: the per-chunk features of one sample set put in sample order; checks that they are the
    set's (same settings), made by this detector, and cover samples 0 .. n - 1 once each."""
    want, detector = set_id(settings), fvd.detector_info(features)
    parts = []
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            if not {"features", "range", "set_id", "detector"} <= set(z.files):
                raise fvd.FVDError(f"{p}: not a features file of `vdm evaluate --features-only`")
            if str(z["set_id"]) != want:
                raise fvd.FVDError(f"{p}: features of another sample set (its settings differ)")
            if json.loads(str(z["detector"])) != json.loads(json.dumps(detector)):
                raise fvd.FVDError(f"{p}: made with another detector or feature layer than evaluate.features="
                                   f"{features!r}")
            if int(z["frames"]) != frames:
                raise fvd.FVDError(f"{p}: features of {int(z['frames'])}-frame videos, the set has {frames}")
            lo, hi = (int(v) for v in z["range"])
            parts.append((lo, hi, p, np.asarray(z["features"])))
    parts.sort(key=lambda t: t[0])
    expect = 0
    for lo, hi, p, f in parts:
        if lo != expect or len(f) != hi - lo:
            raise fvd.FVDError(f"{p}: features of samples {lo}..{hi - 1}, expected the chunk starting at {expect}")
        expect = hi
    if expect != n:
        raise fvd.FVDError(f"the features cover samples 0..{expect - 1} of {n}: chunk features missing")
    return np.concatenate([f for *_, f in parts])


def evaluate(cfg: ExperimentConfig, samples: str | Path, *, real: str | Path | None = None,
             real_cache: str | Path | None = None, device: str | None = None, progress: bool = True,
             gen_features: Sequence[str | Path] | None = None,
             real_frame_caches: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """The metrics dict of DESIGN.md for the sample set ``samples`` (see module docstring); with
    ``gen_features`` (the set's per-chunk features files) the videos themselves are not read."""
    ev = cfg.evaluate
    if gen_features:
        try:
            shape, sample_meta = read_samples_header(samples)
        except ArtifactError as e:
            raise fvd.FVDError(str(e)) from None
    else:
        videos, sample_meta = fvd.load_videos_npz(samples)
        shape = videos.shape
    frames = int(shape[1])
    device = device or str(fvd.default_device())
    detector = None if gen_features else i3d.load_i3d(device, endpoint=ev.features)  # None: only if needed
    feats_real, real_info = real_features(cfg, frames, detector, real=real, real_cache=real_cache,
                                          device=device, progress=progress)
    notes: list[str] = []
    if real_info["shape"] is not None and tuple(real_info["shape"][2:]) != tuple(shape[2:]):
        notes.append(f"real frames are {tuple(real_info['shape'][2:])} (H, W, C), generated "
                     f"{tuple(shape[2:])}")
    if gen_features:
        settings = sample_meta.get("settings") if isinstance(sample_meta.get("settings"), dict) else {}
        feats_gen = gathered_features(gen_features, settings, int(shape[0]), frames, ev.features)
    else:
        feats_gen = fvd.extract_features(videos, detector, batch_size=ev.batch_size, device=device,
                                         progress=progress, desc="I3D generated")
    result = fvd.compute_fvd(feats_real, feats_gen, ev, progress=progress)
    result["warnings"] = result["warnings"] + notes
    # further metrics of the same set, each {"computed": bool, "value", "interval", "n_*" | "reason"}
    result["also"] = {"fvd2048_16f": fvd.fvd2048_16f(feats_real, feats_gen, frames, ev.features, ev,
                                                     progress=progress)}
    result["also"].update(_frame_metrics(cfg, None if gen_features else videos, int(shape[0]), frames, gen_features,
                                         device, progress, real_frame_caches or {}, real is not None))
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


IS_NAMES = ("is_avg_1", "is_avg_10", "is_first_1", "is_first_10")


def inception_scores(probs: np.ndarray) -> dict[str, dict[str, Any]]:
    """IS-avg / IS-first with 1 and 10 splits of generated class probabilities [N, 2, 1008] (10 splits: the mean
    over splits, interval = mean ± std over splits, the usual report)."""
    out: dict[str, dict[str, Any]] = {}
    for k, kind in enumerate(("avg", "first")):
        for splits in (1, 10):
            out[f"is_{kind}_{splits}"] = is_entry(probs[:, k], splits, f"{len(probs)} videos < {splits} splits")
    return out


def _frame_metrics(cfg: ExperimentConfig, videos: np.ndarray | None, n: int, frames: int,
                   gen_features: Sequence[str | Path] | None, device: str, progress: bool,
                   caches: dict[str, str | Path], real_npz: bool) -> dict[str, Any]:
    """FID-avg / FID-first against each split of evaluate.frame_fid_splits, IS-avg / IS-first, and the C3D
    metrics of UCF-101 -- or why each was not computed. ``videos``: the set's videos as :func:`evaluate`
    read them (None with ``gen_features``, the per-chunk features); ``n``: the set's size."""
    ev = cfg.evaluate
    out: dict[str, Any] = {}
    if ev.c3d_weights:  # paper Table 1: FID and IS of TGANv2's C3D network
        if gen_features:
            feats = gathered_frame_features(gen_features, n, "c3d_features", c3d_detector_info(ev))
            probs = gathered_frame_features(gen_features, n, "c3d_probs", c3d_detector_info(ev))
            files = None  # the network is loaded only if the real clips' features are not cached
        else:
            files = load_c3d_files(ev, device)  # once for the generated and the real clips
            feats, probs = _c3d_outputs(videos, ev, device, progress, "C3D generated", files)
        real_c3d = real_c3d_features(cfg, frames, device=device, progress=progress, files=files)[0]
        out.update(c3d_metrics(real_c3d, feats, probs, ev))
    elif cfg.data.source == "ucf101":
        why = (f"needs TGANv2's C3D UCF-101 files {c3d.C3D_FILE} and {c3d.MEAN_FILE} (evaluate.c3d_weights, "
               "evaluate.c3d_mean, each with its sha256): no package ships them")
        out.update({name: {"computed": False, "reason": why} for name in ("c3d_fid", "c3d_is")})
    names = [f"fid_{kind}_{split}" for split in ev.frame_fid_splits for kind in ("avg", "first")]
    reason = ("evaluate.frame_fid is off" if not ev.frame_fid else
              "real clips given as --real npz (frame FID uses each split's protocol clips)" if real_npz else "")
    if reason:
        return {**out, **{name: {"computed": False, "reason": reason} for name in (*names, *IS_NAMES)}}
    if gen_features:
        gen = gathered_frame_features(gen_features, n)
    else:
        gen = _gen_frame_features(videos, device, progress)
    real = {split: real_frame_features(cfg, frames, split, real_cache=caches.get(split), device=device,
                                       progress=progress)[0] for split in ev.frame_fid_splits}
    out.update(frame_fids(real, gen, ev))
    if not ev.is_weights:
        why = f"needs pytorch-fid's {PYTORCH_FID_FILE} (evaluate.is_weights): the Inception logits layer"
        return {**out, **{name: {"computed": False, "reason": why} for name in IS_NAMES}}
    if gen_features:
        probs = gathered_frame_features(gen_features, n, key="inception_probs")
    else:
        probs = _gen_class_probs(videos, ev.is_weights, device)
    return {**out, **inception_scores(probs)}
