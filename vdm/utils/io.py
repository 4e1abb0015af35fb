"""Atomic file output: write to a temporary name in the same folder, then rename.

Every stage writes its outputs through these helpers so that a killed job never leaves a
partial file under the final name (Snakemake and the resume logic trust final names).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """``open`` whose result appears under ``path`` only once the block completes."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def remove_stale_temporaries(folder: str | os.PathLike, name_glob: str) -> list[Path]:
    """Delete the temporaries :func:`atomic_path` leaves when killed mid-write (``.<name>.<random>.tmp``)
    for the final names matching ``name_glob`` in ``folder``; returns what was removed. Call it only
    where no other process writes those names (a job's own outputs, a locked work directory)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.glob(f".{name_glob}.*.tmp")):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def remove_stale_temporaries_of(*paths: str | os.PathLike | None) -> list[Path]:
    """:func:`remove_stale_temporaries` for the given output files."""
    import glob

    removed: list[Path] = []
    for path in paths:
        if path:
            path = Path(path)
            removed += remove_stale_temporaries(path.parent, glob.escape(path.name))
    return removed


class WorkdirBusy(RuntimeError):
    """Another process holds the work directory's lock; the message names it."""


class WorkdirLock:
    """An advisory, exclusive lock on ``<folder>/<name>`` (``fcntl.flock``; released when the holder exits,
    however it ends). The file records the holder (pid, host, start time) for the message of the next
    process that finds it taken."""

    def __init__(self, folder: str | os.PathLike, name: str, what: str):
        self.path = Path(folder) / name
        self.what = what
        self._f: Any = None

    def acquire(self) -> "WorkdirLock":
        import fcntl
        import socket
        import time

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown process"
            f.close()
            raise WorkdirBusy(f"{self.path.parent} is in use by another {self.what} ({holder}; lock {self.path}). "
                              "Two runs on one folder would overwrite each other's files: wait for it to end, "
                              "stop it, or use another folder.") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing the file releases the lock
            self._f = None

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
        f.write("\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically and reproducibly: saved to an open file, the archive's inner folder is
    always "archive" (saved to a path, torch names it after the file: here a random temporary name)."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


@contextlib.contextmanager
def npz_writer(path: str | os.PathLike) -> Iterator[Callable[[str], Any]]:
    """Atomic, byte-reproducible ``.npz`` being written: yields ``entry(name)``, which opens the stream
    of ``<name>.npy`` (stored, every entry dated ZIP_EPOCH instead of now), for one entry at a time."""
    import zipfile

    with atomic_open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:

            def entry(name: str) -> Any:
                info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                return zf.open(info, "w", force_zip64=True)

            yield entry


def save_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
    """Atomic, byte-reproducible ``.npz`` (what ``np.savez`` writes, with every entry dated ZIP_EPOCH
    instead of now); no pickles: object arrays are refused, strings are stored as unicode arrays."""
    import numpy as np

    with npz_writer(path) as entry:
        for name, value in arrays.items():
            with entry(name) as out:
                np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
