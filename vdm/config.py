"""Frozen, typed configuration: strict YAML/dict loading and dumping.

Every part of the system owns one frozen dataclass (``vdm/<part>/config.py``); an experiment is
their composition (:class:`ExperimentConfig`). Unknown keys are errors that name the key and the
file, so a typo fails before any job runs. Every field is documented where it is declared.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from vdm.config_base import ConfigError, from_dict, replace, to_dict  # noqa: F401 (re-exported)

# --------------------------------------------------------------------------------------------
# The experiment: composition of every part's config.
# --------------------------------------------------------------------------------------------
from vdm.data.config import DataConfig
from vdm.diffusion.config import DiffusionConfig
from vdm.metrics.config import EvalConfig
from vdm.model.config import UNetConfig, resolve_model_dict
from vdm.sampling.config import SampleConfig
from vdm.train.config import LaunchConfig, TrainConfig


# What an experiment name may be: it becomes a folder (results/<name>) inside shell commands.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_RULE = "1 to 64 characters: letters, digits, '_', '.', '-', starting with a letter or digit"

# Sections of a workflow config file that only the workflow reads (the ablation grid, per-rule resources,
# the report); the stage commands skip them, so they accept the workflow's config files as they are.
WORKFLOW_SECTIONS = ("ablation", "resources", "report")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: everything needed to shard, train, sample and evaluate."""

    # experiment name, used in output paths (results/<name>) and logs; 1 to 64 characters: letters, digits,
    # '_', '.', '-', starting with a letter or digit
    name: str = dataclasses.field(default="experiment", metadata={"pattern": NAME_PATTERN})
    seed: int = 0  # root seed; every stage derives its own seeds from it explicitly
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: UNetConfig = dataclasses.field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    launch: LaunchConfig = dataclasses.field(default_factory=LaunchConfig)
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)
    evaluate: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "ExperimentConfig":
        data = dict(data)
        if "model" in data and isinstance(data["model"], Mapping):
            data["model"] = resolve_model_dict(data["model"])
        try:
            return from_dict(cls, data)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def validate(self) -> None:
        if not re.fullmatch(NAME_PATTERN, self.name):
            raise ConfigError(f"name {self.name!r} is not a valid experiment name ({NAME_RULE})")


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment YAML; ``overrides`` are dotted keys (``{"train.steps": 10}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping")
    data = {k: v for k, v in data.items() if k not in WORKFLOW_SECTIONS}  # the workflow's own sections
    for dotted, value in (overrides or {}).items():
        apply_override(data, dotted, value)
    return ExperimentConfig.from_dict(data, source=str(path))


def apply_override(data: dict, dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {p!r} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.sub=value`` (value as YAML) from a command line."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def dump_config(cfg: ExperimentConfig, path: str | Path) -> None:
    from vdm.utils.io import atomic_open

    with atomic_open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
