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
from vdm.utils.io import atomic_open
from vdm.utils.yamlfile import DuplicateKeyError, load_yaml

# What an experiment name may be: it becomes a folder (results/<name>) inside shell commands.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_RULE = "1 to 64 characters: letters, digits, '_', '.', '-', starting with a letter or digit"

# Sections of a workflow config file that only the workflow reads (the ablation grid, per-rule resources,
# the report); the stage commands skip them, so they accept the workflow's config files as they are.
WORKFLOW_SECTIONS = ("ablation", "cascade", "resources", "report")


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
        try:
            model = data.get("model", {})
            if isinstance(model, Mapping):
                data["model"] = derive_model_fields(resolve_model_dict(model), model, data.get("data", {}))
            return from_dict(cls, data)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def validate(self) -> None:
        if not re.fullmatch(NAME_PATTERN, self.name):
            raise ConfigError(f"name {self.name!r} is not a valid experiment name ({NAME_RULE})")
        if not 0 <= self.seed < 2**63:  # the stages derive their seeds from it (vdm.seeds.derive_seed)
            raise ConfigError(f"seed must be in [0, 2**63), got {self.seed}")


# Model fields that follow from the data: (model key, data key). The model section may leave them out
# (they are taken from the data section, over a model.size preset's value); where it sets one, it must agree.
DERIVED_MODEL_FIELDS = (("image_size", "resolution"), ("in_channels", "channels"), ("num_classes", "num_classes"))


def derive_model_fields(resolved: Mapping[str, Any], written: Mapping[str, Any],
                        data: Mapping[str, Any]) -> dict[str, Any]:
    """The model dict ``resolved`` (size preset expanded) with the fields of :data:`DERIVED_MODEL_FIELDS`
    taken from ``data`` (defaults: :class:`DataConfig`). A field the model section sets itself (``written``)
    must equal the data's value -- ``model.num_classes: 0`` is allowed too (an unconditional model of
    labelled data) -- else a :class:`ConfigError` names both keys and values."""
    if not isinstance(data, Mapping):
        return dict(resolved)  # from_dict reports the malformed data section
    defaults = {f.name: f.default for f in dataclasses.fields(DataConfig)}
    out = dict(resolved)
    for model_key, data_key in DERIVED_MODEL_FIELDS:
        value = data.get(data_key, defaults[data_key])
        if model_key in written:
            mine = written[model_key]
            if mine != value and not (model_key == "num_classes" and mine == 0):
                raise ConfigError(f"model.{model_key} {mine!r} != data.{data_key} {value!r}: model.{model_key} "
                                  f"follows from data.{data_key}; leave it out of the model section")
        else:
            out[model_key] = value
    return out


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment YAML; ``overrides`` are dotted keys (``{"train.steps": 10}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = load_yaml(path) or {}
    except (DuplicateKeyError, yaml.YAMLError) as e:
        raise ConfigError(str(e) if isinstance(e, DuplicateKeyError) else f"{path}: not valid YAML: {e}") from None
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
    with atomic_open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
