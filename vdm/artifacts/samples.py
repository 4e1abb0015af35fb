"""A sample set: ``samples.npz`` (the sampling -> evaluation / report contract).

Arrays: ``videos`` uint8 [N, T, H, W, C]; ``seeds`` int64 [N] (sample i depends only on the model, the
settings and seed i); optional ``cls`` [N], ``txt`` [N] (unicode), conditioning clips; ``settings``: a
0-d unicode array holding the sampling settings as JSON. Written atomically with a fixed zip date, read
without pickles.

A chunk of a sample set (``sample.chunk_size``) is a file of the same layout holding samples lo .. hi - 1,
its settings with ``"chunk": {"index", "range": [lo, hi], "num_samples"}`` added. ``gather_samples``
writes the set from its chunks, streaming one chunk at a time, byte for byte the file that
``write_samples`` writes for the whole set.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from vdm.artifacts import ArtifactError, npz_errors
from vdm.utils.io import npz_writer, save_npz


@contextlib.contextmanager
def _open(path: Path) -> Iterator[np.lib.npyio.NpzFile]:
    """The ``.npz`` opened without pickles; a missing file, or one that cannot be read -- when opened or when one of
    its arrays is read (a truncated zip, a bad CRC) -- is an :class:`ArtifactError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    with npz_errors(path), np.load(path, allow_pickle=False) as z:
        yield z


def write_samples(path: str | os.PathLike, arrays: dict[str, np.ndarray], settings: dict[str, Any]) -> None:
    """Atomic ``.npz`` (no pickles: strings are stored as unicode arrays)."""
    save_npz(path, {"settings": np.asarray(json.dumps(settings, sort_keys=True)), **arrays})


def _entries(z: np.lib.npyio.NpzFile, skip: str, arrays: tuple[str, ...]) -> dict[str, Any]:
    """The entries of an open ``.npz`` but ``skip``: JSON strings decoded, the keys in ``arrays`` as numpy
    arrays whatever their size, other arrays of up to 4,096 elements as lists."""
    extra: dict[str, Any] = {}
    for k in z.files:
        if k == skip:
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
    return extra


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
        extra = _entries(z, key, arrays)
    if videos.dtype != np.uint8 or videos.ndim != 5:
        raise ArtifactError(f"{path}: {key!r} must be uint8 [N, T, H, W, C], got {videos.dtype} {videos.shape}")
    return videos, extra


def read_samples_header(path: str | os.PathLike, key: str = "videos") -> tuple[tuple[int, ...], dict[str, Any]]:
    """(shape of the videos, the other entries as :func:`read_samples` gives them), without reading the
    videos: for a set too large for memory."""
    path = Path(path)
    with _open(path) as z:
        if key not in z:
            raise ArtifactError(f"{path}: no {key!r} array (has {sorted(z.files)})")
        extra = _entries(z, key, ())
    shape, dtype = _npy_header(path, key)
    if dtype != np.uint8 or len(shape) != 5:
        raise ArtifactError(f"{path}: {key!r} must be uint8 [N, T, H, W, C], got {dtype} {shape}")
    return tuple(shape), extra


def read_samples_record(path: str | os.PathLike) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """(per-sample seeds [N] or None, settings dict or None) of a samples ``.npz``, without its videos."""
    with _open(Path(path)) as z:
        seeds = np.asarray(z["seeds"]) if "seeds" in z else None
        settings = json.loads(str(z["settings"])) if "settings" in z else None
    return seeds, settings


def read_labels(path: str | os.PathLike) -> np.ndarray | None:
    """The class labels ``cls`` int64 [N] of a samples ``.npz``, or None if it has none (its videos unread)."""
    with _open(Path(path)) as z:
        return np.asarray(z["cls"], np.int64) if "cls" in z.files else None


# Arrays of a samples file that hold one row per sample (the others, e.g. cond_frame_indices, are per set).
PER_SAMPLE = ("videos", "seeds", "cls", "txt", "cond_videos")


def _chunk_of(path: Path, z: np.lib.npyio.NpzFile) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings without the chunk record, the chunk record) of an open chunk file."""
    if "settings" not in z:
        raise ArtifactError(f"{path}: no 'settings' array: not a sample chunk")
    settings = json.loads(str(z["settings"]))
    chunk = settings.pop("chunk", None)
    if not isinstance(chunk, dict) or "range" not in chunk:
        raise ArtifactError(f"{path}: its settings have no 'chunk' record: not a sample chunk")
    return settings, chunk


def _write_header(out, first: np.ndarray, rows: int) -> None:
    """The ``.npy`` header ``np.lib.format.write_array`` writes for ``first`` with ``rows`` rows."""
    header = np.lib.format.header_data_from_array_1_0(first)
    header["shape"] = (rows, *first.shape[1:])
    np.lib.format.write_array_header_1_0(out, header)  # what write_array picks for a header this short


def _npy_header(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of array ``name`` of an ``.npz``, read from its header alone."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        shape, _, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)(f)
    return shape, dtype


def gather_samples(out_path: str | os.PathLike, chunk_paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Write the sample set ``out_path`` from its chunk files (any order) and return its settings.

    Checks that the chunks are one set (equal settings, ranges that tile 0 .. N without gaps or
    overlaps, equal arrays of the per-set entries); holds one chunk array in memory at a time."""
    paths = [Path(p) for p in chunk_paths]
    if not paths:
        raise ArtifactError(f"{out_path}: no chunks to gather")
    heads = []
    for p in paths:
        with _open(p) as z:
            settings, chunk = _chunk_of(p, z)
            heads.append((int(chunk["range"][0]), int(chunk["range"][1]), int(chunk["num_samples"]), p, settings,
                          list(z.files)))
    heads.sort(key=lambda h: h[0])
    lo0, _, N, p0, settings0, files0 = heads[0]
    expect = 0
    for lo, hi, n, p, settings, files in heads:
        if settings != settings0 or files != files0 or n != N:
            raise ArtifactError(f"{p}: settings or arrays differ from {p0}'s: chunks of different sample sets")
        if lo != expect:
            what = "missing" if lo > expect else "overlapping"
            raise ArtifactError(f"{p}: starts at sample {lo}, expected {expect} ({what} samples before it)")
        expect = hi
    if expect != N:
        raise ArtifactError(f"{heads[-1][3]}: the chunks end at sample {expect} of {N}: the last chunk(s) are missing")
    names = files0  # the array names, in the order the chunk files hold them
    with npz_writer(out_path) as entry:  # the entries save_npz (write_samples) writes, streamed
        for name in names:
            with entry(name) as out:
                if name == "settings":
                    np.lib.format.write_array(out, np.asarray(json.dumps(settings0, sort_keys=True)),
                                              allow_pickle=False)
                    continue
                if name not in PER_SAMPLE:  # one value per set: the same in every chunk (checked)
                    with _open(p0) as z:
                        value = z[name]
                    for *_, p, _, _ in heads[1:]:
                        with _open(p) as z:
                            if not np.array_equal(z[name], value):
                                raise ArtifactError(f"{p}: {name!r} differs from {p0}'s")
                    np.lib.format.write_array(out, value, allow_pickle=False)
                    continue
                # strings: the widest chunk's width, as one array of all the samples would have
                dtypes = [_npy_header(h[3], name)[1] for h in heads]
                common = np.result_type(*dtypes) if dtypes[0].kind in "US" else None
                dtype = None
                for i, (lo, hi, _, p, _, _) in enumerate(heads):
                    with _open(p) as z:
                        a = np.ascontiguousarray(z[name] if common is None else z[name].astype(common))
                    if len(a) != hi - lo:
                        raise ArtifactError(f"{p}: {name!r} has {len(a)} rows, its range {lo}..{hi - 1} {hi - lo}")
                    if i == 0:
                        dtype, tail = a.dtype, a.shape[1:]
                        _write_header(out, a, N)
                    elif a.dtype != dtype or a.shape[1:] != tail:
                        raise ArtifactError(f"{p}: {name!r} is {a.dtype} {a.shape}, the first chunk's "
                                            f"{dtype} (n, {', '.join(map(str, tail))})")
                    out.write(a.tobytes())
    return settings0
