"""Frozen, typed configuration: strict YAML/dict loading and dumping.

Every part of the system owns one frozen dataclass (``vdm/<part>/config.py``); an experiment is
their composition (:class:`ExperimentConfig`). Unknown keys are errors that name the key and the
file, so a typo fails before any job runs. Every field is documented where it is declared.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it."""


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(tp: Any, value: Any, where: str) -> Any:
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{where}: null is not allowed here (expected {getattr(tp, '__name__', tp)})")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(repr(prefix + k) for k in unknown)} "
            f"(known keys of {cls.__name__}: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key)
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as e:
            msg = str(e)
            if where and msg.split(" ", 1)[0] in fields:  # "steps must be ..." -> "train.steps must be ..."
                raise ConfigError(f"{where}.{msg}") from None
            raise ConfigError(f"{where}: {msg}" if where else msg) from None
    return obj


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML/JSON-safe) form of a config dataclass."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def replace(obj: T, **changes: Any) -> T:
    return dataclasses.replace(obj, **changes)


# --------------------------------------------------------------------------------------------
# The experiment: composition of every part's config.
# --------------------------------------------------------------------------------------------
from vdm.data.config import DataConfig  # noqa: E402
from vdm.diffusion.config import DiffusionConfig  # noqa: E402
from vdm.metrics.config import EvalConfig  # noqa: E402
from vdm.model.config import UNetConfig, resolve_model_dict  # noqa: E402
from vdm.sampling.config import SampleConfig  # noqa: E402
from vdm.train.config import LaunchConfig, TrainConfig  # noqa: E402


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
