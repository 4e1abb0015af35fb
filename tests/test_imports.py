"""The dependency graph of the package: module-level imports between vdm modules form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

VDM = Path(__file__).resolve().parents[1] / "vdm"


def module_name(path: Path) -> str:
    parts = path.relative_to(VDM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """vdm modules imported by the top-level statements of ``path`` (not inside functions or classes)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from vdm.x import y": y may be a submodule or a name defined in vdm.x
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(VDM.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): module_level_imports(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_vdm_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_part_configs_import_their_base_at_module_level():
    graph = import_graph()
    for part in ("data", "diffusion", "metrics", "model", "sampling", "train"):
        assert "vdm.config_base" in graph[f"vdm.{part}.config"], part
        assert "vdm.config" not in graph[f"vdm.{part}.config"], part
        src = (VDM / part / "config.py").read_text()
        assert "    from vdm" not in src, f"vdm/{part}/config.py imports a vdm module inside a function"


# Function-level imports of vdm modules that are kept, each for an optional heavy dependency:
# the data sources pull av / tfrecord / mlxtend only for the source in use, and the text encoder pulls
# transformers (seconds to import) only for text-conditioned models.
LAZY_IMPORTS_ALLOWED = {
    ("vdm.data.sources", "vdm.data.sources.mnist"),
    ("vdm.data.sources", "vdm.data.sources.bair"),
    ("vdm.data.sources", "vdm.data.sources.video"),
    ("vdm.sampling.generate", "vdm.model.text_encoder"),
    ("vdm.train.text", "vdm.model.text_encoder"),
    # a stage's command line parses its flags before importing torch: `vdm train --help` in well under a second
    ("vdm.train.cli", "vdm.train.launch"),
    ("vdm.train.cli", "vdm.train.loop"),
}


def function_level_imports(path: Path) -> set[str]:
    """vdm modules imported inside the functions of ``path``."""
    found: set[str] = set()
    for fn in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vdm"):
                    found.add(node.module)
                elif isinstance(node, ast.Import):
                    found |= {a.name for a in node.names if a.name.startswith("vdm")}
    return found


def test_function_level_imports_finder_finds_one(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef g():\n    from vdm.config import load_config\n    import vdm.seeds\n")
    assert function_level_imports(f) == {"vdm.config", "vdm.seeds"}


def test_no_function_level_vdm_imports_but_the_optional_heavy_ones():
    found = {(module_name(p), m) for p in sorted(VDM.rglob("*.py")) for m in function_level_imports(p)}
    assert found - LAZY_IMPORTS_ALLOWED == set(), "import these at module level (no optional heavy dependency)"
