"""Feature files: what a detector made of videos, between the feature jobs and the evaluation.

* **Real features** (``metrics/real-*.npz``, one file per detector, split and clip length): the outputs of one
  detector on the protocol's real clips, ``out.<name>`` [N, ...] (e.g. ``out.features`` of I3D, ``out.avg`` and
  ``out.first`` of Inception, ``out.fc7`` of C3D), ``info`` (JSON: the detector's identity and the real clips'
  record) and ``key`` (sha256 of ``info``). A reader asks for the ``info`` it needs; a file made with other
  settings is refused, naming the settings that differ.
* **Chunk features** (``features/<run>/<setting>/<i>.npz``, one file per chunk of a sample set): ``range``
  [lo, hi] (the samples they are), ``set_id`` (sha256 of the set's settings), ``frames``, and per detector
  ``<detector>.info`` (JSON) and ``<detector>.<name>`` [n, ...]. :func:`gather_chunks` puts one detector's
  outputs of a set's chunks in sample order after checking that they tile the set and belong to it.

Both are written atomically and byte-reproducibly (:func:`vdm.utils.io.save_npz`), read without pickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from vdm.artifacts import NPZ_ERRORS, ArtifactError, npz_errors
from vdm.utils.io import remove_stale_temporaries_of, save_npz

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]  # output name -> [N, ...]


def _plain(info: Mapping[str, Any]) -> Any:
    """``info`` as the JSON it is stored as (tuples become lists), for comparisons with a stored one."""
    return json.loads(json.dumps(info, sort_keys=True, default=str))


def cache_key(info: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything the features depend on."""
    return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()


def _differences(stored: Any, wanted: Any, where: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON trees, as 'key: stored -> wanted'."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out: list[str] = []
        for k in sorted(set(stored) | set(wanted)):
            out += _differences(stored.get(k), wanted.get(k), f"{where}.{k}" if where else str(k))
        return out
    return [] if stored == wanted else [f"{where}: {stored!r} -> {wanted!r}"]


# --------------------------------------------------------------------------------------------
# Real features
# --------------------------------------------------------------------------------------------
def write_real(path: str | os.PathLike, outputs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
    """Write one detector's outputs on the real clips with the ``info`` they were made under."""
    arrays: dict[str, Any] = {f"out.{name}": np.asarray(a, np.float32) for name, a in outputs.items()}
    arrays.update(key=np.array(cache_key(info)), info=np.array(json.dumps(info, sort_keys=True, default=str)))
    save_npz(path, arrays)


def read_real(path: str | os.PathLike, info: Mapping[str, Any]) -> Outputs | None:
    """The outputs in ``path`` if it exists and was made under ``info``; None if there is no such file; a file
    made under other settings is an :class:`ArtifactError` naming the settings that differ."""
    path = Path(path)
    if not path.is_file():
        return None
    with npz_errors(path), np.load(path, allow_pickle=False) as z:
        names = [k for k in z.files if k.startswith("out.")]
        if "key" not in z.files or "info" not in z.files or not names:
            raise ArtifactError(f"{path}: not a real-features file (needs 'key', 'info' and 'out.*')")
        if str(z["key"]) != cache_key(info):
            differ = _differences(json.loads(str(z["info"])), _plain(info))
            raise ArtifactError(f"{path}: cached real features were made with other settings "
                                f"(differ: {'; '.join(differ[:8])}); delete the file or choose another")
        return {k[len("out."):]: np.asarray(z[k]) for k in names}


def real_info_of(path: str | os.PathLike) -> dict[str, Any]:
    """The ``info`` a real-features file records (which detector, split and clips it holds)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["info"]))
    except FileNotFoundError:
        raise ArtifactError(f"real-features file not found: {path}") from None
    except NPZ_ERRORS as e:
        raise ArtifactError(f"{path}: not a real-features file ({e})") from None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``<path>.lock`` (parallel evaluations compute a cached file once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no POSIX locks here (e.g. some network file systems): no lock
            pass
        yield


def cached_real(path: str | os.PathLike | None, info: Mapping[str, Any],
                compute: Callable[[], Outputs]) -> tuple[Outputs, bool]:
    """(outputs, came_from_file): read ``path`` if it was made under ``info``, else compute and write it
    (under a lock); ``path`` None: computed, nothing written."""
    if path is None:
        return compute(), False
    path = Path(path)
    with _exclusive(path):
        remove_stale_temporaries_of(path)  # under the lock: no other evaluation is writing it now
        outputs = read_real(path, info)
        if outputs is not None:
            log.info("real features: read %s", path)
            return outputs, True
        outputs = compute()
        write_real(path, outputs, info)
    log.info("real features: written to %s", path)
    return outputs, False


def cache_path(cache_dir: str, info: Mapping[str, Any], stem: str) -> Path | None:
    """``<cache_dir>/real-<stem>-<key prefix>.npz`` (for evaluations outside the workflow), or None."""
    return Path(cache_dir) / f"real-{stem}-{cache_key(info)[:16]}.npz" if cache_dir else None


def index_real(paths: Sequence[str | Path]) -> dict[tuple[str, str, int], str | Path]:
    """{(detector id, split, frames): path} of the given real-features files, from what each records."""
    out = {}
    for p in paths:
        info = real_info_of(p)
        out[(info.get("detector_id"), info.get("real", {}).get("split"), info.get("real", {}).get("frames"))] = p
    return out


# --------------------------------------------------------------------------------------------
# Chunk features
# --------------------------------------------------------------------------------------------
def set_id(settings: dict[str, Any]) -> str:
    """sha256 of a sample set's settings without its chunk record: equal for a set and its chunks."""
    return hashlib.sha256(json.dumps({k: v for k, v in settings.items() if k != "chunk"}, sort_keys=True,
                                     default=str).encode()).hexdigest()


def write_chunk(path: str | os.PathLike, outputs: Mapping[str, tuple[Mapping[str, Any], Mapping[str, np.ndarray]]],
                *, lo: int, hi: int, set_id: str, frames: int) -> None:
    """Write the outputs of samples lo..hi-1 of a set: ``outputs`` = {detector: (info, {name: [hi-lo, ...]})}."""
    arrays: dict[str, Any] = {"range": np.array([lo, hi], np.int64), "set_id": np.array(set_id),
                              "frames": np.array(frames, np.int64)}
    for det, (info, named) in outputs.items():
        arrays[f"{det}.info"] = np.array(json.dumps(info, sort_keys=True, default=str))
        for name, a in named.items():
            if len(a) != hi - lo:
                raise ArtifactError(f"{path}: {det}.{name} has {len(a)} rows for samples {lo}..{hi - 1}")
            arrays[f"{det}.{name}"] = np.asarray(a)
    save_npz(path, arrays)


def read_chunk(path: str | os.PathLike, detector: str, info: Mapping[str, Any], *, set_id: str,
               frames: int) -> tuple[int, int, Outputs]:
    """(lo, hi, {name: [hi-lo, ...]}) of one detector in one chunk file, checked: a chunk features file, of
    the set ``set_id`` and its ``frames``-frame videos, holding ``detector``'s outputs made under ``info``."""
    with npz_errors(path), np.load(path, allow_pickle=False) as z:
        if not {"range", "set_id", "frames"} <= set(z.files):
            raise ArtifactError(f"{path}: not a chunk features file of `vdm evaluate --features-only`")
        if str(z["set_id"]) != set_id:
            raise ArtifactError(f"{path}: features of another sample set (its settings differ)")
        if int(z["frames"]) != frames:
            raise ArtifactError(f"{path}: features of {int(z['frames'])}-frame videos, the set has {frames}")
        if f"{detector}.info" not in z.files:
            raise ArtifactError(f"{path}: no {detector} outputs (its features job ran without the metrics that "
                                "need them); rerun its features job")
        if json.loads(str(z[f"{detector}.info"])) != _plain(info):
            raise ArtifactError(f"{path}: {detector} outputs of another network, weights, feature layer or "
                                "preprocessing; rerun its features job")
        lo, hi = (int(v) for v in z["range"])
        prefix = f"{detector}."
        named = {k[len(prefix):]: np.asarray(z[k]) for k in z.files if k.startswith(prefix) and k != f"{detector}.info"}
    return lo, hi, named


def gather_chunks(paths: Sequence[str | os.PathLike], detector: str, info: Mapping[str, Any], *, set_id: str,
                  n: int, frames: int) -> Outputs:
    """{name: [n, ...]}: one detector's outputs of a set's chunk files in sample order; every file checked
    (:func:`read_chunk`), and together they must cover samples 0 .. n - 1 once each."""
    parts = sorted((read_chunk(p, detector, info, set_id=set_id, frames=frames) + (p,) for p in paths),
                   key=lambda t: t[0])
    expect = 0
    for lo, hi, named, p in parts:
        if lo != expect or any(len(a) != hi - lo for a in named.values()):
            raise ArtifactError(f"{p}: features of samples {lo}..{hi - 1}, expected the chunk starting at {expect}")
        expect = hi
    if expect != n:
        raise ArtifactError(f"the features cover samples 0..{expect - 1} of {n}: chunk features missing")
    names = parts[0][2] if parts else {}
    return {name: np.concatenate([named[name] for _, _, named, _ in parts]) for name in names}
