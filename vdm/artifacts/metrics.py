"""A metrics file: one JSON per evaluated sample set (the evaluation -> report contract).

Keys: ``metric`` (e.g. "fvd"), ``value``, ``interval`` ([low, high], a {low, high} mapping, a ± half-width
or null), ``n_generated``, ``n_real``, and whatever else the evaluation records (settings of the real
clips, detector, bootstrap). Written atomically with sorted keys (byte-identical for equal content).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from vdm.artifacts import ArtifactError
from vdm.utils.io import write_json


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
