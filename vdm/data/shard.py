"""Webdataset shards of a video source, with a manifest; deterministic, parallel and resumable.

Layout (DESIGN.md "Shard record")::

    <out>/<split>/shard-000000.tar ...     one record per source video (video.npy|video.mp4, json, cls, txt)
    <out>/<split>/shard-000000.done.json   per-shard completion record (sha256, counts, rejections)
    <out>/<split>/manifest.json            shards, record/frame counts, sha256, preprocessing, rejections

Determinism: the inputs are sorted and cut into fixed groups of ``inputs_per_shard`` *before* any
decoding, so shard i always holds the records of input group i (rejected inputs only make it
smaller); tar members carry mtime 0, fixed owner and mode, members in sorted order. The same
inputs, configuration and seed therefore give byte-identical shards and manifest, whatever the
number of workers, for ``video.npy`` and ``video.mp4`` records alike (:func:`~vdm.data.common.encode_mp4` is
deterministic; tests/test_determinism.py). Resume: a shard whose ``.done.json`` matches its input group and settings
(fingerprint) and whose tar matches the recorded sha256 is kept; every other shard is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vdm.data.common import DataError, Record, Rejection, encode_record, preprocessing_settings, split_record
from vdm.data.config import DataConfig
from vdm.data.sources import Source, get_source
from vdm.utils.io import remove_stale_temporaries, remove_stale_temporaries_of, sha256_file, write_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


def _fingerprint(settings: dict, split: str, seed: int, inputs: list[str]) -> str:
    blob = json.dumps({"v": FORMAT_VERSION, "settings": settings, "split": split, "seed": seed, "inputs": inputs},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Workers: one Source per process, built once (forked workers; no torch inside).
# ------------------------------------------------------------------------------------------------
_WORKER_SOURCE: Source | None = None


def _init_worker(cfg: DataConfig, split: str, seed: int) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = get_source(cfg, split, seed)
    _WORKER_SOURCE.inputs()  # builds label/caption tables


def _load(item: str) -> list[Record | Rejection]:
    assert _WORKER_SOURCE is not None
    return _WORKER_SOURCE.load(item)


def _results(source: Source, cfg: DataConfig, split: str, seed: int, items: list[str], workers: int) -> Iterator[list]:
    """``source.load(item)`` for each item, in order; parallel over items with ``workers`` processes."""
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield source.load(item)
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, split, seed)) as pool:
        yield from pool.imap(_load, items, chunksize=1)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def _write_shard(split_dir: Path, index: int, records: list[Record], cfg: DataConfig, split: str) -> dict[str, Any]:
    """Write one shard with ``webdataset.ShardWriter`` into ``.partial/``, fsync, rename into place."""
    import webdataset as wds

    partial = split_dir / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    final = split_dir / shard_name(index)

    def _publish(fname: str) -> None:
        with open(fname, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(fname, final)

    # One ShardWriter per planned shard (maxcount above the group size): shard boundaries follow
    # the input groups, never the order in which parallel workers finish.
    with wds.ShardWriter(str(partial / "shard-%06d.tar"), maxcount=len(records) + 1, maxsize=float("inf"),
                         start_shard=index, verbose=0, post=_publish, encoder=False, mtime=0.0,
                         user="vdm", group="vdm", mode=0o444) as sink:
        for rec in records:
            sink.write(encode_record(rec, cfg, split))
    return {"name": final.name, "records": len(records), "frames": int(sum(len(r.video) for r in records)),
            "sha256": sha256_file(final), "bytes": final.stat().st_size}


def _done_path(split_dir: Path, index: int) -> Path:
    return split_dir / f"shard-{index:06d}.done.json"


def _completed(split_dir: Path, index: int, fingerprint: str) -> dict | None:
    """The shard's completion record if the shard is complete and verified, else None."""
    done = _done_path(split_dir, index)
    if not done.is_file():
        return None
    try:
        rec = json.loads(done.read_text())
    except json.JSONDecodeError:
        return None
    if rec.get("fingerprint") != fingerprint:
        return None
    if rec["shard"] is None:  # every input of the group was rejected: no tar
        return rec
    tar = split_dir / rec["shard"]["name"]
    if not tar.is_file() or sha256_file(tar) != rec["shard"]["sha256"]:
        log.warning("%s: missing or sha256 mismatch, rebuilding", tar)
        return None
    return rec


def shard_split(cfg: DataConfig, split: str, out: str | os.PathLike | None = None, *, seed: int = 0,
                strict: bool = False, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Write ``<out>/<split>/shard-*.tar`` + ``manifest.json`` for one split; returns the manifest.

    Raises :class:`DataError` before any work for an empty source or a missing listing, and with
    ``strict`` at the first rejected input (else rejections are listed in the manifest).
    """
    from tqdm import tqdm

    split_dir = Path(out if out is not None else cfg.shards) / split
    source = get_source(cfg, split, seed)
    items = source.inputs()  # DataError when empty / split listing missing: before any work
    _check_keys(source, items, split)
    listing_rejections = source.listing_rejections()
    if strict and listing_rejections:
        r = listing_rejections[0]
        raise DataError(f"--strict: input {r.input!r} rejected: {r.reason} "
                        f"({len(listing_rejections)} rejected while listing)")
    settings = preprocessing_settings(cfg)
    per = source.inputs_per_shard
    groups = [items[i:i + per] for i in range(0, len(items), per)]
    fingerprints = [_fingerprint(settings, split, seed, g) for g in groups]
    split_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(split_dir, "shard-*.done.json")  # left by a killed earlier run
    remove_stale_temporaries_of(split_dir / MANIFEST)

    done: dict[int, dict] = {}
    for i, fp in enumerate(fingerprints):
        rec = _completed(split_dir, i, fp)
        if rec is not None:
            done[i] = rec
    todo = [i for i in range(len(groups)) if i not in done]
    log.info("%s/%s: %d inputs in %d shards, %d complete and verified, %d to write",
             cfg.source, split, len(items), len(groups), len(done), len(todo))

    todo_items = [item for i in todo for item in groups[i]]
    bar = tqdm(total=len(todo_items), desc=f"shard {split}", unit="video", disable=not progress)
    results = _results(source, cfg, split, seed, todo_items, workers)
    try:
        for i in todo:
            records: list[Record] = []
            rejected: list[Rejection] = []
            for _item in groups[i]:
                for r in next(results):
                    if isinstance(r, Rejection):
                        if strict:
                            raise DataError(f"--strict: input {r.input!r} rejected: {r.reason}")
                        rejected.append(r)
                    else:
                        records.extend(split_record(r, cfg.max_record_frames))
                bar.update(1)
            shard = _write_shard(split_dir, i, records, cfg, split) if records else None
            done[i] = {"fingerprint": fingerprints[i], "shard": shard, "keys": [r.key for r in records],
                       "content": [record_sha256(r) for r in records],
                       "inputs": [str(r.meta.get("input", r.key)) for r in records],
                       "rejected": [{"input": r.input, "reason": r.reason} for r in rejected]}
            write_json(_done_path(split_dir, i), done[i])
    finally:
        bar.close()
        results.close()

    manifest = _manifest(cfg, split, seed, settings, done, len(groups), listing_rejections, len(items))
    manifest["overlap"] = check_split_overlap(split_dir, manifest, cfg.allow_split_overlap)
    _remove_stale(split_dir, {d["shard"]["name"] for d in done.values() if d["shard"]}, len(groups))
    write_json(split_dir / MANIFEST, manifest)
    log.info("%s: %d records, %d frames, %d shards, %d rejected", split_dir, manifest["num_records"],
             manifest["num_frames"], len(manifest["shards"]), len(manifest["rejected"]))
    return manifest


def _check_keys(source: Source, items: list[str], split: str) -> None:
    """Two inputs whose records would share a key: an error naming both, before anything is decoded."""
    owner: dict[str, str] = {}
    for item in items:
        key = source.key_of(item)
        if key is None:
            continue
        if key in owner:
            raise DataError(f"{source.cfg.source}/{split}: inputs {owner[key]!r} and {item!r} would both become "
                            f"record {key!r} (keys replace '/' and other characters); rename one of them")
        owner[key] = item


def record_sha256(record: Record) -> str:
    """sha256 of a record's video (uint8 [T, H, W, C] after preprocessing, with its shape): the same video under two
    names has one hash."""
    video = np.ascontiguousarray(record.video)
    return hashlib.sha256(repr((video.shape, str(video.dtype))).encode() + video.tobytes()).hexdigest()


def check_split_overlap(split_dir: Path, manifest: dict[str, Any], allow: bool) -> list[dict[str, str]]:
    """Records of this split whose video is also a record of another split sharded beside it (``<shards>/<other>/
    manifest.json``): a DataError naming both inputs, unless ``allow`` (data.allow_split_overlap), then the list.
    Whichever split is sharded second sees the other's manifest."""
    ours = manifest.get("content", {})
    overlap = []
    for other in sorted(p for p in split_dir.parent.iterdir() if p.is_dir() and p != split_dir):
        path = other / MANIFEST
        if not path.is_file():
            continue
        try:
            theirs = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        by_hash = {h: key for key, h in theirs.get("content", {}).items()}
        for key, h in ours.items():
            if h in by_hash:
                twin = by_hash[h]
                overlap.append({"record": key, "input": manifest["inputs"].get(key, key), "other_split": other.name,
                                "other_record": twin, "other_input": theirs.get("inputs", {}).get(twin, twin)})
    if overlap and not allow:
        o = overlap[0]
        raise DataError(f"{split_dir.name}: {len(overlap)} record(s) have the same video as a record of another split, "
                        f"e.g. {o['input']!r} ({split_dir.name}) = {o['other_input']!r} ({o['other_split']}): every "
                        "such video is both a training and a test record; remove the copies, or set "
                        "data.allow_split_overlap: true")
    return overlap


def _manifest(cfg: DataConfig, split, seed, settings, done, n_groups, listing_rejections, n_inputs) -> dict[str, Any]:
    shards, rejected, seen = [], [], {}
    content: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for i in range(n_groups):
        d = done[i]
        content.update(zip(d["keys"], d.get("content", [])))
        inputs.update(zip(d["keys"], d.get("inputs", [])))
        for key in d["keys"]:
            if key in seen:
                raise DataError(f"duplicate record key {key!r} in shards {seen[key]} and {i}")
            seen[key] = i
        if d["shard"] is not None:
            shards.append(d["shard"])
        rejected.extend(d["rejected"])
    rejected = [{"input": r.input, "reason": r.reason} for r in listing_rejections] + rejected
    if not shards:
        raise DataError(f"{cfg.source}/{split}: every one of {n_inputs} inputs was rejected "
                        f"(first: {rejected[0]['input']}: {rejected[0]['reason']})")
    return {
        "format_version": FORMAT_VERSION,
        "source": cfg.source,
        "split": split,
        "seed": seed,
        "num_inputs": n_inputs + len(listing_rejections),
        "num_records": sum(s["records"] for s in shards),
        "num_frames": sum(s["frames"] for s in shards),
        "num_shards": len(shards),
        "shards": shards,
        "preprocessing": settings,
        "record": {"video": f"video.{cfg.storage}", "layout": "uint8 [T, H, W, C]",
                   "cls": cfg.source != "bair", "txt": cfg.source in ("moving_mnist", "kinetics600", "video_folder")},
        "rejected": rejected,
        "content": content,  # record key -> sha256 of its video (record_sha256): the check of split overlap
        "inputs": inputs,  # record key -> the input it was made from
    }


def _remove_stale(split_dir: Path, keep: set[str], n_groups: int) -> None:
    """Shards/completion records of an earlier, larger plan would confuse readers of the folder."""
    for p in split_dir.glob("shard-*"):
        idx = int(p.name[6:12]) if p.name[6:12].isdigit() else -1
        if (p.suffix == ".tar" and p.name not in keep) or (p.name.endswith(".done.json") and idx >= n_groups):
            p.unlink()
    partial = split_dir / ".partial"
    if partial.is_dir():
        for p in partial.iterdir():
            p.unlink()
        partial.rmdir()


# ------------------------------------------------------------------------------------------------
# Reading side: manifest + verification
# ------------------------------------------------------------------------------------------------
def load_manifest(split_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(split_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"no shards: {path} not found (run `vdm shard` first)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not manifest.get("shards"):
        raise DataError(f"{path}: lists no shards")
    return manifest


def verify_shards(split_dir: str | os.PathLike, manifest: dict[str, Any], mode: str = "sha256") -> None:
    """Check every shard of the manifest exists with the recorded size (and sha256); error names the shard."""
    split_dir = Path(split_dir)
    for s in manifest["shards"]:
        path = split_dir / s["name"]
        if not path.is_file():
            raise DataError(f"shard {path} listed in the manifest is missing")
        size = path.stat().st_size
        if size != s["bytes"]:
            raise DataError(f"shard {path}: {size} bytes, the manifest records {s['bytes']} (truncated or replaced)")
        if mode == "sha256":
            digest = sha256_file(path)
            if digest != s["sha256"]:
                raise DataError(f"shard {path}: sha256 {digest} does not match the manifest ({s['sha256']})")
