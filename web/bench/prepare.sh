#!/bin/sh
# Writes what the speed comparison page loads, under web/generated/ (ignored by git):
#   models/<name>.safetensors  `deeproots zoo export <name>` (He-normal weights, seed 0)
#   onnx/<name>.onnx           python/export_onnx.py, checked against `deeproots run` (rel L2 <= 1e-4)
#
#   web/bench/prepare.sh [name ...]        (default: nin nin-root-8; any NIN-CIFAR zoo name works)
#
# DEEPROOTS: the deeproots binary (default target/release/deeproots).
# PYTHON: a python with the onnx and onnxruntime packages (default python3), e.g.
#   python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install onnx onnxruntime
#   PYTHON=/tmp/onnx-venv/bin/python web/bench/prepare.sh
set -eu
cd "$(dirname "$0")/../.."
DEEPROOTS=${DEEPROOTS:-target/release/deeproots}
PYTHON=${PYTHON:-python3}
[ $# -gt 0 ] || set -- nin nin-root-8
mkdir -p web/generated/models web/generated/onnx
for name in "$@"; do
    "$DEEPROOTS" zoo export "$name" "web/generated/models/$name.safetensors"
    "$PYTHON" python/export_onnx.py "web/generated/models/$name.safetensors" "web/generated/onnx/$name.onnx" \
        --check "$DEEPROOTS"
done
