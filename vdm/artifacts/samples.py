"""A sample set: ``samples.npz`` (the sampling -> evaluation / report contract).

Arrays: ``videos`` uint8 [N, T, H, W, C]; ``seeds`` int64 [N] (sample i depends only on the model, the
settings and seed i); optional ``cls`` [N], ``txt`` [N] (unicode), conditioning clips; ``settings``: a
0-d unicode array holding the sampling settings as JSON. Written atomically with a fixed zip date, read
without pickles.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from vdm.artifacts import ArtifactError
from vdm.utils.io import save_npz


def _open(path: Path) -> np.lib.npyio.NpzFile:
    """The ``.npz`` opened without pickles; a missing or unreadable file is an :class:`ArtifactError`."""
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path}: not a readable .npz ({e})") from None


def write_samples(path: str | os.PathLike, arrays: dict[str, np.ndarray], settings: dict[str, Any]) -> None:
    """Atomic ``.npz`` (no pickles: strings are stored as unicode arrays)."""
    save_npz(path, {"settings": np.asarray(json.dumps(settings, sort_keys=True)), **arrays})


def read_samples(path: str | os.PathLike, key: str = "videos", limit: int | None = None,
                 arrays: tuple[str, ...] = ()) -> tuple[np.ndarray, dict[str, Any]]:
    """(videos [N, T, H, W, C] -- the first ``limit`` if given, the other entries) of a samples or clips
    ``.npz``: JSON strings decoded, the keys in ``arrays`` as numpy arrays whatever their size, other
    arrays of up to 4,096 elements as lists. Errors name the file and the key."""
    path = Path(path)
    with _open(path) as z:
        if key not in z:
            raise ArtifactError(f"{path}: no {key!r} array (has {sorted(z.files)})")
        videos = np.asarray(z[key] if limit is None else z[key][:limit])
        extra: dict[str, Any] = {}
        for k in z.files:
            if k == key:
                continue
            a = z[k]
            if k in arrays:
                extra[k] = np.asarray(a)
            elif a.dtype.kind in "US" and a.ndim == 0:
                s = str(a)
                try:
                    extra[k] = json.loads(s)
                except ValueError:
                    extra[k] = s
            elif a.size <= 4096:
                extra[k] = a.tolist()
    if videos.dtype != np.uint8 or videos.ndim != 5:
        raise ArtifactError(f"{path}: {key!r} must be uint8 [N, T, H, W, C], got {videos.dtype} {videos.shape}")
    return videos, extra


def read_samples_record(path: str | os.PathLike) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """(per-sample seeds [N] or None, settings dict or None) of a samples ``.npz``, without its videos."""
    with _open(Path(path)) as z:
        seeds = np.asarray(z["seeds"]) if "seeds" in z else None
        settings = json.loads(str(z["settings"])) if "settings" in z else None
    return seeds, settings
