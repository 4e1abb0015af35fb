"""Data settings: source, preprocessing, shards and the loader (paper §3, §5)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: Literal["moving_mnist", "ucf101", "kinetics600", "video_folder", "bair"] = "moving_mnist"
    root: str = ""  # input folder/file of the source (unused by moving_mnist)
    shards: str = "results/data"  # folder with one sub-folder of webdataset shards per split
    frames: int = 16  # frames per training clip (T)
    frameskip: int = 1  # take every frameskip-th frame
    resolution: int = 64  # square frame side (pixels) after resize-short-side + centre crop
    channels: int = 3  # 1 for grayscale (Moving MNIST), 3 for RGB
    images_per_video: int = 8  # K independent image frames appended per video (paper: 8; ablation 0/4/8)
    num_classes: int = 0  # number of class labels carried in `cls` (0: no class labels)

    def validate(self) -> None:
        from vdm.config import ConfigError

        if self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        if self.frameskip < 1:
            raise ConfigError(f"frameskip must be >= 1, got {self.frameskip}")
        if self.images_per_video < 0:
            raise ConfigError(f"images_per_video must be >= 0, got {self.images_per_video}")
