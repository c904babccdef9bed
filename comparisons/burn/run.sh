#!/usr/bin/env bash
# NIN-CIFAR and its root variants: deeproots bench and burn's wgpu backend, back to back on
# the same graphics API, with the load average beside the figures.
#
#   comparisons/burn/run.sh                  # build both (release), run both, print both tables
#
# Environment:
#   BATCH=32                  images per forward pass
#   VARIANTS=orig,root-2,root-4,root-8,root-16
#   ROUNDS=5                  timed rounds for both (deeproots: --min-rounds = --max-rounds)
#   WARMUP=3                  burn's untimed runs per variant (deeproots does 2 of its own)
#   BACKEND=vulkan            graphics API for both: vulkan or gl
#   SPIRV=1                   build burn with its `vulkan` feature (SPIR-V compiler) instead of WGSL
#   DEEPROOTS=path            use this deeproots binary instead of building target/release/deeproots
#   DEEPROOTS_REV=rev         the commit that binary was built from, for the header
#   CARGO_TARGET_DIR          burn project's build folder (default comparisons/burn/target)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BATCH="${BATCH:-32}"
VARIANTS="${VARIANTS:-orig,root-2,root-4,root-8,root-16}"
ROUNDS="${ROUNDS:-5}"
WARMUP="${WARMUP:-3}"
BACKEND="${BACKEND:-vulkan}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
# wgpu's Vulkan and GL loaders want a runtime dir; a headless machine often has none.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg}"
mkdir -p "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true

if [ -z "${DEEPROOTS:-}" ]; then
    echo "== building deeproots (release)" >&2
    (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --release --quiet)
    DEEPROOTS="$root/target/release/deeproots"
    DEEPROOTS_REV="$(git -C "$root" describe --always --dirty 2>/dev/null || true)"
fi
echo "== building the burn comparison (release; the first build takes long)" >&2
start=$(date +%s)
features=()
if [ "${SPIRV:-0}" = 1 ]; then features=(--features spirv); fi
nice -n 10 cargo build --release --quiet --manifest-path "$here/Cargo.toml" "${features[@]}"
echo "== burn comparison built in $(( $(date +%s) - start )) s" >&2
BURN="$CARGO_TARGET_DIR/release/burn-nin-bench"

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), $(nproc) cores"
echo "# deeproots: $DEEPROOTS ($("$DEEPROOTS" --version)${DEEPROOTS_REV:+, commit $DEEPROOTS_REV}), burn 0.22.1"
echo "# batch $BATCH, variants $VARIANTS, $ROUNDS timed rounds, graphics API $BACKEND${SPIRV:+, SPIRV=$SPIRV}"
echo

echo "## load before: $(uptime)"
echo
echo "## $DEEPROOTS bench --backend $BACKEND --arch nin --variants $VARIANTS --batch $BATCH --min-rounds $ROUNDS --max-rounds $ROUNDS"
"$DEEPROOTS" bench --backend "$BACKEND" --arch nin --variants "$VARIANTS" --batch "$BATCH" \
    --min-rounds "$ROUNDS" --max-rounds "$ROUNDS"
echo
echo "## the same with --wall-clock (upload + forward + readback, the clock burn's figures use)"
"$DEEPROOTS" bench --backend "$BACKEND" --arch nin --variants "$VARIANTS" --batch "$BATCH" \
    --min-rounds "$ROUNDS" --max-rounds "$ROUNDS" --wall-clock
echo
echo "## load between: $(uptime)"
echo
echo "## burn-nin-bench --api $BACKEND --batch $BATCH --variants $VARIANTS --rounds $ROUNDS --warmup $WARMUP --check-ma $DEEPROOTS --verify"
"$BURN" --api "$BACKEND" --batch "$BATCH" --variants "$VARIANTS" --rounds "$ROUNDS" \
    --warmup "$WARMUP" --check-ma "$DEEPROOTS" --verify
echo
echo "## load after: $(uptime)"
