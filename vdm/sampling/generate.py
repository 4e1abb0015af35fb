"""Sampling a sample set: the library behind ``vdm sample`` (its flags live in :mod:`vdm.sampling.cli`).

``generate(cfg, export, device)`` draws ``sample.num_samples`` videos from an exported model with the
configured sampler, guidance and task, sample i from its own seed ``sample.seed + i``, and returns the
arrays of the samples ``.npz`` (see :mod:`vdm.artifacts.samples`); ``settings_dict`` is what the file
records about how they were made.
"""

from __future__ import annotations

import logging
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vdm.artifacts.samples import read_samples
from vdm.config import ExperimentConfig, to_dict
from vdm.data.loader import eval_clips
from vdm.diffusion.schedule import CosineSchedule
from vdm.sampling import tasks
from vdm.sampling.config import CLIP_TASKS, chunk_range
from vdm.sampling.samplers import network_evaluations
from vdm.sampling.seeds import StackedGenerator, sample_seeds
from vdm.seeds import numpy_rng
from vdm.utils.io import sha256_file

log = logging.getLogger("vdm.sample")


# ---------------------------------------------------------------------------------------------
# uint8 ↔ x-space (the data loader's convention: x = u / 127.5 − 1)
# ---------------------------------------------------------------------------------------------
def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[B, C, T, H, W] in [−1, 1] → uint8 [B, T, H, W, C]."""
    u = ((x.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)  # [B, C, T, H, W]
    return u.permute(0, 2, 3, 4, 1).cpu().numpy()


def from_uint8(u: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [B, T, H, W, C] → float32 [B, C, T, H, W] in [−1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(u)).to(device).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


# ---------------------------------------------------------------------------------------------
# Conditioning inputs
# ---------------------------------------------------------------------------------------------
def _clips_seed(cfg: ExperimentConfig) -> int:
    return cfg.seed if cfg.sample.clips_seed < 0 else cfg.sample.clips_seed


def needs_videos(sc) -> bool:
    return sc.task in ("prediction", "superres") or (sc.task == "extension" and sc.cond_frames > 0)


def load_clips(cfg: ExperimentConfig, num: int, frames: int, start: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Clips ``start .. num - 1``: uint8 [num - start, T', H', W', C] and meta {"cls", "txt"}, from
    ``sample.cond_npz`` or real clips (eval_clips)."""
    sc = cfg.sample
    if sc.cond_npz:
        path = Path(sc.cond_npz)
        if not path.is_file():
            raise FileNotFoundError(f"sample.cond_npz: {path} not found")
        videos, extra = read_samples(path, arrays=("cls", "txt"))  # a clips .npz has the samples layout
        meta = {"cls": extra["cls"][start:num] if "cls" in extra else None,
                "txt": list(extra["txt"][start:num]) if "txt" in extra else None}
        if len(videos) < num:
            raise ValueError(f"sample.cond_npz: {path} has {len(videos)} videos, {num} are needed")
        return videos[start:num], meta

    return eval_clips(cfg.data, sc.cond_split, num, _clips_seed(cfg), frames=frames, return_meta=True, start=start)


def clips_of_samples(cfg: ExperimentConfig, lo: int, hi: int, frames: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The conditioning clips of samples lo .. hi - 1 and their meta, one row per sample: sample i conditions on
    clip i // sample.samples_per_clip (k draws per clip) in prediction and extension, on clip i otherwise."""
    k = cfg.sample.samples_per_clip if cfg.sample.task in CLIP_TASKS else 1
    if k == 1:
        return load_clips(cfg, hi, frames, start=lo)
    c_lo, c_hi = lo // k, (hi - 1) // k + 1
    clips, meta = load_clips(cfg, c_hi, frames, start=c_lo)  # [c_hi - c_lo, ...]
    rows = np.arange(lo, hi) // k - c_lo  # [hi - lo] row of each sample's clip
    meta = {key: ([v[r] for r in rows] if isinstance(v, list) else np.asarray(v)[rows]) if v is not None else None
            for key, v in meta.items()}
    return clips[rows], meta


def class_labels(cfg: ExperimentConfig, seeds: list[int], num_classes: int, meta: dict[str, Any],
                 start: int = 0) -> np.ndarray:
    """[n] int64 labels per ``sample.class_labels`` (see SampleConfig) of samples ``start .. start + n - 1``
    (``seeds`` and ``meta`` are theirs)."""
    mode = cfg.sample.class_labels
    if mode == "eval":
        cls = meta.get("cls")
        if cls is None:
            raise ValueError("sample.class_labels=eval needs labelled conditioning clips (the data has no 'cls')")
        return np.asarray(cls, dtype=np.int64)[: len(seeds)]
    if mode == "round_robin":
        return np.arange(start, start + len(seeds), dtype=np.int64) % num_classes
    # uniform: drawn from a stream of sample i's seed kept apart from its noise stream
    return np.array([numpy_rng(s, "sample.class").integers(num_classes) for s in seeds], dtype=np.int64)


def captions(cfg: ExperimentConfig, num: int, meta: dict[str, Any], start: int = 0) -> list[str]:
    """Captions of samples ``start .. start + num - 1`` (``meta`` holds those samples' clips)."""
    prompts = cfg.sample.prompts
    if prompts:
        return [prompts[i % len(prompts)] for i in range(start, start + num)]
    txt = meta.get("txt")
    if not txt or any(t is None for t in txt[:num]):
        raise ValueError("text-conditioned model: set sample.prompts or use clips that carry captions ('txt')")
    return [str(t) for t in txt[:num]]


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def generate(cfg: ExperimentConfig, export, device: torch.device, *, progress: bool = True,
             chunk: int | None = None) -> dict[str, np.ndarray]:
    """Sample ``cfg.sample.num_samples`` videos from ``export`` -- or only those of chunk ``chunk``
    (``sample.chunk_size``) -- and return the arrays of the npz.

    Sample i depends only on (export, settings, seed i): labels, captions and conditioning clips are
    those of index i in the whole set, and the batches are the set's own (a chunk is a whole number of
    batches), so the chunks of any chunk size put together are the unchunked set bit for bit."""

    sc = cfg.sample
    mc, dc = export.model_cfg, export.diffusion_cfg
    N = sc.num_samples
    lo_set, hi_set = (0, N) if chunk is None else chunk_range(sc, chunk)  # samples of this call
    T = sc.frames or cfg.data.frames
    C, S = mc.in_channels, mc.image_size
    schedule = CosineSchedule.from_config(dc)
    seeds = sample_seeds(sc.seed, N)
    denoiser = tasks.make_denoiser(export.net, dc.prediction, sc, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = sc.tf32
        torch.backends.cudnn.allow_tf32 = sc.tf32

    wants_meta = (mc.num_classes > 0 and sc.class_labels == "eval") or (mc.text_dim > 0 and not sc.prompts)
    cond_u8, meta = None, {}
    if needs_videos(sc) or wants_meta:
        clips, meta = clips_of_samples(cfg, lo_set, hi_set, T)  # [hi_set - lo_set, ...]
        cond_u8 = clips if needs_videos(sc) else None
    out: dict[str, np.ndarray] = {"seeds": np.asarray(seeds[lo_set:hi_set], dtype=np.int64)}
    if sc.guidance_weight > 0 and mc.num_classes == 0 and mc.text_dim == 0:
        raise ValueError(f"sample.guidance_weight={sc.guidance_weight} needs a class- or text-conditional model "
                         "(the export has num_classes=0 and text_dim=0)")
    n = hi_set - lo_set
    cls = enc = caps = None
    if mc.num_classes > 0:
        labels = class_labels(cfg, seeds[lo_set:hi_set], mc.num_classes, meta, start=lo_set)  # [n] of this call
        if labels.min() < 0 or labels.max() >= mc.num_classes:
            raise ValueError(f"class labels {labels.tolist()} out of range for a model with "
                             f"num_classes={mc.num_classes}")
        cls = torch.from_numpy(labels).to(device)
        out["cls"] = cls.cpu().numpy()
    if mc.text_dim > 0:
        caps = captions(cfg, n, meta, start=lo_set)
        from vdm.model.text_encoder import load_text_encoder

        enc = load_text_encoder(sc.text_encoder or export.meta.get("text_encoder", "") or "minilm", device)
        if enc.dim != mc.text_dim:
            raise ValueError(f"text encoder {enc.name!r} gives {enc.dim}-d tokens but the model expects "
                             f"text_dim={mc.text_dim}")
        out["txt"] = np.asarray(caps, dtype=str)

    cond = None
    if cond_u8 is not None:
        cond = from_uint8(cond_u8, device)  # [n, C, T', H', W'] (samples lo_set .. hi_set - 1)
        if cond.shape[1] != C:
            raise ValueError(f"conditioning videos have {cond.shape[1]} channels, the model {C}")
        if sc.task == "superres":
            f = sc.superres_factor
            if S % f:
                raise ValueError(f"model image_size {S} is not divisible by sample.superres_factor {f}")
            if cond.shape[-1] == S:  # real clips at the model's resolution: make x^a = D(x) ourselves
                cond = from_uint8(to_uint8(tasks.downsample(cond, f, sc.superres_antialias)), device)
            if cond.shape[-2:] != (S // f, S // f):
                raise ValueError(f"superres inputs are {tuple(cond.shape[-2:])}, expected {(S // f, S // f)} "
                                 f"(image_size {S} / factor {f})")
            out["cond_videos"] = to_uint8(cond)
        else:
            if cond.shape[-2:] != (S, S):
                raise ValueError(f"conditioning videos are {tuple(cond.shape[-2:])}, the model {S}x{S}")
            if cond.shape[2] < sc.cond_frames:
                raise ValueError(f"conditioning videos have {cond.shape[2]} frames, cond_frames={sc.cond_frames}")
            out["cond_videos"] = cond_u8
            out["cond_frame_indices"] = np.arange(sc.cond_frames, dtype=np.int64)

    if sc.task == "extension":
        blocks = tasks.num_extension_blocks(T, sc.total_frames, sc.overlap)
    elif sc.task == "superres":
        blocks = tasks.num_superres_blocks(cond.shape[2], sc.superres_block, sc.overlap)
    else:
        blocks = 1
    # the set's own batches (global boundaries b·batch_size): a chunk is a whole number of them
    first, last = lo_set // sc.batch_size, math.ceil(hi_set / sc.batch_size)
    bar = tqdm(total=(last - first) * blocks, desc=f"sample {sc.task}", unit="block", disable=not progress)
    videos: np.ndarray | None = None  # uint8 [n, T, H, W, C], filled batch by batch (one copy in memory)
    for b in range(first, last):
        lo, hi = b * sc.batch_size, min(hi_set, (b + 1) * sc.batch_size)  # sample indices of the batch
        i, j = lo - lo_set, hi - lo_set  # their rows in this call's arrays
        gen = StackedGenerator(seeds[lo:hi], device)
        extra: dict[str, Any] = {}
        if cls is not None:
            extra["cls"] = cls[i:j]
        if enc is not None:  # captions encoded per batch: the same tokens for any chunking
            tokens, mask = enc(caps[i:j])
            extra["text"], extra["text_mask"] = tokens.to(device), mask.to(device)
        kw = dict(extra_args=extra, disable=not progress)
        shape = (hi - lo, C, T, S, S)
        with torch.no_grad():  # reconstruction guidance re-enables gradients for its own backward pass
            if sc.task == "unconditional":
                x = tasks.sample_block(sc, denoiser, shape, schedule, gen, **kw)
                bar.update(1)
            elif sc.task == "prediction":
                x = tasks.predict(sc, denoiser, cond[i:j, :, : sc.cond_frames], T, schedule, gen, **kw)
                bar.update(1)
            elif sc.task == "extension":
                x_init = cond[i:j, :, : sc.cond_frames] if cond is not None else None
                x = tasks.extend(sc, denoiser, shape, sc.total_frames, sc.overlap, schedule, gen, x_init=x_init,
                                 progress=bar.update, **kw)
            else:
                x = tasks.superres(sc, denoiser, cond[i:j], sc.superres_factor, schedule, gen, progress=bar.update,
                                   **kw)
        u8 = to_uint8(x)  # [B, T, H, W, C]
        if videos is None:
            videos = np.empty((n, *u8.shape[1:]), dtype=np.uint8)
        videos[i:j] = u8
        log.info("batch %d/%d: samples %d..%d done", b + 1, math.ceil(N / sc.batch_size), lo, hi - 1)
    bar.close()
    out["videos"] = videos
    return out


def settings_dict(cfg: ExperimentConfig, export, export_path: Path, device: torch.device) -> dict[str, Any]:
    sc = cfg.sample
    sample = to_dict(sc)
    del sample["chunk_size"]  # how the set was split into jobs changes no sample: not a setting of the set
    return {
        "sample": sample,
        "frames": sc.frames or cfg.data.frames,
        "clips_seed": _clips_seed(cfg),
        "network_evaluations_per_block": network_evaluations(sc),
        "model": to_dict(export.model_cfg),
        "diffusion": to_dict(export.diffusion_cfg),
        "data": to_dict(cfg.data),
        "experiment": cfg.name,
        "export": str(export_path),
        "export_sha256": sha256_file(export_path),
        "export_meta": export.meta,
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
