"""Data sources on real files the tests write: Moving MNIST, PyAV .avi/.mp4 (incl. truncated), BAIR TFRecords."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vdm.data import moving_mnist as mm
from vdm.data.common import DataError, resample_indices, resize_short_side_crop
from vdm.data.config import DataConfig
from vdm.data.loader import eval_clips
from vdm.data.shard import shard_split

av = pytest.importorskip("av")


# ------------------------------------------------------------------------------------------------
# File writers (real containers/codecs)
# ------------------------------------------------------------------------------------------------
def frame_at(t: int, h: int = 40, w: int = 48) -> np.ndarray:
    """Frame t of the synthetic test video: a white bar moving right, green level 8·t."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 1] = 8 * t
    x = (3 * t) % (w - 6)
    img[:, x:x + 6] = 255
    return img


def write_video(path: Path, n: int, codec: str, fps: int = 10, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=options) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = 48, 40, "yuv420p"
        for t in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(frame_at(t), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ------------------------------------------------------------------------------------------------
# Preprocessing helpers
# ------------------------------------------------------------------------------------------------
def test_resize_short_side_and_centre_crop():
    video = np.zeros((2, 20, 40, 3), np.uint8)  # [T, H, W, C], landscape
    video[:, :, 10:30] = 200  # centre half of the width
    out = resize_short_side_crop(video, 10)  # short side 20 -> 10, width 40 -> 20, crop 5..15
    assert out.shape == (2, 10, 10, 3) and out.dtype == np.uint8
    assert (out[:, :, 1:9] == 200).all()  # the centre crop sees the bright band
    assert resize_short_side_crop(video[:, :, :20], 20) is not None


def test_fps_resampling_indices():
    assert resample_indices(30, 10.0, 5.0).tolist() == list(range(0, 30, 2))
    assert resample_indices(10, 10.0, 20.0).tolist() == [i // 2 for i in range(20)]
    assert resample_indices(7, 25.0, 0.0).tolist() == list(range(7))


# ------------------------------------------------------------------------------------------------
# Moving MNIST
# ------------------------------------------------------------------------------------------------
def test_moving_mnist_real_digits_disjoint_splits():
    images, labels = mm.mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert sorted(set(labels.tolist())) == list(range(10))
    train, test = mm.digit_indices("train", 0.2), mm.digit_indices("test", 0.2)
    assert len(test) == 1000 and len(train) == 4000 and not set(train) & set(test)


def test_moving_mnist_video_and_labels():
    v1, d1 = mm.generate_video(3, "train", 5, num_digits=2, canvas=64, length=12)
    v2, d2 = mm.generate_video(3, "train", 5, num_digits=2, canvas=64, length=12)
    v3, _ = mm.generate_video(4, "train", 5, num_digits=2, canvas=64, length=12)
    assert v1.shape == (12, 64, 64, 1) and v1.dtype == np.uint8
    assert np.array_equal(v1, v2) and d1 == d2 and not np.array_equal(v1, v3)
    assert all(f.max() > 200 for f in v1[..., 0])  # digits visible in every frame
    assert not np.array_equal(v1[0], v1[-1])  # they move
    assert mm.class_id([3, 7]) == 37 and mm.caption([3, 7]) == "digits 3 and 7"
    assert mm.caption([4]) == "digit 4" and mm.caption([1, 2, 3]) == "digits 1, 2 and 3"


def test_moving_mnist_shards_values(tmp_path):
    cfg = DataConfig(shards=str(tmp_path), resolution=32, channels=1, mnist_train_videos=6, mnist_test_videos=3,
                     mnist_video_length=8, frames=8, shard_size=4, num_classes=100, images_per_video=0)
    m = shard_split(cfg, "train", seed=1, progress=False)
    assert m["num_records"] == 6 and m["num_frames"] == 48 and len(m["shards"]) == 2 and not m["rejected"]
    clips, meta = eval_clips(cfg, "train", 6, seed=0, return_meta=True)
    assert clips.shape == (6, 8, 32, 32, 1) and clips.dtype == np.uint8
    for clip, key, cls, txt in zip(clips, meta["key"], meta["cls"], meta["txt"]):
        index = int(key.rsplit("-", 1)[1])
        full, digits = mm.generate_video(1, "train", index, canvas=64, length=8)
        assert cls == digits[0] * 10 + digits[1] and txt == f"digits {digits[0]} and {digits[1]}"
        expected = resize_short_side_crop(full, 32)
        assert np.array_equal(clip, expected)  # record = generated video resized to 32x32


# ------------------------------------------------------------------------------------------------
# Video folders (PyAV)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "train" / "bars" / "a.avi", 24, "mpeg4")
    write_video(root / "train" / "bars" / "b.mp4", 24, "libx264")
    (root / "train" / "bars" / "b.txt").write_text("a white bar moving right\n")
    write_video(root / "train" / "dots" / "short.mp4", 5, "libx264")
    write_video(root / "train" / "dots" / "cut.mp4", 30, "mpeg4", movflags="faststart")
    truncate(root / "train" / "dots" / "cut.mp4", 0.6)  # moov first: decodes, but fewer frames than declared
    write_video(root / "train" / "dots" / "cut_index.avi", 30, "mpeg4")
    truncate(root / "train" / "dots" / "cut_index.avi", 0.5)  # index lost: undecodable
    (root / "train" / "dots" / "garbage.mp4").write_bytes(os.urandom(2000))
    write_video(root / "train" / "loose.mp4", 24, "libx264")  # not in a class folder
    return root


def test_video_folder_shards_and_rejections(video_root, tmp_path):
    cfg = DataConfig(source="video_folder", root=str(video_root), shards=str(tmp_path), resolution=20,
                     channels=3, frames=8, num_classes=2, shard_size=3, images_per_video=0)
    m = shard_split(cfg, "train", progress=False, workers=2)
    assert m["num_records"] == 2
    reasons = {r["input"]: r["reason"] for r in m["rejected"]}
    assert set(reasons) == {"dots/short.mp4", "dots/cut.mp4", "dots/cut_index.avi", "dots/garbage.mp4", "loose.mp4"}
    assert "too short: 5 frames" in reasons["dots/short.mp4"]
    assert "truncated: decoded" in reasons["dots/cut.mp4"]
    assert "undecodable" in reasons["dots/cut_index.avi"] and "undecodable" in reasons["dots/garbage.mp4"]
    assert "no label" in reasons["loose.mp4"]
    clips, meta = eval_clips(cfg, "train", 2, seed=0, return_meta=True)
    assert clips.shape == (2, 8, 20, 20, 3)
    assert meta["cls"].tolist() == [0, 0]  # "bars" is class 0 of [bars, dots]
    by_key = dict(zip(meta["key"], clips))
    assert set(by_key) == {"bars_a", "bars_b"}
    # Values survive codec + resize: each frame matches the frame written at that time, not its neighbours.
    ref = resize_short_side_crop(np.stack([frame_at(t) for t in range(24)]), 20).astype(float)  # [24, 20, 20, 3]
    for clip in by_key.values():
        err = [np.abs(clip[t] - ref[t]).mean() for t in range(8)]
        err_shifted = [np.abs(clip[t] - ref[t + 2]).mean() for t in range(8)]
        assert max(err) < 16 and max(err) < min(err_shifted) / 4, (err, err_shifted)
    # Caption from the sidecar .txt only where it exists -> txt not in every record -> None.
    assert meta["txt"] is None


def test_strict_and_empty_source(video_root, tmp_path):
    cfg = DataConfig(source="video_folder", root=str(video_root), shards=str(tmp_path), resolution=20, frames=8)
    with pytest.raises(DataError, match=r"dots/c|dots/g|dots/s"):
        shard_split(cfg, "train", strict=True, progress=False)
    with pytest.raises(DataError, match="test"):
        shard_split(cfg, "test", progress=False)  # no <root>/test folder: error before work
    assert not (tmp_path / "test").exists()
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no inputs"):
        shard_split(DataConfig(source="video_folder", root=str(empty), shards=str(tmp_path)), "train", progress=False)


def test_ucf101_layout(tmp_path):
    root = tmp_path / "UCF-101"
    for cls in ("ApplyEyeMakeup", "Archery"):
        for g in (1, 2):
            write_video(root / cls / f"v_{cls}_g0{g}_c01.avi", 10, "mpeg4")
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1\nArchery/v_Archery_g02_c01.avi 2\n"
        "Archery/v_Archery_g09_c01.avi 2\nBowling/v_Bowling_g01_c01.avi 3\n")
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n")
    cfg = DataConfig(source="ucf101", root=str(root), shards=str(tmp_path / "shards"), resolution=16, frames=4,
                     fps=5, num_classes=2, images_per_video=0, ucf_train_on_all=False)
    m = shard_split(cfg, "train", progress=False)
    assert m["num_records"] == 2 and m["num_frames"] == 2 * 5  # 10 frames at 10 fps -> 5 at 5 fps
    reasons = {r["input"]: r["reason"] for r in m["rejected"]}
    assert "missing" in reasons["Archery/v_Archery_g09_c01.avi"]
    assert "no label" in reasons["Bowling/v_Bowling_g01_c01.avi"]
    _, meta = eval_clips(cfg, "train", 2, seed=0, return_meta=True)
    assert dict(zip(meta["key"], meta["cls"].tolist())) == {"ApplyEyeMakeup_v_ApplyEyeMakeup_g02_c01": 0,
                                                           "Archery_v_Archery_g02_c01": 1}
    m_all = shard_split(DataConfig(**{**cfg.__dict__, "ucf_train_on_all": True, "shards": str(tmp_path / "all")}),
                        "train", progress=False)
    assert m_all["num_records"] == 4  # paper §5.1: train on all videos
    (lists / "testlist01.txt").unlink()
    with pytest.raises(DataError, match="testlist01.txt"):
        shard_split(cfg, "test", progress=False)


def test_kinetics_layout(tmp_path):
    write_video(tmp_path / "train" / "abcdefghijk_000010_000020.mp4", 10, "libx264")
    write_video(tmp_path / "train" / "ABCDEFGHIJK_000000_000010.mp4", 10, "libx264")
    write_video(tmp_path / "train" / "nolabel0000_000000_000010.mp4", 10, "libx264")
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "playing guitar,abcdefghijk,10,20,train\nabseiling,ABCDEFGHIJK,0,10,train\n")
    cfg = DataConfig(source="kinetics600", root=str(tmp_path), shards=str(tmp_path / "shards"), resolution=16,
                     frames=4, num_classes=600, images_per_video=0)
    m = shard_split(cfg, "train", progress=False)
    assert m["num_records"] == 2 and [r["input"] for r in m["rejected"]] == ["nolabel0000_000000_000010.mp4"]
    _, meta = eval_clips(cfg, "train", 2, seed=0, return_meta=True)
    got = dict(zip(meta["key"], zip(meta["cls"].tolist(), meta["txt"])))
    assert got == {"abcdefghijk_000010_000020": (1, "playing guitar"), "ABCDEFGHIJK_000000_000010": (0, "abseiling")}


# ------------------------------------------------------------------------------------------------
# BAIR TFRecords
# ------------------------------------------------------------------------------------------------
def bair_frame(traj: int, t: int) -> np.ndarray:
    rng = np.random.default_rng([traj, t])
    return rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)


def write_bair(path: Path, trajectories: list[tuple[int, int]]) -> None:
    """softmotion30_44k layout: one tf.train.Example per trajectory, raw 64x64x3 bytes per frame."""
    from tfrecord import TFRecordWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = TFRecordWriter(str(path))
    for traj, length in trajectories:
        feats = {}
        for t in range(length):
            feats[f"{t}/image_aux1/encoded"] = (bair_frame(traj, t).tobytes(), "byte")
            feats[f"{t}/image_main/encoded"] = (bair_frame(traj + 100, t).tobytes(), "byte")
            feats[f"{t}/action"] = ([0.1 * t, -0.2], "float")
            feats[f"{t}/endeffector_pos"] = ([0.0, 1.0, 2.0], "float")
        writer.write(feats)
    writer.close()


def test_bair_tfrecords(tmp_path):
    root = tmp_path / "softmotion30_44k"
    write_bair(root / "train" / "traj_0_to_2.tfrecords", [(0, 30), (1, 30), (2, 6)])
    write_bair(root / "train" / "traj_3_to_4.tfrecords", [(3, 30), (4, 30)])
    truncate(root / "train" / "traj_3_to_4.tfrecords", 0.75)  # second trajectory cut off
    cfg = DataConfig(source="bair", root=str(root), shards=str(tmp_path / "shards"), resolution=64, channels=3,
                     frames=16, images_per_video=0, eval_offset="start")
    m = shard_split(cfg, "train", progress=False)
    assert m["num_records"] == 3 and m["num_frames"] == 90 and len(m["shards"]) == 2  # one shard per file
    reasons = {r["input"]: r["reason"] for r in m["rejected"]}
    assert "6 frames" in reasons["traj_0_to_2.tfrecords#2"]
    assert "truncated" in reasons["traj_3_to_4.tfrecords#1"]
    clips, meta = eval_clips(cfg, "train", 3, seed=0, return_meta=True)
    assert clips.shape == (3, 16, 64, 64, 3) and meta["cls"] is None
    for clip, key in zip(clips, meta["key"]):
        traj = {"traj_0_to_2-0000": 0, "traj_0_to_2-0001": 1, "traj_3_to_4-0000": 3}[key]
        assert np.array_equal(clip, np.stack([bair_frame(traj, t) for t in range(16)]))  # first frames, lossless
    info = json.loads((tmp_path / "shards" / "train" / "manifest.json").read_text())
    assert info["preprocessing"]["resolution"] == 64


# ------------------------------------------------------------------------------------------------
# Data problems found early, naming files
# ------------------------------------------------------------------------------------------------
def _folder_cfg(root: Path, out: Path, **kw) -> DataConfig:
    return DataConfig(**{**dict(source="video_folder", root=str(root), shards=str(out), resolution=16, channels=3,
                                frames=8, num_classes=0, images_per_video=0), **kw})


def test_distinct_names_get_distinct_keys(tmp_path):
    """'clip a' vs 'clip_a', and two all-non-ASCII names of one length, were one key (found only after
    decoding the whole split, naming no file); now each input is its own record."""
    root = tmp_path / "videos"
    for name in ("clip a.mp4", "clip_a.mp4", "日本.mp4", "中国.mp4"):
        write_video(root / "train" / name, 10, "libx264")
    m = shard_split(_folder_cfg(root, tmp_path / "shards"), "train", progress=False)
    assert m["num_records"] == 4 and not m["rejected"]
    _, meta = eval_clips(_folder_cfg(root, tmp_path / "shards"), "train", 4, seed=0, return_meta=True)
    assert len(set(meta["key"])) == 4 and "clip_a" in meta["key"]


def test_key_collision_is_an_error_naming_both_files_before_decoding(tmp_path, monkeypatch):
    root = tmp_path / "videos"
    write_video(root / "train" / "a" / "b.mp4", 10, "libx264")
    write_video(root / "train" / "a_b.mp4", 10, "libx264")
    from vdm.data.sources import video

    decoded = []
    monkeypatch.setattr(video, "decode_file", lambda path, cfg: decoded.append(path))  # must not be reached
    with pytest.raises(DataError, match=r"'a/b\.mp4' and 'a_b\.mp4' would both become record 'a_b'"):
        shard_split(_folder_cfg(root, tmp_path / "shards"), "train", progress=False)
    assert decoded == []


def test_videos_inside_symlinked_folders_are_found(tmp_path):
    root, elsewhere = tmp_path / "videos", tmp_path / "elsewhere"
    write_video(root / "train" / "own.mp4", 10, "libx264")
    write_video(elsewhere / "linked.mp4", 10, "libx264")
    (root / "train" / "more").symlink_to(elsewhere, target_is_directory=True)
    (root / "train" / "loop").symlink_to(root / "train", target_is_directory=True)  # a cycle: listed once
    m = shard_split(_folder_cfg(root, tmp_path / "shards"), "train", progress=False)
    done = json.loads((tmp_path / "shards" / "train" / "shard-000000.done.json").read_text())
    assert sorted(done["keys"]) == ["more_linked", "own"] and m["num_records"] == 2
    # the link not followed is in the manifest, with its reason
    assert [(r["input"], "a folder already listed as ." in r["reason"]) for r in m["rejected"]] == [("loop", True)]


def test_more_class_folders_than_num_classes_is_an_error_at_shard_time(tmp_path):
    root = tmp_path / "videos"
    for cls in ("apple", "banana", "cherry"):
        write_video(root / "train" / cls / "v.mp4", 10, "libx264")
    with pytest.raises(DataError, match=r"3 classes \(apple, banana, cherry\) but data\.num_classes is 2"):
        shard_split(_folder_cfg(root, tmp_path / "shards", num_classes=2), "train", progress=False)
    assert not (tmp_path / "shards" / "train" / "shard-000000.tar").exists()


def test_long_videos_are_split_into_bounded_records(tmp_path):
    from vdm.config import ConfigError, from_dict

    root = tmp_path / "videos"
    write_video(root / "train" / "long.mp4", 31, "libx264")
    write_video(root / "train" / "short.mp4", 12, "libx264")
    cfg = _folder_cfg(root, tmp_path / "shards", max_record_frames=16)
    m = shard_split(cfg, "train", progress=False)
    assert m["num_records"] == 3 and m["num_frames"] == 43 and m["preprocessing"]["max_record_frames"] == 16
    clips, meta = eval_clips(cfg, "train", 3, seed=0, return_meta=True)
    assert sorted(meta["key"]) == ["long+0000", "long+0001", "short"]
    # the parts are consecutive: part 1 starts where part 0 ended (frame 16 of 31; eval clips start at 0)
    ref = resize_short_side_crop(np.stack([frame_at(t) for t in range(31)]), 16).astype(float)
    part1 = dict(zip(meta["key"], clips))["long+0001"]
    errs = [np.abs(part1[0] - ref[t]).mean() for t in range(31)]
    assert int(np.argmin(errs)) == 16, errs
    with pytest.raises(ConfigError, match=r"max_record_frames must be 0 \(off\) or >= 2 x frames x frameskip = 16"):
        from_dict(DataConfig, {"max_record_frames": 10, "frames": 8}, "data")


# ------------------------------------------------------------------------------------------------
# No silent train/test leakage
# ------------------------------------------------------------------------------------------------
def test_a_link_from_one_split_into_another_is_refused_naming_both_paths(tmp_path):
    root = tmp_path / "videos"
    write_video(root / "train" / "own.mp4", 10, "libx264")
    write_video(root / "test" / "held_out.mp4", 10, "libx264")
    (root / "train" / "extra").symlink_to(Path("..") / "test", target_is_directory=True)
    with pytest.raises(DataError, match=r"train/extra is .*/test, inside another split .*data\.allow_split_overlap"):
        shard_split(_folder_cfg(root, tmp_path / "shards"), "train", progress=False)
    assert not (tmp_path / "shards" / "train" / "manifest.json").exists()
    (root / "train" / "extra").unlink()
    (root / "train" / "up").symlink_to(Path(".."), target_is_directory=True)  # the data root: test/ below it
    with pytest.raises(DataError, match=r"train/up/test is .*/test, inside another split"):
        shard_split(_folder_cfg(root, tmp_path / "shards"), "train", progress=False)
    # allowed by name: followed, and listed in the manifest
    m = shard_split(_folder_cfg(root, tmp_path / "shards", allow_split_overlap=True), "train", progress=False)
    reasons = {r["input"]: r["reason"] for r in m["rejected"]}
    assert "allow_split_overlap: listed" in reasons["up/test"], reasons
    assert "a folder already listed as ." in reasons["up/train"], reasons  # the second path to train/ itself


def test_the_same_video_in_two_splits_is_refused_by_content(tmp_path):
    """A copy under another name (no link to see): the split sharded second compares record contents with the
    other split's manifest and refuses, naming both inputs; data.allow_split_overlap lists the pairs instead."""
    root = tmp_path / "videos"
    write_video(root / "train" / "own.mp4", 10, "libx264")
    write_video(root / "test" / "held_out.mp4", 12, "libx264")
    (root / "train" / "renamed_copy.mp4").write_bytes((root / "test" / "held_out.mp4").read_bytes())
    shards = tmp_path / "shards"
    test = shard_split(_folder_cfg(root, shards), "test", progress=False)
    assert test["overlap"] == [] and len(test["content"]) == 1  # nothing else sharded yet
    with pytest.raises(DataError, match=r"1 record\(s\) have the same video as a record of another split, e\.g\. "
                                        r"'renamed_copy\.mp4' \(train\) = 'held_out\.mp4' \(test\)"):
        shard_split(_folder_cfg(root, shards), "train", progress=False)
    assert not (shards / "train" / "manifest.json").exists()
    m = shard_split(_folder_cfg(root, shards, allow_split_overlap=True), "train", progress=False)
    assert [(o["input"], o["other_split"], o["other_input"]) for o in m["overlap"]] == [
        ("renamed_copy.mp4", "test", "held_out.mp4")]
