"""Full training state on disk: save atomically, keep the newest few, load the newest complete one.

A state file ``<workdir>/checkpoints/state-<step>.pt`` holds everything needed for an exact resume
(model, EMA, optimizer, step, samples seen, RNG states of every rank, loader position of every rank,
the resolved config). Files appear under their final name only once fully written (temp file +
rename, ``vdm.utils.io.torch_save``), so a job killed while saving leaves the previous state intact.
Only builtin types and tensors are stored: the file loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from vdm.utils.io import torch_save

log = logging.getLogger(__name__)

STATE_FORMAT = "vdm-train-state-1"
_NAME = re.compile(r"^state-(\d{9})\.pt$")


def state_path(ckpt_dir: str | Path, step: int) -> Path:
    return Path(ckpt_dir) / f"state-{step:09d}.pt"


def list_states(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every state file under its final name, oldest first (temporaries are ignored)."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    out = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return sorted(out)


def save_state(ckpt_dir: str | Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` (must contain ``step``) atomically, then delete all but the ``keep`` newest."""
    path = state_path(ckpt_dir, int(state["step"]))
    torch_save({"format": STATE_FORMAT, **state}, path)
    prune(ckpt_dir, keep)
    return path


def prune(ckpt_dir: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest states."""
    for _, old in list_states(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: unreadable training state ({type(e).__name__}: {e})") from e
    if not isinstance(blob, dict) or blob.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a vdm training state (expected format {STATE_FORMAT!r})")
    return blob


def load_latest(ckpt_dir: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path] | None:
    """The newest readable state, or None. An unreadable newest file is skipped with a warning."""
    for _step, path in reversed(list_states(ckpt_dir)):
        try:
            return load_state(path, map_location), path
        except ValueError as e:
            log.warning("skipping training state %s: %s", path, e)
    return None
