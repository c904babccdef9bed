#!/usr/bin/env bash
# The README's targets table on the adapter at hand, in one go (all but the burn comparison,
# comparisons/burn/run.sh): the three models' root variant against the baseline (NIN at batch
# 1 and 32, GoogLeNet and ResNet-50 at 1 and 16) and the three grouped layers at 1 to 64 groups
# (batch 32). Each bench's output and JSON go to OUT, all the tables to OUT/summary.txt.
#
#   scripts/targets.sh OUT [bench options...]
#   scripts/targets.sh /tmp/targets --seconds 1                      # a GPU: a second per variant
#   scripts/targets.sh /tmp/targets --min-rounds 3 --max-rounds 3    # lavapipe, 2 cores: 75 s
#
# Environment: DEEPROOTS (a binary to use; default: target/release/deeproots, built first),
# DEEPROOTS_REV (the commit that binary came from, for the summary), DEEPROOTS_BACKEND,
# XDG_RUNTIME_DIR (default /tmp/xdg).
set -euo pipefail

if [ $# -lt 1 ]; then
    sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
out="$1"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" "$out"
chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true
# Built from the working tree, so that the summary's commit is the binary's.
if [ -z "${DEEPROOTS:-}" ]; then
    (cd "$here/.." && cargo build --release --quiet)
    DEEPROOTS="$here/../target/release/deeproots"
    DEEPROOTS_REV="$(git -C "$here/.." describe --always --dirty 2>/dev/null || true)"
fi
bin="$DEEPROOTS"

summary="$out/summary.txt"
{
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $bin ($("$bin" --version), commit ${DEEPROOTS_REV:-unknown})"
    echo "# bench options: ${*:-(defaults)}"
    "$bin" info | head -1
} > "$summary"

# name, then the bench arguments.
runs=(
    "nin --arch nin --variants orig,root-8 --batch 1,32"
    "googlenet --arch googlenet --variants orig,root-16 --batch 1,16"
    "resnet50 --arch resnet50 --variants orig,root-64 --batch 1,16"
    "nin-conv2a --arch conv-96x16x16-192-k5 --batch 32"
    "resnet-res3 --arch conv-128x28x28-128-k3 --batch 32"
    "googlenet-conv2 --arch conv-64x56x56-192-k3 --batch 32"
)
for r in "${runs[@]}"; do
    read -r name args <<< "$r"
    echo "== $name: deeproots bench $args $*" >&2
    # shellcheck disable=SC2086
    "$bin" bench $args "$@" --json "$out/$name.json" > "$out/$name.txt" 2>&1 || {
        echo "bench failed for $name; its output:" >&2
        cat "$out/$name.txt" >&2
        exit 1
    }
    {
        echo
        echo "\$ deeproots bench $args $*"
        # The table's header and rows, and the round-by-round ratios.
        sed -n '2,$p' "$out/$name.txt"
    } >> "$summary"
done
cat "$summary"
