"""A metrics file: one JSON per evaluated sample set (the evaluation -> report contract).

Keys: ``metric`` (e.g. "fvd"), ``value``, ``interval`` ([low, high], a {low, high} mapping, a ± half-width
or null), ``n_generated``, ``n_real``, and whatever else the evaluation records (settings of the real
clips, detector, bootstrap), among them ``also``: {name: entry} of the further metrics of the set (the
names of :mod:`vdm.metrics.registry`), each ``{"computed": true, "value", "interval", "n_generated",
"n_real", ...}`` or ``{"computed": false, "reason"}``. Written atomically with sorted keys (byte-identical
for equal content). :data:`METRIC_COLUMNS` gives each further metric its table title and the paper's name.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from vdm.artifacts import ArtifactError
from vdm.utils.io import write_json

# Further metrics of a set (the JSON's "also"), in the order tables show them: name -> (column title, the
# paper's name of the metric in paper_tables.csv "metric", or None). The paper's validation set is our test
# split. Each table row gives each its columns <name>, <name>_low, _high, _n_generated, _n_real, _note
# ("not computed: <reason>" where it was not) and _paper.
METRIC_COLUMNS: dict[str, tuple[str, str | None]] = {
    "fid_avg_train": ("FID-avg vs train", "FID_avg_train"),
    "fid_avg_test": ("FID-avg vs test", "FID_avg_val"),
    "fid_first_train": ("FID-first vs train", "FID_first_train"),
    "fid_first_test": ("FID-first vs test", "FID_first_val"),
    "is_avg_1": ("IS-avg (1 split)", "IS_avg_1split"),
    "is_avg_10": ("IS-avg (10 splits)", "IS_avg_10split"),
    "is_first_1": ("IS-first (1 split)", "IS_first_1split"),
    "is_first_10": ("IS-first (10 splits)", "IS_first_10split"),
    "c3d_fid": ("FID (C3D, paper Table 1)", "FID_C3D"),
    "c3d_is": ("IS (C3D, paper Table 1)", "IS_C3D"),
    "fvd2048_16f": ("FVD 2048/16f (StyleGAN-V convention)", None),
    "is_i3d": ("IS (I3D, paper Table 3)", "IS_I3D"),
    "digit_class_accuracy": ("Digit class accuracy", None),
    "digit_identity": ("Digit identity", None),
    "digit_identity_kept": ("Digit identity kept (given frames' digit)", None),
    "digit_fd": ("FD (digit classifier)", None),
    "psnr": ("PSNR of predicted frames (dB, mean)", None),
    "psnr_best": ("PSNR (dB, best of k draws)", None),
    "ssim": ("SSIM of predicted frames (mean)", None),
    "ssim_best": ("SSIM (best of k draws)", None),
}
ALSO_TITLES = {name: title for name, (title, _) in METRIC_COLUMNS.items()}
ALSO_PAPER_METRIC = {name: paper for name, (_, paper) in METRIC_COLUMNS.items() if paper}
ALSO_FIELDS = ("", "_low", "_high", "_n_generated", "_n_real", "_note", "_paper")


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any]) -> None:
    """Write one metrics JSON atomically; it must name its ``metric`` and ``value``."""
    missing = [k for k in ("metric", "value") if k not in metrics]
    if missing:
        raise ArtifactError(f"{path}: metrics without {', '.join(map(repr, missing))}")
    write_json(path, dict(metrics))


def _interval(raw: Any, value: float, where: str) -> tuple[float, float]:
    """(low, high) from [lo, hi], {"low", "high"} / {"lo", "hi"}, a ± half-width, or null."""
    if raw is None:
        return (math.nan, math.nan)
    if isinstance(raw, Mapping):
        for lo, hi in (("low", "high"), ("lo", "hi"), ("lower", "upper")):
            if lo in raw and hi in raw:
                return (float(raw[lo]), float(raw[hi]))
        raise ArtifactError(f"{where}: interval {raw!r} has no low/high")
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        return (float(raw[0]), float(raw[1]))
    if isinstance(raw, (int, float)):
        return (value - float(raw), value + float(raw))
    raise ArtifactError(f"{where}: cannot read interval {raw!r}")


def read_metrics(path: str | Path) -> dict[str, Any]:
    """One metrics JSON, normalised: metric, value, interval_low/high, n_real, n_generated (+ all raw keys)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"metrics file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: not JSON ({e})") from None
    for key in ("metric", "value"):
        if key not in raw:
            raise ArtifactError(f"{path}: missing key {key!r} (keys: {', '.join(sorted(raw))})")
    value = float(raw["value"])
    low, high = _interval(raw.get("interval"), value, str(path))
    return {
        **raw,
        "value": value,
        "interval_low": low,
        "interval_high": high,
        "n_real": raw.get("n_real"),
        "n_generated": raw.get("n_generated"),
    }
