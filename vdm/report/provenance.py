"""Provenance of one result: which config, code, seeds and software produced it.

One JSON per (run, sampling setting): the sha256 of the resolved sampling and training configs (of
their canonical JSON form, so that comments and key order do not matter) and of the export, the git
commit (and whether tracked files had local changes), the sample seeds and sampler settings, the
metric, and the versions of the packages that compute it -- and the records of the jobs that made
each input, written when they ran (:mod:`vdm.runinfo`): the training segments (``<export>.run.json``),
the sampling chunks and their gathering, the evaluation (``<output>.run.json``).
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vdm.artifacts.export import read_export_meta
from vdm.artifacts.metrics import read_metrics
from vdm.artifacts.samples import read_samples_record
from vdm.runinfo import git_state, package_versions, read_sidecar
from vdm.utils.io import sha256_file


def config_hash(path: str | Path) -> str:
    """sha256 of the config's canonical JSON (sorted keys): independent of comments and layout."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seeds_summary(seeds: np.ndarray) -> dict[str, Any]:
    seeds = np.asarray(seeds).reshape(-1)
    if seeds.size and np.array_equal(seeds, np.arange(seeds[0], seeds[0] + seeds.size)):
        return {"count": int(seeds.size), "first": int(seeds[0]), "last": int(seeds[-1]), "contiguous": True}
    return {"count": int(seeds.size), "values": seeds.tolist(), "contiguous": False}


def export_meta(path: str | Path) -> dict[str, Any]:
    """The export's meta (builtin values only), read by the export's own reader."""
    meta = read_export_meta(path)
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, type(None), list, dict))}


def provenance(config: str | Path, train_config: str | Path, model: str | Path, samples: str | Path,
               metrics: str | Path) -> dict[str, Any]:
    seed_array, settings = read_samples_record(samples)
    seeds = seeds_summary(seed_array) if seed_array is not None else None
    with open(config) as f:
        cfg = yaml.safe_load(f) or {}
    return {
        "result": str(metrics),
        "metrics": read_metrics(metrics),
        "config": {"path": str(config), "sha256": config_hash(config)},
        "train_config": {"path": str(train_config), "sha256": config_hash(train_config)},
        "export": {"path": str(model), "sha256": sha256_file(model), "meta": export_meta(model)},
        "samples": {"path": str(samples), "sha256": sha256_file(samples), "seeds": seeds, "settings": settings},
        "seed": cfg.get("seed"),
        "runs": {"training": read_sidecar(model), "samples": read_sidecar(samples),
                 "metrics": read_sidecar(metrics)},
        "git": git_state(),  # of the report job itself
        "packages": package_versions(),
        "host": {"machine": platform.machine(), "system": platform.system()},
    }
