"""Shard writer: byte-identical output, resume, mp4 storage, verification errors, the `vdm shard` CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from vdm.data.common import DataError
from vdm.data.config import DataConfig
from vdm.data.loader import VideoLoader, eval_clips
from vdm.data.shard import shard_split
from vdm.utils.io import sha256_file


def small_mnist(shards: Path, **kw) -> DataConfig:
    base = dict(shards=str(shards), resolution=16, channels=1, mnist_canvas=32, mnist_video_length=10,
                mnist_train_videos=10, mnist_test_videos=4, frames=4, frameskip=2, shard_size=4,
                num_classes=100, images_per_video=2)
    base.update(kw)
    return DataConfig(**base)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_byte_identical_twice_any_workers(tmp_path):
    a = shard_split(small_mnist(tmp_path / "a"), "train", seed=7, workers=1, progress=False)
    b = shard_split(small_mnist(tmp_path / "b"), "train", seed=7, workers=2, progress=False)
    assert a == b
    files_a, files_b = tree_bytes(tmp_path / "a" / "train"), tree_bytes(tmp_path / "b" / "train")
    assert files_a == files_b and "manifest.json" in files_a
    assert [s["name"] for s in a["shards"]] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [s["records"] for s in a["shards"]] == [4, 4, 2] and a["num_frames"] == 100
    for s in a["shards"]:
        assert sha256_file(tmp_path / "a" / "train" / s["name"]) == s["sha256"]
    c = shard_split(small_mnist(tmp_path / "c"), "train", seed=8, progress=False)
    assert c["shards"][0]["sha256"] != a["shards"][0]["sha256"]  # the seed matters


def test_resume_skips_verified_and_rebuilds_damaged(tmp_path, caplog):
    cfg = small_mnist(tmp_path)
    first = shard_split(cfg, "train", progress=False)
    d = tmp_path / "train"
    before = tree_bytes(d)
    # Damage shard 1 (same size, other bytes) and delete shard 2: only these two are rewritten.
    with open(d / "shard-000001.tar", "r+b") as f:
        f.seek(600)
        f.write(b"\xff" * 16)
    (d / "shard-000002.tar").unlink()
    mtime0 = os.stat(d / "shard-000000.tar").st_mtime_ns
    caplog.set_level("INFO", logger="vdm.data.shard")
    again = shard_split(cfg, "train", progress=False)
    assert "1 complete and verified, 2 to write" in caplog.text
    assert again == first and tree_bytes(d) == before
    assert os.stat(d / "shard-000000.tar").st_mtime_ns == mtime0
    # A changed setting invalidates every shard (fingerprint), nothing stale is reused.
    changed = shard_split(small_mnist(tmp_path, mnist_canvas=40), "train", progress=False)
    assert all(x["sha256"] != y["sha256"] for x, y in zip(changed["shards"], first["shards"]))


def test_mp4_storage_identical_frames(tmp_path):
    kw = dict(storage="mp4", mp4_crf=0, channels=3, images_per_video=0)
    shard_split(small_mnist(tmp_path / "a", **kw), "train", progress=False)
    shard_split(small_mnist(tmp_path / "b", **kw), "train", progress=False)
    shard_split(small_mnist(tmp_path / "npy", channels=3, images_per_video=0), "train", progress=False)
    va = eval_clips(small_mnist(tmp_path / "a", **kw), "train", 10, seed=0)
    vb = eval_clips(small_mnist(tmp_path / "b", **kw), "train", 10, seed=0)
    vn = eval_clips(small_mnist(tmp_path / "npy", channels=3), "train", 10, seed=0)
    assert np.array_equal(va, vb)
    assert np.abs(va.astype(int) - vn.astype(int)).mean() < 6  # H.264 4:2:0 of the lossless frames


def test_sha256_mismatch_and_corrupt_shard_named(tmp_path):
    cfg = small_mnist(tmp_path)
    shard_split(cfg, "train", progress=False)
    bad = tmp_path / "train" / "shard-000001.tar"
    data = bytearray(bad.read_bytes())
    data[100:110] = b"\x00garbage\x00\x01"  # inside the first tar header: same size, broken archive
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="shard-000001.tar: sha256"):
        VideoLoader(cfg, "train", batch_size=2, seed=0)
    sized = DataConfig(**{**cfg.__dict__, "verify": "size"})
    loader = VideoLoader(sized, "train", batch_size=2, seed=0, mode="eval")  # size check passes...
    with pytest.raises(DataError, match="shard-000001.tar"):  # ...reading names the corrupt shard
        for _ in loader:
            pass
    bad.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(DataError, match="shard-000001.tar: .* bytes"):
        VideoLoader(sized, "train", batch_size=2, seed=0)
    (tmp_path / "train" / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json not found"):
        eval_clips(cfg, "train", 2, seed=0)


def write_config(path: Path, shards: Path, model: dict | None = None, **data) -> Path:
    cfg = {"name": "t", "seed": 3, "model": {"size": "tiny", "num_classes": 100, **(model or {})},
           "data": {"shards": str(shards), "resolution": 16, "channels": 1, "mnist_canvas": 32,
                    "mnist_video_length": 10, "mnist_train_videos": 6, "mnist_test_videos": 3, "frames": 4,
                    "num_classes": 100, **data}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli(tmp_path, capsys):
    from vdm.__main__ import main

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "shards")
    assert main(["shard", "--config", str(cfg), "--split", "test", "--workers", "1", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "shards" / "test" / "manifest.json").read_text())
    assert manifest["num_records"] == 3 and manifest["seed"] == 3
    assert main(["shard", "--config", str(cfg), "--split", "train", "--out", str(tmp_path / "o"), "--quiet",
                 "--set", "data.mnist_train_videos=2"]) == 0
    assert json.loads((tmp_path / "o" / "train" / "manifest.json").read_text())["num_records"] == 2
    # A frame size the network cannot take (the model section fixes its own) / clips longer than the
    # videos: errors before any work.
    bad = write_config(tmp_path / "bad.yaml", tmp_path / "bad", model={"image_size": 16}, resolution=32)
    assert main(["shard", "--config", str(bad), "--split", "train", "--quiet"]) == 2
    assert "model.image_size 16" in capsys.readouterr().err
    long = write_config(tmp_path / "long.yaml", tmp_path / "long", frames=12)
    assert main(["shard", "--config", str(long), "--split", "train", "--quiet"]) == 2
    assert "mnist_video_length 10" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "long").exists()
