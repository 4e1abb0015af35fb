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


class Source:
    def __init__(self, cfg, split: str, seed: int = 0):
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

    def _limit(self, items: list[str], where: str) -> list[str]:
        items = sorted(items)
        if self.cfg.max_videos:
            items = items[: self.cfg.max_videos]
        if not items:
            raise DataError(f"source {self.cfg.source!r}: no inputs for split {self.split!r} in {where}")
        return items


def get_source(cfg, split: str, seed: int = 0) -> Source:
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
