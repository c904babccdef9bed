#!/bin/sh
# The browser test: builds the native binary (dev profile, as `cargo test` does) and the wasm
# package, then runs the demo page in headless Chromium against the native engine
# (web/test/e2e.mjs).
#
#   web/test.sh [e2e.mjs options]
#
# Needs: Chromium (`apt-get install chromium`), the wasm32 target and wasm-bindgen-cli (see
# web/build.sh), Node.js with npm, and the Fashion-MNIST test set (`apt-get install
# dataset-fashion-mnist`).
set -eu
cd "$(dirname "$0")/.."
cargo build
web/build.sh
(cd web/test && npm ci --no-audit --no-fund --loglevel=error)
DEEPROOTS="${DEEPROOTS:-target/debug/deeproots}" node web/test/e2e.mjs "$@"
