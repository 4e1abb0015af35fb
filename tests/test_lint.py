"""Lint: ``ruff check`` and ``snakefmt --check`` clean with the pinned versions and the config in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: install the test extras "
                    "(pip install -e '.[test]', as scripts/install.sh does)")
    return str(path)


def run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean():
    r = run(tool("ruff"), "check", "--no-cache", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_snakefmt_is_clean():
    r = run(tool("snakefmt"), "--check", "Snakefile", "workflow")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_lint_config_finds_what_it_is_for(tmp_path):
    """The project's ruff config (copied) flags an unused import, a long line and unsorted imports."""
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    (tmp_path / "bad.py").write_text("import sys\nimport os\n\nx = '" + "a" * 130 + "'\n")
    r = run(tool("ruff"), "check", "--no-cache", "--output-format", "concise", ".", cwd=tmp_path)
    assert r.returncode == 1
    for code in ("F401", "E501", "I001"):
        assert code in r.stdout, r.stdout
    (tmp_path / "bad.smk").write_text("rule a:\n    shell: 'true'\n    output: 'x'\n")
    r = run(tool("snakefmt"), "--check", "bad.smk", cwd=tmp_path)
    assert r.returncode != 0, r.stdout + r.stderr
