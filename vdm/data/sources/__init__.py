"""Video sources: each lists its inputs for a split and turns one input into records.

A source is built from a :class:`~vdm.data.config.DataConfig`, a split name and a seed:

* ``inputs() -> list[str]``: the split's inputs, sorted (files relative to the root, or ids);
  raises :class:`DataError` before any work when the split is empty or its listing is missing;
* ``listing_rejections() -> list[Rejection]``: inputs rejected while listing (a file named in a
  split file but absent, a video without a label);
* ``load(item) -> list[Record | Rejection]``: decode + preprocess one input (a TFRecord file holds many
  videos); a bad input is a :class:`Rejection` with its reason, never an exception;
* ``inputs_per_shard``: how many inputs go to one shard.
"""

from __future__ import annotations

from vdm.data.common import DataError, Record, Rejection
from vdm.data.config import DataConfig


class Source:
    def __init__(self, cfg: DataConfig, split: str, seed: int = 0):
        self.cfg, self.split, self.seed = cfg, split, seed
        self._listing_rejections: list[Rejection] = []

    @property
    def inputs_per_shard(self) -> int:
        return self.cfg.shard_size

    def inputs(self) -> list[str]:
        raise NotImplementedError

    def listing_rejections(self) -> list[Rejection]:
        return list(self._listing_rejections)

    def load(self, item: str) -> list[Record | Rejection]:
        raise NotImplementedError

    def key_of(self, item: str) -> str | None:
        """The record key ``load(item)`` gives, known before decoding (None: the input holds many records)."""
        return None

    def check_num_classes(self, names: list[str], where: str) -> None:
        """More classes than ``data.num_classes`` would index past the model's class embedding: refuse."""
        n = self.cfg.num_classes
        if n > 0 and len(names) > n:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise DataError(f"{where}: {len(names)} classes ({shown}) but data.num_classes is {n}; set "
                            f"data.num_classes (and model.num_classes) to {len(names)}, or remove classes")

    def _limit(self, items: list[str], where: str) -> list[str]:
        items = sorted(items)
        if self.cfg.max_videos:
            items = items[: self.cfg.max_videos]
        if not items:
            raise DataError(f"source {self.cfg.source!r}: no inputs for split {self.split!r} in {where}")
        return items


def get_source(cfg: DataConfig, split: str, seed: int = 0) -> Source:
    if cfg.source == "moving_mnist":
        from vdm.data.sources.mnist import MovingMNISTSource as cls
    elif cfg.source == "bair":
        from vdm.data.sources.bair import BairSource as cls
    elif cfg.source == "ucf101":
        from vdm.data.sources.video import UCF101Source as cls
    elif cfg.source == "kinetics600":
        from vdm.data.sources.video import KineticsSource as cls
    elif cfg.source == "video_folder":
        from vdm.data.sources.video import VideoFolderSource as cls
    else:
        raise DataError(f"unknown data source {cfg.source!r}")
    return cls(cfg, split, seed)


__all__ = ["Source", "get_source", "Record", "Rejection", "DataError"]
