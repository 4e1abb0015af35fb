"""Video files decoded with PyAV: UCF-101, Kinetics-600 and any folder of videos.

Every frame is resized on decode (short side to the target resolution, swscale area filter, so a
full-HD video never sits in memory at full size), centre cropped, optionally resampled to a target
frame rate, and converted to the configured channel count.

* UCF-101: ``<root>/<Class>/v_<Class>_gXX_cYY.avi`` and the official split files
  (``trainlist0N.txt`` "Class/file.avi label", ``testlist0N.txt`` "Class/file.avi", ``classInd.txt``
  "index Class", 1-based) in ``split_dir`` (default ``<root>/ucfTrainTestlist`` or beside the root).
* Kinetics-600: ``<root>/<split>/**/<youtube_id>_<start>_<end>.mp4`` and ``<split_dir>/<split>.csv``
  (columns label, youtube_id, time_start, time_end, split); classes = sorted labels of ``train.csv``.
* Any folder: ``<root>/<split>/**/*.{mp4,avi,mkv,webm,mov}``; with ``num_classes > 0`` the class is the
  first sub-folder (sorted names of the train split), and a ``<video>.txt`` beside a video is its caption.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from vdm.data.common import DataError, Record, Rejected, Rejection, convert_channels, make_key, resample_indices
from vdm.data.config import DataConfig
from vdm.data.sources import Source

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
# A video that decodes to fewer frames than its header declares is truncated; containers often
# over-declare by a frame or two, so allow this much slack (fraction of the declared count, + 2).
TRUNCATION_SLACK = 0.02


def decode_file(path: Path, cfg: DataConfig) -> tuple[np.ndarray, float]:
    """Decode, resize short side + centre crop, resample fps: (uint8 [T, S, S, C], fps). Raises Rejected."""
    import av

    size = cfg.resolution
    frames: list[np.ndarray] = []
    try:
        container = av.open(str(path))
    except Exception as e:
        raise Rejected(f"undecodable: {type(e).__name__}: {e}") from None
    with container:
        if not container.streams.video:
            raise Rejected("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        declared = int(stream.frames or 0)
        try:
            for frame in container.decode(stream):
                w, h = frame.width, frame.height
                scale = size / min(w, h)
                new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
                rgb = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="AREA").to_ndarray()
                top, left = (new_h - size) // 2, (new_w - size) // 2
                frames.append(rgb[top:top + size, left:left + size])  # [S, S, 3]
        except Exception as e:
            raise Rejected(f"truncated or corrupt: decode error after {len(frames)} frames: "
                           f"{type(e).__name__}: {e}") from None
    if not frames:
        raise Rejected("undecodable: no frames decoded")
    if declared and len(frames) < declared * (1 - TRUNCATION_SLACK) - 2:
        raise Rejected(f"truncated: decoded {len(frames)} of {declared} frames declared in the header")
    video = np.stack(frames)  # [T, S, S, 3]
    if cfg.fps > 0:
        video = video[resample_indices(len(video), fps, cfg.fps)]
        fps = cfg.fps
    return np.ascontiguousarray(convert_channels(video, cfg.channels)), fps


class _FileSource(Source):
    """Common load(): one file -> one record (or a rejection)."""

    def __init__(self, cfg: DataConfig, split: str, seed: int = 0):
        super().__init__(cfg, split, seed)
        self.root = Path(cfg.root)
        self.labels: dict[str, int] = {}  # item -> class id
        self.captions: dict[str, str] = {}  # item -> caption

    def _path(self, item: str) -> Path:
        return self.root / item

    def key_of(self, item: str) -> str:
        return make_key(str(Path(item).with_suffix("")))

    def load(self, item: str) -> list[Record | Rejection]:
        try:
            video, fps = decode_file(self._path(item), self.cfg)
        except Rejected as e:
            return [Rejection(item, str(e))]
        if len(video) < self.cfg.clip_span:
            return [Rejection(item, f"too short: {len(video)} frames at {fps:g} fps, a clip needs "
                              f"{self.cfg.clip_span} (frames {self.cfg.frames} x frameskip {self.cfg.frameskip})")]
        meta = {"source": self.cfg.source, "input": item, "fps": fps}
        return [Record(key=self.key_of(item), video=video, meta=meta, cls=self.labels.get(item),
                       txt=self.captions.get(item))]


def _videos_under(folder: Path, root: Path | None = None, allow_overlap: bool = False,
                  skipped: list[Rejection] | None = None) -> list[str]:
    """Video files under ``folder`` (relative paths), following symlinked folders (also to folders outside the data
    root: data on another disk); a folder reached twice (a link cycle, or two links to one folder) is listed once,
    under the first path that reached it, and every further path to it is appended to ``skipped`` with its reason
    (the manifest lists them).

    With the data ``root`` (``folder`` = ``<root>/<split>``): a folder or file reached through a link that lies in
    another split (a sibling of ``folder``, e.g. ``train/extra -> ../test`` or ``train/up -> ..``) is refused with a
    DataError naming both paths -- its videos would be training and test records at once -- unless
    ``allow_overlap`` (data.allow_split_overlap: followed, and listed in ``skipped``)."""
    out: list[str] = []
    seen: dict[str, Path] = {}
    others = ([os.path.realpath(p) for p in Path(root).iterdir() if p.is_dir() and p.resolve() != folder.resolve()]
              if root is not None and Path(root).is_dir() else [])

    def note(rel: Path, reason: str) -> None:
        if skipped is not None and rel.as_posix() not in {r.input for r in skipped}:
            skipped.append(Rejection(rel.as_posix(), reason))

    def in_other_split(real: str, rel: Path) -> bool:
        other = next((o for o in others if real == o or real.startswith(o.rstrip(os.sep) + os.sep)), None)
        if other is None:
            return False
        message = (f"{folder / rel} is {real}, inside another split ({other}): the same videos would be in two "
                   "splits (each both a training and a test record)")
        if not allow_overlap:
            raise DataError(message + "; remove the link, or set data.allow_split_overlap: true")
        note(rel, message + " (data.allow_split_overlap: listed, not refused)")
        return False

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        rel = Path(dirpath).relative_to(folder)
        if real in seen:
            note(rel, f"symbolic link to {real}, a folder already listed as {seen[real].as_posix()}: skipped")
            dirnames[:] = []
            continue
        seen[real] = rel
        in_other_split(real, rel)
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            if Path(name).suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
                if path.is_symlink():
                    in_other_split(os.path.realpath(path), rel / name)
                out.append((rel / name).as_posix())
    return out


class _SplitFolderSource(_FileSource):
    """Videos of a split live under ``<root>/<split>/``; items are paths relative to that folder."""

    def __init__(self, cfg: DataConfig, split: str, seed: int = 0):
        super().__init__(cfg, split, seed)
        self.dir = self.root / split

    def _path(self, item: str) -> Path:
        return self.dir / item


class VideoFolderSource(_SplitFolderSource):
    def inputs(self) -> list[str]:
        if not self.dir.is_dir():
            raise DataError(f"video folder: split folder {self.dir} not found (expected <root>/<split>/)")
        skipped: list[Rejection] = []
        items = self._limit(_videos_under(self.dir, self.root, self.cfg.allow_split_overlap, skipped), str(self.dir))
        self._listing_rejections.extend(skipped)
        if self.cfg.num_classes > 0:
            train_dir = self.root / "train"
            class_dir = train_dir if train_dir.is_dir() else self.dir
            classes = sorted(p.name for p in class_dir.iterdir() if p.is_dir())
            self.check_num_classes(classes, f"video folder {class_dir} (class = first sub-folder)")
            index = {c: i for i, c in enumerate(classes)}
            kept = []
            for item in items:
                top = item.split("/")[0] if "/" in item else None
                if top not in index:
                    self._listing_rejections.append(Rejection(item, "no label: not inside a class sub-folder"))
                    continue
                self.labels[item] = index[top]
                kept.append(item)
            items = kept
        for item in items:
            side = self.dir / Path(item).with_suffix(".txt")
            if side.is_file():
                self.captions[item] = side.read_text(encoding="utf-8").strip()
        if not items:
            raise DataError(f"video folder: no labelled videos in {self.dir}")
        return items


class UCF101Source(_FileSource):
    def _split_dir(self) -> Path:
        if self.cfg.split_dir:
            return Path(self.cfg.split_dir)
        for cand in (self.root / "ucfTrainTestlist", self.root.parent / "ucfTrainTestlist"):
            if cand.is_dir():
                return cand
        raise DataError(f"UCF-101: split folder ucfTrainTestlist not found in {self.root} or beside it "
                        "(set data.split_dir)")

    def inputs(self) -> list[str]:
        sdir = self._split_dir()
        class_file = sdir / "classInd.txt"
        if not class_file.is_file():
            raise DataError(f"UCF-101: class index {class_file} not found")
        classes = {}
        for line in class_file.read_text().splitlines():
            if line.strip():
                idx, name = line.split()
                classes[name] = int(idx) - 1
        self.check_num_classes(sorted(classes, key=classes.get), f"UCF-101 class index {class_file}")
        lists = [f"testlist0{self.cfg.ucf_split}.txt"]
        if self.split == "train":
            lists = [f"trainlist0{self.cfg.ucf_split}.txt"] + (lists if self.cfg.ucf_train_on_all else [])
        elif self.split != "test":
            raise DataError(f"UCF-101 has splits train/test, not {self.split!r}")
        items = []
        for name in lists:
            path = sdir / name
            if not path.is_file():
                raise DataError(f"UCF-101: split file {path} not found")
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                item = line.split()[0]
                cls_name = item.split("/")[0]
                if cls_name not in classes:
                    self._listing_rejections.append(
                        Rejection(item, f"no label: class {cls_name!r} not in {class_file.name}"))
                elif not (self.root / item).is_file():
                    self._listing_rejections.append(Rejection(item, f"listed in {name} but missing under {self.root}"))
                else:
                    self.labels[item] = classes[cls_name]
                    items.append(item)
        return self._limit(items, f"{sdir} ({', '.join(lists)})")


_KINETICS_NAME = re.compile(r"^(?P<id>.{11})_(?P<start>\d+)_(?P<end>\d+)$")


class KineticsSource(_SplitFolderSource):
    def _csv(self, split: str) -> Path:
        return Path(self.cfg.split_dir or self.cfg.root) / f"{split}.csv"

    @staticmethod
    def _read_csv(path: Path) -> dict[str, str]:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"label", "youtube_id"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"Kinetics: {path} lacks column(s) {sorted(missing)}")
            return {row["youtube_id"]: row["label"] for row in reader}

    def inputs(self) -> list[str]:
        path = self._csv(self.split)
        if not path.is_file():
            raise DataError(f"Kinetics: label file {path} not found")
        if not self.dir.is_dir():
            raise DataError(f"Kinetics: video folder {self.dir} not found")
        labels = self._read_csv(path)
        train_csv = self._csv("train")
        names = sorted(set((self._read_csv(train_csv) if train_csv.is_file() else labels).values()))
        self.check_num_classes(names, f"Kinetics labels {train_csv if train_csv.is_file() else path}")
        index = {n: i for i, n in enumerate(names)}
        items = []
        for item in _videos_under(self.dir):
            stem = Path(item).stem
            m = _KINETICS_NAME.match(stem)
            yid = m.group("id") if m else stem
            label = labels.get(yid)
            if label is None or label not in index:
                self._listing_rejections.append(Rejection(item, f"no label for youtube_id {yid!r} in {path.name}"))
                continue
            self.labels[item] = index[label]
            self.captions[item] = label
            items.append(item)
        return self._limit(items, str(self.dir))
