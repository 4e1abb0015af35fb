"""Names of the ablation grid's cells: the ``{run}`` name of a training run and the ``{setting}`` folder name
of a sampling setting, formatted and parsed here only (the workflow's wildcards and the report both use this
module).

``{run} = img<K>[-step<N>]``: the run trained with K independent images appended per video (``img0`` =
video-only training), or its EMA weights at training step N (``img8-step500``).

``{setting} = <sampler>-<steps>-w<guidance>[-<task>-<replace|recon<w_r>>]``, e.g. ``ancestral-64-w2`` or
``langevin-32-w0-extension-recon5``. Numbers are written in positional notation with the fewest digits
that read back as the same float (``2.0 -> "2"``, ``1e-05 -> "0.00001"``, ``1e9 -> "1000000000"``):
never an exponent, whose ``-`` would clash with the separator, so every value the schema accepts
(any float >= 0) has a name, and parsing a name gives back exactly the float it was made from.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

# Wildcard constraints of {run} (and of a training run) and the pattern parse_run reads (unnamed groups only:
# Snakemake adds its own named group).
TRAINING_RUN_RE = r"img([0-9]+)"
RUN_RE = rf"{TRAINING_RUN_RE}(?:-step([0-9]+))?"

NUMBER_RE = r"[0-9]+(?:\.[0-9]+)?"
SAMPLERS = ("ancestral", "langevin")
TASKS = ("prediction", "extension", "superres")

# Wildcard constraint of {setting} (no named groups: Snakemake adds its own).
SETTING_RE = (rf"(?:{'|'.join(SAMPLERS)})-[0-9]+-w{NUMBER_RE}"
              rf"(?:-(?:{'|'.join(TASKS)})-(?:replace|recon{NUMBER_RE}))?")
_SETTING = re.compile(
    rf"(?P<sampler>{'|'.join(SAMPLERS)})-(?P<steps>[0-9]+)-w(?P<w>{NUMBER_RE})"
    rf"(?:-(?P<task>{'|'.join(TASKS)})-(?:(?P<replace>replace)|recon(?P<w_r>{NUMBER_RE})))?"
)


def run_name(images_per_video: int, step: int | None = None) -> str:
    """img<K>: the run trained with K images per video; img<K>-step<N>: its EMA weights at step N."""
    return f"img{int(images_per_video)}" + ("" if step is None else f"-step{int(step)}")


def parse_run(name: str) -> tuple[int, int | None]:
    """Inverse of :func:`run_name`: (K images per video, step N or None)."""
    m = re.fullmatch(RUN_RE, name)
    if m is None:
        raise ValueError(f"not a run name: {name!r} (expected img<K>[-step<N>], e.g. img8 or img8-step500)")
    return int(m[1]), None if m[2] is None else int(m[2])


def base_run(run: str) -> str:
    """The training run of a run name (img8-step500 -> img8)."""
    return run_name(parse_run(run)[0])


def run_images(run: str) -> int:
    """K, the images per video of the run's training."""
    return parse_run(run)[0]


def num(x: float) -> str:
    """A non-negative number for a path: positional, shortest exact form (2.0 -> "2", 0.5 -> "0.5")."""
    x = float(x)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"setting names hold finite numbers >= 0, got {x!r}")
    return np.format_float_positional(x, trim="-")


def setting_name(s: Mapping[str, Any]) -> str:
    """Folder name of a sampling setting (``sampler``, ``steps``, ``guidance_weight``; for conditional tasks
    also ``task``, ``cond_method`` and, for reconstruction guidance, ``w_r``)."""
    name = f"{s['sampler']}-{int(s['steps'])}-w{num(s['guidance_weight'])}"
    if s.get("task", "unconditional") != "unconditional":
        method = "replace" if s["cond_method"] == "replacement" else f"recon{num(s['w_r'])}"
        name += f"-{s['task']}-{method}"
    return name


def parse_setting(name: str) -> dict[str, Any]:
    """Inverse of :func:`setting_name`: the ``sample`` fields the name stands for."""
    m = _SETTING.fullmatch(name)
    if m is None:
        raise ValueError(f"not a sampling setting name: {name!r} (expected <sampler>-<steps>-w<guidance>"
                         "[-<task>-<replace|recon<w_r>>], e.g. ancestral-64-w2 or ancestral-64-w2-prediction-recon5)")
    out: dict[str, Any] = {"sampler": m["sampler"], "steps": int(m["steps"]), "guidance_weight": float(m["w"]),
                           "task": m["task"] or "unconditional"}
    if m["task"]:
        out["cond_method"] = "replacement" if m["replace"] else "reconstruction"
        if not m["replace"]:
            out["w_r"] = float(m["w_r"])
    return out
