"""The loader: webdataset shards -> clips -> (joint image+video) batches, seeded and exactly resumable.

Batches (paper §3, §4.3.1 for the joint batches)::

    {"video": float32 [B, C, T+K, H, W] in [-1, 1], "is_image": bool [B, T+K] (True on the K appended
     image frames), "cls": long [B] (when records carry classes), "txt": list[str] (when captioned),
     with K > 0 also "frame_cls": long [B, T+K] and "frame_txt": B lists of T+K captions (each frame's
     own: an appended image frame carries the class/caption of the video it was taken from),
     "key": list[str]}

Order. Per epoch e, each rank reads one *rank stream* of raw records:

* ``resampled=False``: the shard list, permuted with a seed of (seed, e) in train mode (sorted in
  eval mode), is cut with ``split_by_node`` (rank r takes shards r, r+W, ...);
* ``resampled=True`` (default for train with world_size > 1): ``webdataset.ResampledShards`` draws shards
  with replacement, seeded by (seed, e, rank), and the stream is cut to ``ceil(records / world_size)``
  records (``with_epoch``), so every rank yields the same number of batches;

then a ``webdataset`` shuffle buffer seeded by (seed, e, rank) (train mode) and groups of B records
(the last partial group of an epoch is dropped in train mode). Every random choice for batch p of epoch
e (clip offsets, flips, which image frames are appended) comes from a generator seeded by
(seed, e, p, rank), so batch p is a pure function of (seed, e, p, rank, world_size, data). Seeds follow
the project's rule (:mod:`vdm.seeds`: purposes "loader.batch", "loader.eval_record", "eval.order"); the
shard order and the shuffle buffer use webdataset's ``make_seed``, the rule's one documented exception.

DataLoader workers in train mode all read the rank stream (raw bytes only) and each decodes every
num_workers-th batch (``split_by_worker`` at the batch level): the batch sequence is the same for any
number of workers, and resuming at (epoch, position) just skips ``position`` raw groups of epoch
``epoch``. In eval mode (finite, one pass, no shuffle) the shards are split by node and then by
worker (``split_by_worker``), so ranks × workers read disjoint records that cover the split.
"""

from __future__ import annotations

import collections
import itertools
import math
import random
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vdm.data.common import DataError, decode_video
from vdm.data.config import DataConfig
from vdm.data.shard import load_manifest, verify_shards
from vdm.seeds import key_hash, numpy_rng

_TRAIN, _EVAL = 0, 1


def _shard_error(exn: Exception) -> bool:
    """webdataset handler: a corrupt/truncated shard is an error that names the shard."""
    where = [a for a in exn.args if isinstance(a, str) and ".tar" in a]
    raise DataError(f"corrupt or truncated shard {where[-1] if where else '?'}: "
                    f"{type(exn).__name__}: {exn.args[0] if exn.args else exn}") from exn


def _worker() -> tuple[int, int]:
    import torch.utils.data

    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def cut_clip(video: np.ndarray, offset: int, frames: int, frameskip: int) -> np.ndarray:
    """uint8 [N, H, W, C] -> [frames, H, W, C]: frames offset, offset+frameskip, ..."""
    return video[offset:offset + frames * frameskip:frameskip]


class _Stream:
    """The iterable behind :class:`VideoLoader` (also the DataLoader's IterableDataset)."""

    def __init__(self, loader: "VideoLoader", epoch: int, position: int):
        self.l, self.epoch, self.position = loader, epoch, position

    # ---- raw records of this rank for one epoch ----------------------------------------------
    def raw_records(self, epoch: int) -> Iterator[dict[str, Any]]:
        import webdataset as wds

        L = self.l
        if L.resampled:
            rank = L.rank
            src = wds.ResampledShards(L.urls, seed=L.seed, worker_seed=lambda: rank, deterministic=True)
            src.epoch = epoch - 1  # ResampledShards increments before drawing
            shards = iter(src)
        else:
            order = list(L.urls)
            if L.mode == _TRAIN:
                random.Random(wds.utils.make_seed(L.seed, epoch, 1)).shuffle(order)
            shards = ({"url": u} for u in itertools.islice(order, L.rank, None, L.world_size))  # split_by_node
            if L.mode == _EVAL:
                shards = wds.split_by_worker(shards)
        records = wds.tarfile_to_samples(handler=_shard_error)(shards)
        if L.mode == _TRAIN and L.cfg.shuffle_buffer > 1:
            rng = random.Random(wds.utils.make_seed(L.seed, epoch, L.rank, 2))
            records = wds.shuffle(L.cfg.shuffle_buffer, initial=L.cfg.shuffle_buffer, rng=rng)(records)
        if L.resampled:
            records = itertools.islice(records, L.records_per_rank_epoch)  # with_epoch
        return records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        L = self.l
        worker, num_workers = _worker()
        B = L.batch_size
        epoch, position = self.epoch, self.position
        k = 0  # batches of the rank stream passed since this iterator started (worker assignment)
        while True:
            # The image pool (paper §3: images from other random videos of the split) holds the most
            # recent `image_pool` records read from the rank stream, read up to `image_pool` records
            # ahead of the batch: every batch, even the first of an epoch, draws from a full pool,
            # and the pool is a function of (epoch, position) only, so resume stays exact.
            stream = iter(self.raw_records(epoch))
            pool: collections.deque = collections.deque(maxlen=L.cfg.image_pool)
            ahead: collections.deque = collections.deque()
            for rec in itertools.islice(stream, max(L.cfg.image_pool, B)):
                ahead.append(rec)
                pool.append(rec)
            p = 0
            while True:
                while len(ahead) < B:
                    rec = next(stream, None)
                    if rec is None:
                        break
                    ahead.append(rec)
                    pool.append(rec)
                if len(ahead) < B:
                    break
                group = [ahead.popleft() for _ in range(B)]
                if p >= position:
                    mine = L.mode == _EVAL or k % num_workers == worker
                    k += 1
                    if mine:
                        yield L.collate(group, pool, epoch, p)
                p += 1
            if L.mode == _EVAL:
                if ahead:
                    yield L.collate(list(ahead), pool, epoch, p)
                return
            if p == 0:
                raise DataError(f"{L.dir}: epoch {epoch} of rank {L.rank} holds fewer than batch_size={B} "
                                "records; use a smaller batch, more shards or resampled=True")
            epoch, position = epoch + 1, 0


class VideoLoader:
    """Iterable of batches over the shards of ``cfg.shards/<split>`` (see the module docstring).

    ``mode="train"``: infinite over epochs, shuffled, random clip offsets, optional flips;
    ``state_dict()`` / ``load_state_dict()`` give exact resume (the batches after loading equal the
    uninterrupted sequence). ``mode="eval"``: one pass in shard order with protocol-fixed offsets.
    """

    def __init__(self, cfg: DataConfig, split: str, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, mode: str = "train", resampled: bool | None = None):
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        if batch_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size, got {batch_size}, {rank}, {world_size}")
        self.cfg, self.split, self.batch_size, self.seed = cfg, split, batch_size, int(seed)
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.mode = _TRAIN if mode == "train" else _EVAL
        if resampled is None:
            resampled = self.mode == _TRAIN and world_size > 1
        if resampled and self.mode == _EVAL:
            raise ValueError("eval mode reads every record once; resampled=True is for training")
        self.resampled = resampled
        self.dir = Path(cfg.shards) / split
        self.manifest = load_manifest(self.dir)
        verify_shards(self.dir, self.manifest, cfg.verify)
        self.urls = [str(self.dir / s["name"]) for s in self.manifest["shards"]]
        self.num_records = int(self.manifest["num_records"])
        self.records_per_rank_epoch = math.ceil(self.num_records / world_size)
        if not resampled and len(self.urls) < world_size:
            raise DataError(f"{self.dir}: {len(self.urls)} shards for {world_size} ranks; every rank needs one "
                            "(write smaller shards or use resampled=True)")
        shape = self.manifest.get("preprocessing", {})
        if shape.get("resolution") not in (None, cfg.resolution) or shape.get("channels") not in (None, cfg.channels):
            raise DataError(f"{self.dir}: shards were written at resolution {shape.get('resolution')} with "
                            f"{shape.get('channels')} channels, the configuration asks for {cfg.resolution} "
                            f"and {cfg.channels}; rerun `vdm shard`")
        self._epoch, self._position = 0, 0

    # ---- resume ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, int]:
        """{"epoch", "position"}: the next batch is batch ``position`` of epoch ``epoch``."""
        return {"epoch": self._epoch, "position": self._position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._epoch, self._position = int(state["epoch"]), int(state["position"])

    @property
    def batches_per_epoch(self) -> int | None:
        """Batches per epoch per rank when fixed (resampled mode), else None."""
        return self.records_per_rank_epoch // self.batch_size if self.resampled else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stream = _Stream(self, self._epoch, self._position)
        if self.num_workers > 0:
            import torch.utils.data

            class _DS(torch.utils.data.IterableDataset):
                def __iter__(self_inner):
                    return iter(stream)

            it = iter(torch.utils.data.DataLoader(_DS(), batch_size=None, num_workers=self.num_workers,
                                                  prefetch_factor=4, persistent_workers=False))
        else:
            it = iter(stream)
        for batch in it:
            self._epoch, self._position = int(batch.pop("_epoch")), int(batch.pop("_position")) + 1
            yield batch

    # ---- one batch ---------------------------------------------------------------------------
    def collate(self, group: list[dict], pool, epoch: int, position: int) -> dict[str, Any]:
        import torch

        cfg = self.cfg
        T, s, K, C = cfg.frames, cfg.frameskip, cfg.images_per_video, cfg.channels
        train = self.mode == _TRAIN

        def video_of(rec) -> np.ndarray:  # [N, H, W, C], decoded once per record (records sit in the image pool)
            if "_video" not in rec:
                rec["_video"] = decode_video(rec, C)
            return rec["_video"]

        first = video_of(group[0])
        H, W = first.shape[1:3]
        out = np.empty((len(group), T + K, H, W, C), np.uint8)  # [B, T+K, H, W, C]
        batch_rng = numpy_rng(self.seed, "loader.batch", epoch, position, self.rank)
        sources: list[list[dict[str, Any]]] = []  # per example: the record each of its T + K frames came from
        for i, rec in enumerate(group):
            key = rec["__key__"]
            sources.append([rec] * T)
            rng = batch_rng if train else numpy_rng(self.seed, "loader.eval_record", key_hash(key))
            v = video_of(rec)
            n = len(v)
            if n < cfg.clip_span or v.shape[1:] != (H, W, C):
                raise DataError(f"record {key!r} in {rec.get('__url__')}: shape {v.shape}, a clip needs "
                                f"{cfg.clip_span} frames of {H}x{W}x{C}")
            if train:
                offset = int(rng.integers(0, n - cfg.clip_span + 1))
            else:
                offset = eval_offset(cfg.eval_offset, n, cfg.clip_span, self.seed, key)
            out[i, :T] = cut_clip(v, offset, T, s)
            if train and cfg.flip and rng.random() < 0.5:
                out[i, :T] = out[i, :T, :, ::-1]
            if K:
                # Paper §3: "random independent images from random videos within the same dataset".
                others = [q for q in pool if q["__key__"] != key] or [rec]
                for j, o in enumerate(rng.integers(0, len(others), size=K)):
                    img_video = video_of(others[o])
                    sources[i].append(others[o])
                    frame = img_video[int(rng.integers(0, len(img_video)))]
                    out[i, T + j] = frame[:, ::-1] if (train and cfg.flip and rng.random() < 0.5) else frame
        # uint8 -> [-1, 1] in numpy (single-threaded: no intra-op thread pool competing with training).
        x = np.ascontiguousarray(out.transpose(0, 4, 1, 2, 3)).astype(np.float32)  # [B, C, T+K, H, W]
        x /= np.float32(127.5)
        x -= np.float32(1.0)
        video = torch.from_numpy(x)  # [B, C, T+K, H, W]
        is_image = torch.zeros(len(group), T + K, dtype=torch.bool)  # [B, T+K]
        is_image[:, T:] = True
        batch: dict[str, Any] = {"video": video, "is_image": is_image,
                                 "key": [r["__key__"] for r in group], "_epoch": epoch, "_position": position}
        if all("cls" in r for r in group):
            batch["cls"] = torch.tensor([int(r["cls"]) for r in group], dtype=torch.long)  # [B]
        if all("txt" in r for r in group):
            batch["txt"] = [r["txt"].decode("utf-8") for r in group]
        if K:
            # Joint training: each frame carries the conditioning of the record it came from (the K
            # image frames: the other videos they were taken from), [B, T+K] / B lists of T+K captions.
            frames_of = [r for row in sources for r in row]
            if all("cls" in r for r in frames_of):
                batch["frame_cls"] = torch.tensor([[int(r["cls"]) for r in row] for row in sources], dtype=torch.long)
            if all("txt" in r for r in frames_of):
                batch["frame_txt"] = [[r["txt"].decode("utf-8") for r in row] for row in sources]
        return batch


def eval_offset(protocol: str, num_frames: int, span: int, seed: int, key: str, repeat: int = 0) -> int:
    """Protocol-fixed clip offset of a record: 0 ("start") or uniform seeded by (seed, key, repeat) ("random").

    Under "start" every draw of a record starts at frame 0, repeats included (paper Table 2, BAIR: 100
    samples per test video, each conditioned on its first frame; the samples differ by their seeds).
    Under "random" a record drawn again (``repeat`` > 0) gets a fresh seeded offset.
    """
    if protocol == "start":
        return 0
    rng = numpy_rng(seed, "loader.eval_record", key_hash(key), repeat)
    return int(rng.integers(0, num_frames - span + 1))


def eval_clips(cfg: DataConfig, split: str, num: int, seed: int, frames: int | None = None, *,
               return_meta: bool = False, start: int = 0):
    """``num`` evaluation clips, uint8 [N, T, H, W, C], a pure function of (shards, cfg, num, seed, frames).

    Records are chosen by a permutation seeded by ``seed`` (all records once before any repeats);
    offsets follow ``cfg.eval_offset`` ("start": the first frames, every draw; "random": seeded per
    record, and a record drawn again (num > records) gets a fresh seeded offset). ``frames`` overrides
    ``cfg.frames`` (e.g. 16 frames for FVD). With ``return_meta``: ``(clips, {"key": [...],
    "cls": int64 [N] | None, "txt": [...] | None})``. ``start``: only clips ``start .. num - 1`` of that
    list (the same clips, so a sample set split into chunks conditions every sample on the same clip).
    """
    import webdataset as wds

    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if not 0 <= start < num:
        raise ValueError(f"start must be in [0, num={num}), got {start}")
    T = int(frames or cfg.frames)
    span = T * cfg.frameskip
    split_dir = Path(cfg.shards) / split
    manifest = load_manifest(split_dir)
    verify_shards(split_dir, manifest, cfg.verify)
    R = int(manifest["num_records"])
    rng = numpy_rng(seed, "eval.order")
    rounds = math.ceil(num / R)
    order = np.concatenate([rng.permutation(R) for _ in range(rounds)])[:num]  # [N] record indices
    wanted: dict[int, list[int]] = collections.defaultdict(list)  # record index -> slots (all draws)
    for slot, r in enumerate(order):
        wanted[int(r)].append(slot)
    n = num - start  # clips returned: slots start .. num - 1, at index slot - start
    clips: list[np.ndarray | None] = [None] * n
    keys: list[str] = [""] * n
    cls: list[int | None] = [None] * n
    txt: list[str | None] = [None] * n
    urls = [{"url": str(split_dir / s["name"])} for s in manifest["shards"]]
    for g, rec in enumerate(wds.tarfile_to_samples(handler=_shard_error)(iter(urls))):
        if g not in wanted or wanted[g][-1] < start:  # not drawn, or only before this chunk
            continue
        key = rec["__key__"]
        v = decode_video(rec, cfg.channels)  # [n, H, W, C]
        if len(v) < span:
            raise DataError(f"record {key!r} in {rec['__url__']}: {len(v)} frames, an eval clip needs {span}")
        for rep, slot in enumerate(wanted[g]):  # rep: the draw's repeat index among all num draws
            if slot < start:
                continue
            off = eval_offset(cfg.eval_offset, len(v), span, seed, key, rep)
            i = slot - start
            clips[i] = np.ascontiguousarray(cut_clip(v, off, T, cfg.frameskip))
            keys[i] = key
            cls[i] = int(rec["cls"]) if "cls" in rec else None
            txt[i] = rec["txt"].decode("utf-8") if "txt" in rec else None
    if any(c is None for c in clips):
        raise DataError(f"{split_dir}: manifest lists {R} records but the shards hold fewer")
    out = np.stack(clips)  # [N, T, H, W, C]
    if not return_meta:
        return out
    meta = {"key": keys,
            "cls": np.array(cls, np.int64) if all(c is not None for c in cls) else None,
            "txt": txt if all(t is not None for t in txt) else None}
    return out, meta
