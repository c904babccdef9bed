#!/bin/sh
# Builds the wasm package of the demo page into web/pkg/.
#
#   web/build.sh            then   node web/serve.mjs   and open http://127.0.0.1:8080/
#
# Needs the wasm32 target (`rustup target add wasm32-unknown-unknown`) and wasm-bindgen's
# command-line tool at the version of the wasm-bindgen crate in web/Cargo.toml
# (`cargo install wasm-bindgen-cli --version 0.2.130`).
set -eu
cd "$(dirname "$0")"
want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2 || true)
if [ "$have" != "$want" ]; then
    echo "web/build.sh: needs wasm-bindgen $want (found '${have:-none}'): cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
cargo build --release --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir pkg target/wasm32-unknown-unknown/release/deeproots_web.wasm
ls -l pkg/deeproots_web_bg.wasm
