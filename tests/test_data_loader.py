"""Loader: batch contents, joint image+video masks, flips, rank/worker splits, exact resume, eval_clips."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from vdm.data.common import DataError, decode_npy
from vdm.data.config import DataConfig
from vdm.data.loader import VideoLoader, eval_clips
from vdm.data.shard import shard_split


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """20 train records (6 shards of <= 4), 5 test records; 16x16 grayscale, 10 frames each."""
    root = tmp_path_factory.mktemp("shards")
    cfg = DataConfig(shards=str(root), resolution=16, channels=1, mnist_canvas=32, mnist_video_length=10,
                     mnist_train_videos=22, mnist_test_videos=5, frames=4, frameskip=2, shard_size=4,
                     num_classes=100, images_per_video=3, shuffle_buffer=8, image_pool=16)
    shard_split(cfg, "train", seed=0, progress=False)
    shard_split(cfg, "test", seed=0, progress=False)
    return cfg


def records(cfg, split="train") -> dict[str, np.ndarray]:
    """key -> uint8 [N, H, W, C] read straight from the tars (independent of the loader)."""
    import tarfile
    from pathlib import Path

    d = Path(cfg.shards) / split
    out = {}
    for s in json.loads((d / "manifest.json").read_text())["shards"]:
        with tarfile.open(d / s["name"]) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".video.npy"):
                    out[m.name.split(".")[0]] = decode_npy(tar.extractfile(m).read())
    return out


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float [C, T, H, W] in [-1, 1] -> uint8 [T, H, W, C]."""
    return ((video + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()


def take(loader, n):
    return list(itertools.islice(iter(loader), n))


def same(a: dict, b: dict) -> bool:
    return (a["key"] == b["key"] and torch.equal(a["video"], b["video"]) and torch.equal(a["cls"], b["cls"])
            and a["txt"] == b["txt"] and torch.equal(a["is_image"], b["is_image"]))


def test_batch_contents_and_joint_masks(mnist):
    recs = records(mnist)
    batch = take(VideoLoader(mnist, "train", batch_size=4, seed=1), 1)[0]
    assert batch["video"].shape == (4, 1, 4 + 3, 16, 16) and batch["video"].dtype == torch.float32
    assert batch["video"].min() >= -1 and batch["video"].max() <= 1 and batch["video"].min() == -1
    assert batch["is_image"].tolist() == [[False] * 4 + [True] * 3] * 4
    assert batch["cls"].dtype == torch.long and len(batch["txt"]) == 4
    for i, key in enumerate(batch["key"]):
        u8 = to_uint8(batch["video"][i])  # [T+K, H, W, C]
        full = recs[key]
        # The video part is frames offset, offset+2, ... of its own record (frameskip 2).
        assert any(np.array_equal(u8[:4], full[o:o + 8:2]) for o in range(len(full) - 8 + 1))
        digits = batch["txt"][i].split()[1::2]
        assert batch["cls"][i] == int(digits[0]) * 10 + int(digits[1])
        # Each appended image is a frame of *another* record of the split.
        for j in range(4, 7):
            sources = [k for k, v in recs.items() if any(np.array_equal(u8[j], f) for f in v)]
            assert sources and key not in sources


def test_images_from_other_videos_at_epoch_start(mnist):
    """Batch size 1: even the first batch of an epoch appends frames of other records (look-ahead pool)."""
    recs = records(mnist)
    loader = VideoLoader(mnist, "train", batch_size=1, seed=2)
    for batch in itertools.islice(iter(loader), 23):  # 22 records: batch 22 is the first of epoch 1
        if loader.state_dict()["position"] != 1:
            continue
        u8, key = to_uint8(batch["video"][0]), batch["key"][0]
        for j in range(4, 7):
            sources = [k for k, v in recs.items() if any(np.array_equal(u8[j], f) for f in v)]
            assert sources and key not in sources


def test_flip(mnist):
    cfg = DataConfig(**{**mnist.__dict__, "flip": True, "images_per_video": 0})
    recs = records(cfg)
    flipped = plain = 0
    for batch in take(VideoLoader(cfg, "train", batch_size=5, seed=0), 4):
        for i, key in enumerate(batch["key"]):
            u8, full = to_uint8(batch["video"][i]), recs[key]
            windows = [full[o:o + 8:2] for o in range(3)]
            plain += any(np.array_equal(u8, w) for w in windows)
            flipped += any(np.array_equal(u8, w[:, :, ::-1]) for w in windows)
    assert plain + flipped == 20 and plain > 0 and flipped > 0


def test_exact_resume_across_epochs(mnist):
    """The batches after load_state_dict equal the uninterrupted sequence (5 batches per epoch here)."""
    full = take(VideoLoader(mnist, "train", batch_size=4, seed=3), 13)
    first = VideoLoader(mnist, "train", batch_size=4, seed=3)
    it = iter(first)
    head = [next(it) for _ in range(7)]
    state = first.state_dict()
    assert state == {"epoch": 1, "position": 2}
    resumed = VideoLoader(mnist, "train", batch_size=4, seed=3)
    resumed.load_state_dict(state)
    tail = take(resumed, 6)
    assert all(same(a, b) for a, b in zip(head + tail, full))
    assert not same(full[0], full[5])  # the epochs differ (reshuffled)
    other_seed = take(VideoLoader(mnist, "train", batch_size=4, seed=4), 1)[0]
    assert not same(other_seed, full[0])


def test_workers_give_the_same_sequence(mnist):
    ref = take(VideoLoader(mnist, "train", batch_size=4, seed=5), 7)
    two = VideoLoader(mnist, "train", batch_size=4, seed=5, num_workers=2)
    got = take(two, 4)
    assert two.state_dict() == {"epoch": 0, "position": 4}
    two.load_state_dict({"epoch": 0, "position": 4})  # resume with workers too
    got += take(two, 3)
    assert all(same(a, b) for a, b in zip(got, ref))


def test_two_ranks_two_workers_disjoint_cover(mnist):
    """Non-resampled (eval) mode: split_by_node then split_by_worker; each record exactly once."""
    seen = []
    for rank in range(2):
        loader = VideoLoader(mnist, "train", batch_size=3, seed=0, rank=rank, world_size=2, num_workers=2,
                             mode="eval")
        keys = [k for b in loader for k in b["key"]]
        assert keys
        seen.append(keys)
    everything = seen[0] + seen[1]
    assert len(everything) == len(set(everything)) == 22
    assert set(everything) == set(records(mnist))
    assert not set(seen[0]) & set(seen[1])


def test_train_mode_ranks_split_by_node(mnist):
    """Non-resampled training: within one epoch, 2 ranks × 2 workers read disjoint records covering the split
    (shards of 4,4,4,4,4,2 records: each rank's share is even, so batch 2 drops nothing)."""
    seen = []
    for rank in range(2):
        loader = VideoLoader(mnist, "train", batch_size=2, seed=0, rank=rank, world_size=2, num_workers=2,
                             resampled=False)
        keys = []
        for batch in loader:
            if loader.state_dict()["epoch"] == 1:
                break
            keys += batch["key"]
        seen.append(keys)
    assert len(seen[0] + seen[1]) == len(set(seen[0] + seen[1])) == 22


def test_resampled_ranks_same_epoch_length(mnist):
    per_rank = []
    for rank in range(3):
        loader = VideoLoader(mnist, "train", batch_size=2, seed=0, rank=rank, world_size=3)
        assert loader.resampled and loader.batches_per_epoch == 4  # ceil(22 / 3) = 8 records -> 4 batches
        batches = take(loader, 4)
        assert loader.state_dict() == {"epoch": 0, "position": 4}
        next(iter(loader))
        assert loader.state_dict() == {"epoch": 1, "position": 1}
        per_rank.append([k for b in batches for k in b["key"]])
    assert per_rank[0] != per_rank[1]  # ranks draw different shards


def test_errors(mnist):
    with pytest.raises(DataError, match="6 shards for 8 ranks"):
        VideoLoader(mnist, "train", batch_size=2, seed=0, rank=0, world_size=8, resampled=False)
    with pytest.raises(DataError, match="resolution 16"):
        VideoLoader(DataConfig(**{**mnist.__dict__, "resolution": 32}), "train", batch_size=2, seed=0)
    big = VideoLoader(mnist, "test", batch_size=8, seed=0)  # 5 test records < batch 8
    with pytest.raises(DataError, match="fewer than batch_size=8"):
        next(iter(big))


def test_eval_clips(mnist):
    recs = records(mnist, "test")
    a, meta = eval_clips(mnist, "test", 5, seed=0, return_meta=True)
    b = eval_clips(mnist, "test", 5, seed=0)
    c = eval_clips(mnist, "test", 5, seed=1, return_meta=True)[1]
    assert a.shape == (5, 4, 16, 16, 1) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert sorted(meta["key"]) == sorted(recs) and meta["key"] != c["key"]  # all records, seeded order
    for clip, key in zip(a, meta["key"]):
        assert np.array_equal(clip, recs[key][0:8:2])  # protocol "start": the first frames
    assert meta["cls"].shape == (5,) and meta["txt"][0].startswith("digits ")
    long, lmeta = eval_clips(mnist, "test", 12, seed=0, frames=3, return_meta=True)
    assert long.shape == (12, 3, 16, 16, 1)
    # Protocol "start" (paper Table 2, BAIR: 100 samples per test video, each conditioned on its first
    # frame): repeats of a record start at frame 0 as well (offsets 0..4 would be possible here).
    for clip, key in zip(long, lmeta["key"]):
        assert np.array_equal(clip, recs[key][0:6:2])
    rand = DataConfig(**{**mnist.__dict__, "eval_offset": "random"})
    r1, m1 = eval_clips(rand, "test", 5, seed=2, return_meta=True)
    assert np.array_equal(r1, eval_clips(rand, "test", 5, seed=2))
    offsets = [next(o for o in range(3) if np.array_equal(clip, recs[k][o:o + 8:2])) for clip, k in zip(r1, m1["key"])]
    assert len(set(offsets)) > 1
    r3, m3 = eval_clips(rand, "test", 15, seed=2, frames=4, return_meta=True)  # 3 draws of each record
    for key in recs:
        draws = [clip for clip, k in zip(r3, m3["key"]) if k == key]
        assert len(draws) == 3
    assert any(not np.array_equal(x, y) for key in recs
               for x, y in itertools.combinations([c for c, k in zip(r3, m3["key"]) if k == key], 2))
    with pytest.raises(DataError, match="an eval clip needs 12"):
        eval_clips(mnist, "test", 1, seed=0, frames=6)


def test_appended_image_frames_carry_the_conditioning_of_their_own_video(mnist):
    """frame_cls / frame_txt: the video frames carry the host's class and caption, each appended image
    frame those of the record it was taken from (not the host's: 3 of 7 frames would be mislabelled)."""
    import tarfile
    from pathlib import Path

    recs = records(mnist)
    labels: dict[str, tuple[int, str]] = {}
    d = Path(mnist.shards) / "train"
    for s in json.loads((d / "manifest.json").read_text())["shards"]:
        with tarfile.open(d / s["name"]) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name in members:
                if name.endswith(".cls"):
                    key = name.split(".")[0]
                    labels[key] = (int(tar.extractfile(members[name]).read()),
                                   tar.extractfile(members[f"{key}.txt"]).read().decode())
    checked = differing = 0
    for batch in take(VideoLoader(mnist, "train", batch_size=4, seed=3), 3):
        assert batch["frame_cls"].shape == (4, 7) and len(batch["frame_txt"]) == 4
        for i, key in enumerate(batch["key"]):
            assert batch["frame_cls"][i, :4].tolist() == [labels[key][0]] * 4
            assert batch["frame_txt"][i][:4] == [labels[key][1]] * 4
            u8 = to_uint8(batch["video"][i])
            for j in range(4, 7):
                source = [k for k, v in recs.items() if any(np.array_equal(u8[j], f) for f in v)]
                assert len(source) == 1
                assert int(batch["frame_cls"][i, j]) == labels[source[0]][0]
                assert batch["frame_txt"][i][j] == labels[source[0]][1]
                checked += 1
                differing += labels[source[0]][0] != labels[key][0]
    assert checked == 36 and differing > 0
