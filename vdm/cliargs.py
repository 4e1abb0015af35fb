"""What every ``vdm`` stage command shares: the exit codes, the config flags, loading a config from them.

Exit codes: 0 done; 1 the work failed (a job failed, the training folder is held by another training, a
stale file); 2 the input is wrong (a config key or value, a flag, a missing or malformed input file) --
argparse's own code for bad flags, so a wrapper can tell "fix the input" from "look at the logs".
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from vdm.config import ExperimentConfig, load_config, parse_override

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags every stage command has: ``--config CFG.yaml``, repeatable ``--set key.sub=value``
    overrides, ``--dry-run`` (print the resolved config of the sections the stage reads, as YAML, and
    stop before reading any input) and ``--quiet`` (no progress bars)."""
    p.add_argument("--config", required=True, help="experiment YAML (workflow config files are read as they are)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set train.steps=10 (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config of the sections this stage reads and stop")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def print_dry_run(cfg: ExperimentConfig, sections: tuple[str, ...] | None = None) -> int:
    """Print ``cfg`` (only ``sections`` when given, plus the root seed) as YAML; returns :data:`EXIT_OK`."""
    full = cfg.to_dict()
    shown = full if sections is None else {"seed": full["seed"], **{s: full[s] for s in sections}}
    print(yaml.safe_dump(shown, sort_keys=False), end="")
    return EXIT_OK


def config_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> ExperimentConfig:
    """The config of ``--config`` with the ``--set`` overrides (and ``extra`` ones) applied; raises
    :class:`vdm.config.ConfigError` naming the file, key and value."""
    overrides = dict(parse_override(s) for s in args.set)
    overrides.update(extra or {})
    return load_config(args.config, overrides)


def fail(prog: str, error: object, code: int = EXIT_BAD_INPUT) -> int:
    """Print ``<prog>: error: <error>`` to stderr and return ``code``."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return code
