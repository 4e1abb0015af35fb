"""Strict YAML for config files: a key given twice in one mapping is an error, not a silent replacement.

``yaml.safe_load`` (and Snakemake's config loader) keep the last of two equal keys: a file with two ``train:``
sections silently loses the first. :func:`load_yaml` is ``safe_load`` that refuses that, naming the file, the
key and both lines; every config file the workflow or a stage command reads goes through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ValueError):
    """A mapping of a YAML file holds the same key twice."""


class _StrictLoader(yaml.SafeLoader):
    source = "<string>"


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: SafeLoader reports it itself
            continue
        if first is not None:
            raise DuplicateKeyError(f"{loader.source}: key {key!r} appears twice (lines {first} and {line}); "
                                    "YAML would keep only the second: remove or merge one of them")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> Any:
    """The YAML file ``path`` as ``yaml.safe_load`` reads it; :class:`DuplicateKeyError` for a key given twice."""
    text = Path(path).read_text()
    loader = _StrictLoader(text)
    loader.source = str(path)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
