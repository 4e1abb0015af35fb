"""What the workflow does in its own process rather than through a vdm command: each rule's resources
(config ``resources``) and the small jobs of its ``run:`` blocks (resolved config files, step exports)."""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any, Mapping

import yaml

from vdm.utils.io import atomic_path


def rule_threads(resources: Mapping[str, Any], rule: str) -> int:
    """Threads of a rule: resources.<rule>.threads, falling back to resources.default.threads, else 1."""
    return int(resources.get(rule, {}).get("threads", resources.get("default", {}).get("threads", 1)))


def rule_resources(resources: Mapping[str, Any], rule: str) -> dict[str, Any]:
    """Snakemake resources of a rule: resources.default updated with resources.<rule>, without threads."""
    out = {**resources.get("default", {}), **resources.get(rule, {})}
    out.pop("threads", None)
    if not out.get("gpu"):
        out.pop("gpu", None)  # no GPU request at all rather than --gpus=0
    return out


_TIMESPAN = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?|w|weeks?)\s*$")
_UNIT_MINUTES = {"s": 1 / 60, "m": 1.0, "h": 60.0, "d": 1440.0, "w": 10080.0}


def runtime_minutes(value: int | float | str) -> float:
    """A rule's ``runtime`` in minutes: a number of minutes, or a timespan string as Snakemake reads it ("90m", "2h",
    "1.5 hours", "2d"; the workflow schema admits exactly these forms)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().strip("'\"")
    if text.isdecimal():
        return float(text)
    m = _TIMESPAN.match(text)
    if not m:
        raise ValueError(f"runtime {value!r} is neither minutes nor a timespan such as '90m' or '2h'")
    return float(m.group(1)) * _UNIT_MINUTES[m.group(2)[0]]


def write_resolved_config(path: str, cfg: Mapping[str, Any], log: str, what: str) -> None:
    with open(path, "w") as f:
        f.write(f"# {what}: resolved by the workflow from the configuration; do not edit.\n")
        yaml.safe_dump(json.loads(json.dumps(cfg)), f, sort_keys=False)  # plain types only
    with open(log, "w") as f:
        f.write(f"wrote {path}\n")


class MissingStepExport(FileNotFoundError):
    """The training of a run wrote no export at a step ablation.checkpoints asks for."""


def copy_step_export(src: str, dst: str, log: str, run: str, out: str) -> None:
    """Copy an export the training wrote at an intermediate step (atomically); ``out`` = results/<name>."""
    if not os.path.isfile(src):
        raise MissingStepExport(
            f"{src} not found: run {run} has no export at that step. Its training ended before "
            f"ablation.checkpoints listed the step (train.export_steps); to evaluate it, retrain from step 0 "
            f"(rm -r {out}/train/{run} {out}/models/{run}.pt)."
        )
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    if os.path.isfile(f"{src}.run.json"):  # the record of the training segments that made it
        with atomic_path(f"{dst}.run.json") as tmp:
            shutil.copyfile(f"{src}.run.json", tmp)
    with open(log, "w") as f:
        f.write(f"copied {src} -> {dst}\n")


def spec_json(obj: Any) -> str:
    """JSON text of a job's spec, safe inside HTML: ``<``, ``>`` and ``&`` as JSON escapes (the same object when
    parsed). `snakemake --report` embeds the rules' params in a ``<script>`` element, so a config's free text
    (``report.dataset_note: "</script>..."``) must not be able to end that element or start markup."""
    text = json.dumps(obj, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_spec(path: str, text: str, log: str) -> None:
    """Write a job's spec (:func:`spec_json`) to ``path``, atomically: a spec travels as a file, never on a command
    line (a 200 KB ``report.dataset_note`` is beyond what one argument may hold)."""
    json.loads(text)  # valid JSON, or no file
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    with open(log, "w") as f:
        f.write(f"wrote {path} ({len(text)} characters)\n")

