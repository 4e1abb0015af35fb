"""Moving MNIST as a source: inputs are video indices, records are generated on demand."""

from __future__ import annotations

from vdm.data import moving_mnist as mm
from vdm.data.common import DataError, Record, Rejection, preprocess
from vdm.data.config import DataConfig
from vdm.data.sources import Source


class MovingMNISTSource(Source):
    def __init__(self, cfg: DataConfig, split: str, seed: int = 0):
        super().__init__(cfg, split, seed)
        if split not in mm.SPLIT_IDS:
            raise DataError(f"Moving MNIST has splits {list(mm.SPLIT_IDS)}, not {split!r}")

    def inputs(self) -> list[str]:
        n = self.cfg.mnist_train_videos if self.split == "train" else self.cfg.mnist_test_videos
        return self._limit([f"{i:06d}" for i in range(n)], "the configuration")

    def load(self, item: str) -> list[Record | Rejection]:
        c = self.cfg
        video, digits = mm.generate_video(
            self.seed, self.split, int(item), num_digits=c.mnist_num_digits, canvas=c.mnist_canvas,
            length=c.mnist_video_length, speed=tuple(c.mnist_speed), test_fraction=c.mnist_test_fraction)
        video, _ = preprocess(video, c, None)  # [T, H, W, C]
        meta = {"source": "moving_mnist", "input": item, "digits": digits, "seed": self.seed, "fps": None}
        return [Record(key=f"mnist-{self.split}-{item}", video=video, meta=meta,
                       cls=mm.class_id(digits), txt=mm.caption(digits))]
