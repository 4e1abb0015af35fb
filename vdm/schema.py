"""``vdm schema``: the workflow's JSON schema, generated from the config dataclasses.

One source of truth for configuration keys: the experiment sections of
``workflow/schemas/config.schema.json`` (``name``, ``seed``, ``data``, ``model``, ...) are generated
here from :class:`vdm.config.ExperimentConfig` and its parts — types, defaults, ``Literal`` choices
as ``enum``, the comment on each field as its description, ``additionalProperties: false``. The
workflow-only sections (the ablation grid, resources, report) are written by hand in
``workflow/schemas/workflow.schema.yaml`` and merged in. ``tests/test_config_schema.py`` checks that
the committed schema equals the generated one; after changing a config dataclass run::

    vdm schema --write
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import json
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from vdm.config import ExperimentConfig, to_dict
from vdm.model.config import SIZES
from vdm.utils.io import atomic_open

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_SCHEMA = REPO / "workflow" / "schemas" / "workflow.schema.yaml"
OUTPUT_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.json"

# Sections whose fields get no "default" in the schema: Snakemake's validate(set_default=True)
# would otherwise fill every field and so override what a named size (`model: {size: demo}`)
# expands to. Their defaults are stated in the descriptions and applied by the dataclasses.
NO_FIELD_DEFAULTS = {"model": {"size"}}


# --------------------------------------------------------------------------------------------
# Field comments → descriptions
# --------------------------------------------------------------------------------------------
def field_comments(cls: type) -> dict[str, str]:
    """Comment of each field of dataclass ``cls``: the trailing ``# ...`` on its line, else the
    block of ``#`` lines right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    columns: dict[int, int] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
            columns[tok.start[0]] = tok.start[1]
    lines = source.splitlines()

    def own_line(ln: int) -> bool:  # a line holding only a comment (not a "# ---- section ----" rule)
        return lines[ln - 1].strip().startswith("#") and not comments[ln].startswith("---")

    tree = ast.parse(source)
    cls_node = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    out: dict[str, str] = {}
    continued: set[int] = set()  # comment lines that continue a field's trailing comment
    for node in cls_node.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        end = node.end_lineno or node.lineno
        if end in comments and not lines[end - 1].strip().startswith("#"):
            # trailing comment, continued on the following comment-only lines at the same column
            parts, ln = [comments[end]], end + 1
            while ln in comments and own_line(ln) and (columns[ln] == columns[end] or _indented(lines[ln - 1])):
                parts.append(comments[ln])
                continued.add(ln)
                ln += 1
            text = " ".join(parts)
        else:
            above, ln = [], node.lineno - 1
            while ln >= 1 and ln in comments and own_line(ln) and ln not in continued:
                above.insert(0, comments[ln])
                ln -= 1
            text = " ".join(above)
        if text:
            out[node.target.id] = text
    return out


def _indented(line: str) -> bool:
    """``#     text``: a comment continued under the previous line's trailing comment."""
    return line.strip()[1:].startswith("  ")


# --------------------------------------------------------------------------------------------
# Python types → JSON schema
# --------------------------------------------------------------------------------------------
def type_schema(tp: Any, where: str) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_null = [a for a in args if a is not type(None)]
        branches = [type_schema(a, where) for a in non_null]
        if len(non_null) < len(args):
            branches.append({"type": "null"})
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp, where)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": type_schema(args[0], where)}
        return {
            "type": "array",
            "prefixItems": [type_schema(a, where) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in (list,):
        return {"type": "array", "items": type_schema(args[0], where) if args else {}}
    if tp in (dict,) or origin in (dict, typing.Mapping):
        return {"type": "object"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    if tp is Any:
        return {}
    raise TypeError(f"{where}: no JSON schema for type {tp!r}")


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return to_dict(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return to_dict(field.default_factory())  # type: ignore[misc]
    return dataclasses.MISSING


def dataclass_schema(cls: type, where: str = "") -> dict[str, Any]:
    """Strict object schema for dataclass ``cls`` (nested dataclasses become nested objects)."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    keep_defaults = NO_FIELD_DEFAULTS.get(where)
    props: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f"{where}.{f.name}" if where else f.name
        sub = type_schema(hints[f.name], key)
        if "pattern" in f.metadata:
            sub["pattern"] = f.metadata["pattern"]
        desc = comments.get(f.name, "")
        default = _default(f)
        is_section = dataclasses.is_dataclass(hints[f.name])
        if default is dataclasses.MISSING:
            required.append(f.name)
        elif not is_section:
            if keep_defaults is None or f.name in keep_defaults:
                sub["default"] = default
            else:
                desc = f"{desc} (default {json.dumps(default)} unless set by the named size)".strip()
        if desc:
            sub = {"description": desc, **sub}
        props[f.name] = sub
    doc = inspect.getdoc(cls) or ""
    # dataclasses synthesize a signature docstring when there is none; drop it.
    if doc.startswith(f"{cls.__name__}("):
        doc = ""
    out: dict[str, Any] = {"type": "object"}
    if doc:
        out["description"] = doc.split("\n\n")[0].replace("\n", " ")
    out["properties"] = props
    out["additionalProperties"] = False
    if required:
        out["required"] = required
    return out


def experiment_schema() -> dict[str, Any]:
    schema = dataclass_schema(ExperimentConfig)
    # model.size names a registry entry; its fields are expanded by vdm.model.config.resolve_model_dict.
    schema["properties"]["model"]["properties"]["size"]["enum"] = ["custom", *SIZES]
    return schema


def build_schema() -> dict[str, Any]:
    """Generated experiment sections + hand-written workflow sections, one strict schema."""
    exp = experiment_schema()
    with open(WORKFLOW_SCHEMA) as f:
        wf = yaml.safe_load(f)
    clash = sorted(set(exp["properties"]) & set(wf["properties"]))
    if clash:
        raise ValueError(f"{WORKFLOW_SCHEMA}: sections {clash} are also experiment sections")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vdm workflow configuration",
        "description": (
            "GENERATED by `vdm schema --write` from the config dataclasses (vdm/*/config.py) and "
            "workflow/schemas/workflow.schema.yaml; do not edit by hand."
        ),
        "type": "object",
        "properties": {**exp["properties"], **wf["properties"]},
        "additionalProperties": False,
        "$defs": wf.get("$defs", {}),
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vdm schema", description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help=f"write {OUTPUT_SCHEMA.relative_to(REPO)}")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed schema is stale")
    args = ap.parse_args(argv)
    text = render(build_schema())
    if args.check:
        current = OUTPUT_SCHEMA.read_text() if OUTPUT_SCHEMA.is_file() else ""
        if current != text:
            print(f"{OUTPUT_SCHEMA}: stale; run `vdm schema --write`", file=sys.stderr)
            return 1
        return 0
    if args.write:

        with atomic_open(OUTPUT_SCHEMA, "w") as f:
            f.write(text)
        print(f"wrote {OUTPUT_SCHEMA}")
        return 0
    sys.stdout.write(text)
    return 0
