#!/bin/sh
# Builds the wasm package and serves the demo page on http://127.0.0.1:${PORT:-8080}/
#
#   web/demo.sh [PORT]
set -eu
cd "$(dirname "$0")"
./build.sh
exec node serve.mjs "$@"
