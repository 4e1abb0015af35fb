"""BAIR robot pushing (``softmotion30_44k``) TFRecords, read without TensorFlow.

Layout: ``<root>/<split>/*.tfrecords``; each file holds many trajectories (tf.train.Example), frame t
of a trajectory is the feature ``"{t}/image_aux1/encoded"``: raw 64×64×3 uint8 bytes (not PNG).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vdm.data.common import DataError, Record, Rejection, make_key, preprocess
from vdm.data.config import DataConfig
from vdm.data.sources import Source

FRAME_KEY = "{t}/image_aux1/encoded"
BAIR_SIDE = 64


class BairSource(Source):
    inputs_per_shard = 1  # one shard per TFRecord file (a file holds ~256 trajectories)

    def __init__(self, cfg: DataConfig, split: str, seed: int = 0):
        super().__init__(cfg, split, seed)
        self.dir = Path(cfg.root) / split

    def inputs(self) -> list[str]:
        if not self.dir.is_dir():
            raise DataError(f"BAIR: split folder {self.dir} not found (expected <root>/<split>/*.tfrecords)")
        return self._limit([p.name for p in self.dir.glob("*.tfrecords")], str(self.dir))

    def load(self, item: str) -> list[Record | Rejection]:
        from tfrecord import example_pb2
        from tfrecord.reader import tfrecord_iterator

        path = self.dir / item
        out: list[Record | Rejection] = []
        n = 0
        try:
            for raw in tfrecord_iterator(str(path)):
                example = example_pb2.Example()
                example.ParseFromString(bytes(raw))
                out.append(self._trajectory(item, n, example.features.feature))
                n += 1
        except Exception as e:  # truncated/corrupt file: keep the complete trajectories before it
            out.append(Rejection(f"{item}#{n}", f"corrupt or truncated TFRecord after {n} trajectories: "
                                 f"{type(e).__name__}: {e}"))
        return out

    def _trajectory(self, item: str, n: int, feature) -> Record | Rejection:
        frames = []
        t = 0
        while FRAME_KEY.format(t=t) in feature:
            values = feature[FRAME_KEY.format(t=t)].bytes_list.value
            if len(values) != 1 or len(values[0]) != BAIR_SIDE * BAIR_SIDE * 3:
                size = len(values[0]) if values else 0
                return Rejection(f"{item}#{n}", f"frame {t}: {size} bytes, expected {BAIR_SIDE}x{BAIR_SIDE}x3 raw")
            frames.append(np.frombuffer(values[0], np.uint8).reshape(BAIR_SIDE, BAIR_SIDE, 3))
            t += 1
        if t < self.cfg.clip_span:
            return Rejection(f"{item}#{n}", f"{t} frames under key {FRAME_KEY!r}, a clip needs {self.cfg.clip_span}")
        video, _ = preprocess(np.stack(frames), self.cfg, None)  # [T, H, W, C]
        meta = {"source": "bair", "input": item, "index": n, "fps": None}
        return Record(key=make_key(f"{Path(item).stem}-{n:04d}"), video=video, meta=meta)
