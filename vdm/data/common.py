"""Shared pieces of the data part: errors, the record type, preprocessing and record (de)coding.

Preprocessing follows the paper's data pipeline (§5): resize the short side to the target
resolution, centre crop to a square, optionally resample to a target frame rate.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import re
from fractions import Fraction
from typing import Any

import numpy as np

from vdm.data.config import DataConfig


class DataError(RuntimeError):
    """Bad input data (an empty source, a corrupt shard, a checksum mismatch); the message names it."""


class Rejected(Exception):
    """One input cannot become a record; ``reason`` is written to the manifest (or raised with --strict)."""


@dataclasses.dataclass
class Record:
    """One preprocessed source video: what becomes one webdataset record."""

    key: str  # webdataset __key__ (no dots, no slashes)
    video: np.ndarray  # uint8 [T, H, W, C]
    meta: dict[str, Any]  # source file, fps, split, ... (merged into the record's json)
    cls: int | None = None
    txt: str | None = None


@dataclasses.dataclass
class Rejection:
    input: str  # the rejected input (file name or id)
    reason: str


_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-]")
_KEY_PLAIN = re.compile(r"[A-Za-z0-9_\-/]*")
PART_SEP = "+"  # record key of part i of a split video: <key>+<i:04d> (no key made by make_key has a "+")


def make_key(text: str) -> str:
    """A webdataset-safe key (webdataset splits the extension at the first dot of the name): "/" becomes
    "_"; a name with any other character outside [A-Za-z0-9_-] has those replaced by "_" and gets the
    first 10 hex digits of its sha256 appended, so that "clip a" and "clip_a" (or two all-non-ASCII names
    of one length) get different keys. The rest ("a/b" vs "a_b") is caught by the shard writer's listing
    check, which names both inputs before anything is decoded."""
    key = _KEY_BAD.sub("_", text)
    if not _KEY_PLAIN.fullmatch(text):
        key += "-" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return key


def split_record(rec: Record, max_frames: int) -> list[Record]:
    """``rec`` cut into consecutive parts of at most ``max_frames`` frames, as equal as possible
    (``data.max_record_frames``), keyed ``<key>+<part>``; a record that fits is returned as it is."""
    T = len(rec.video)
    if max_frames <= 0 or T <= max_frames:
        return [rec]
    n = -(-T // max_frames)  # ceil
    bounds = np.linspace(0, T, n + 1).round().astype(int)
    return [Record(key=f"{rec.key}{PART_SEP}{i:04d}", video=np.ascontiguousarray(rec.video[lo:hi]),
                   meta={**rec.meta, "part": i, "parts": n, "first_frame": int(lo), "source_frames": T},
                   cls=rec.cls, txt=rec.txt)
            for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]


# ------------------------------------------------------------------------------------------------
# Preprocessing (paper §5: resize short side, centre crop; optional fps resampling).
# ------------------------------------------------------------------------------------------------
def resize_short_side_crop(video: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, H, W, C] -> uint8 [T, size, size, C]: resize the short side to ``size``, centre crop.

    Pillow bilinear (antialiased when shrinking: its filter support scales with the factor).
    Pillow rather than torch so that forked shard workers never touch a thread pool.
    """
    T, H, W, C = video.shape
    if H == size and W == size:
        return video
    from PIL import Image

    scale = size / min(H, W)
    new_h, new_w = max(size, round(H * scale)), max(size, round(W * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = np.empty((T, size, size, C), np.uint8)  # [T, S, S, C]
    for t in range(T):
        img = Image.fromarray(video[t, :, :, 0] if C == 1 else video[t])
        if (new_h, new_w) != (H, W):
            img = img.resize((new_w, new_h), Image.BILINEAR)
        frame = np.asarray(img)[top:top + size, left:left + size]
        out[t] = frame[..., None] if C == 1 else frame
    return out


def convert_channels(video: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [T, H, W, c] -> [T, H, W, channels]: gray -> RGB by repetition, RGB -> gray by BT.601 luma."""
    c = video.shape[-1]
    if c == channels:
        return video
    if c == 1 and channels == 3:
        return np.repeat(video, 3, axis=-1)
    if c == 3 and channels == 1:
        luma = video.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {c} channels to {channels}")


def resample_indices(num_frames: int, src_fps: float, dst_fps: float) -> np.ndarray:
    """Frame indices of a ``src_fps`` video shown at ``dst_fps`` (nearest earlier frame)."""
    if dst_fps <= 0 or src_fps <= 0 or abs(src_fps - dst_fps) < 1e-6:
        return np.arange(num_frames)
    duration = num_frames / src_fps
    n_out = int(np.floor(duration * dst_fps + 1e-9))
    idx = np.floor(np.arange(n_out) * (src_fps / dst_fps) + 1e-9).astype(np.int64)
    return idx[idx < num_frames]


def preprocess(video: np.ndarray, cfg: DataConfig, src_fps: float | None) -> tuple[np.ndarray, float | None]:
    """Apply the configured preprocessing: fps resampling, resize + crop, channel conversion."""
    fps = src_fps
    if cfg.fps > 0 and src_fps:
        video = video[resample_indices(len(video), src_fps, cfg.fps)]
        fps = cfg.fps
    video = resize_short_side_crop(video, cfg.resolution)
    video = convert_channels(video, cfg.channels)
    return np.ascontiguousarray(video), fps


def preprocessing_settings(cfg: DataConfig) -> dict[str, Any]:
    """What the manifest records as the preprocessing (everything that changes record bytes)."""
    keys = ["source", "resolution", "channels", "fps", "storage", "frames", "frameskip", "max_videos"]
    if cfg.max_record_frames > 0:  # (left out when off: shards written before the option stay valid)
        keys.append("max_record_frames")
    if cfg.storage == "mp4":
        keys.append("mp4_crf")
    if cfg.source == "moving_mnist":
        keys += ["mnist_num_digits", "mnist_canvas", "mnist_video_length", "mnist_train_videos",
                 "mnist_test_videos", "mnist_test_fraction", "mnist_speed"]
    if cfg.source == "ucf101":
        keys += ["ucf_split", "ucf_train_on_all"]
    out = {k: getattr(cfg, k) for k in keys}
    if cfg.source in ("ucf101", "kinetics600", "video_folder"):
        out["resize"] = "short side to resolution on decode (swscale area filter), centre crop"
    else:
        out["resize"] = "short side to resolution (Pillow bilinear, antialiased when shrinking), centre crop"
    out["fps_resampling"] = "nearest earlier frame" if cfg.fps > 0 else "none"
    return json.loads(json.dumps(out))  # tuples -> lists


# ------------------------------------------------------------------------------------------------
# Record encoding (DESIGN.md "Shard record").
# ------------------------------------------------------------------------------------------------
def encode_npy(video: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(video), allow_pickle=False)
    return buf.getvalue()


@functools.lru_cache(maxsize=64)
def _npy_header(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    buf = io.BytesIO(header)
    version = np.lib.format.read_magic(buf)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(buf)
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed in shards")
    return shape, fortran, dtype, buf.tell()


def decode_npy(data: bytes) -> np.ndarray:
    """Zero-copy, read-only view of an ``.npy`` payload (header parses are cached: records share shapes)."""
    major = data[6]
    head_len = int.from_bytes(data[8:10], "little") + 10 if major == 1 else int.from_bytes(data[8:12], "little") + 12
    shape, fortran, dtype, offset = _npy_header(bytes(data[:head_len]))
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def encode_mp4(video: np.ndarray, fps: float, crf: int) -> bytes:
    """H.264 (yuv420p; deterministic: the same frames give the same bytes) of uint8 [T, H, W, C]."""
    import av

    T, H, W, C = video.shape
    rgb = np.repeat(video, 3, axis=-1) if C == 1 else video
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        rate = max(1, round(fps or 25))
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.thread_count = 1
        # Same frames, same bytes: one x264 thread, explicit timestamps, and no macroblock-tree rate control
        # (with it, x264's assembly made ~1 in 20 small videos differ from run to run; measured with
        # tests/test_determinism.py::test_shards_are_byte_identical_across_runs_and_workers).
        stream.options = {"crf": str(crf), "preset": "medium", "tune": "fastdecode", "threads": "1",
                          "x264-params": "no-mbtree=1"}
        for i, frame in enumerate(rgb):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, rate)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def decode_mp4(data: bytes, channels: int) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    video = np.stack(frames)  # [T, H, W, 3]
    return convert_channels(video, channels) if channels == 1 else video


def encode_record(rec: Record, cfg: DataConfig, split: str) -> dict[str, Any]:
    """The webdataset sample (all values bytes/str) of one record."""
    meta = dict(rec.meta)
    meta.update(key=rec.key, split=split, num_frames=int(rec.video.shape[0]),
                shape=list(rec.video.shape), storage=cfg.storage)
    sample: dict[str, Any] = {"__key__": rec.key}
    if cfg.storage == "npy":
        sample["video.npy"] = encode_npy(rec.video)
    else:
        sample["video.mp4"] = encode_mp4(rec.video, meta.get("fps") or 25.0, cfg.mp4_crf)
    sample["json"] = json.dumps(meta, sort_keys=True).encode("utf-8")
    if rec.cls is not None:
        sample["cls"] = str(int(rec.cls)).encode("ascii")
    if rec.txt is not None:
        sample["txt"] = rec.txt.encode("utf-8")
    return sample


def decode_video(sample: dict[str, Any], channels: int) -> np.ndarray:
    """uint8 [T, H, W, C] of a raw webdataset sample (``video.npy`` or ``video.mp4``)."""
    if "video.npy" in sample:
        return decode_npy(sample["video.npy"])
    if "video.mp4" in sample:
        return decode_mp4(sample["video.mp4"], channels)
    raise DataError(f"record {sample.get('__key__')!r} in {sample.get('__url__')!r} has no video.npy/video.mp4")
