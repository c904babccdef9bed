#!/usr/bin/env bash
# Where lavapipe's compiled kernels spend their time: samples `deeproots profile` with perf's
# cpu-clock event (no hardware counters needed), copies the code lavapipe compiled (anonymous
# executable mappings) out of /proc/<pid>/mem while the run is busy, disassembles it and prints
# the hottest instructions with their share of the kernels' samples. This is how
# docs/results/lavapipe-warm-rows.txt found the 1x1 layers waiting on the first line of each row.
#
#   scripts/lavapipe-kernel-profile.sh <model file or zoo name> [batch] [top]
#
# Pick a batch that keeps the run busy for several seconds (a one-layer file at batch 256, say:
# the code is copied 2 s after the start, and again at 4 s if the first copy missed it).
# Needs root (or ptrace rights over the child) for /proc/<pid>/mem, and perf, objdump, python3
# (Debian: linux-perf, binutils).
# Environment: DEEPROOTS (the binary; default target/release/deeproots), DEEPROOTS_BACKEND
# (default vulkan), XDG_RUNTIME_DIR (default /tmp/xdg), KEEP (set: keep the copied code and the
# samples, to read the code around a hot address: objdump -D -b binary -mi386:x86-64
# --adjust-vma=0x<start> <dir>/<start>.bin).
set -euo pipefail

if [ $# -lt 1 ]; then
    sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
model="$1"
batch="${2:-1}"
top="${3:-20}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${DEEPROOTS:-$here/../target/release/deeproots}"
export DEEPROOTS_BACKEND="${DEEPROOTS_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true
for tool in perf objdump python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "no deeproots binary at $bin (cargo build --release)" >&2; exit 1; }

work="$(mktemp -d)"
if [ -n "${KEEP:-}" ]; then
    trap 'echo "kept in $work: regions (start end), <start>.bin (the code), perf.data, profile.txt" >&2' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi

perf record -q -e cpu-clock -F 2000 -o "$work/perf.data" -- \
    "$bin" profile "$model" --batch "$batch" >"$work/profile.txt" 2>&1 &
perf_pid=$!

# The child of perf is deeproots; copy its anonymous executable mappings while it computes.
copy_code() {
    python3 - "$1" "$work" <<'PY'
import sys
pid, out = int(sys.argv[1]), sys.argv[2]
n = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem, \
        open(f"{out}/regions", "w") as idx:
    for line in maps:
        f = line.split()
        if "x" not in f[1] or len(f) > 5 or f[0].startswith("ffffffffff"):
            continue  # only anonymous executable memory: what lavapipe compiled
        a, b = (int(v, 16) for v in f[0].split("-"))
        mem.seek(a)
        open(f"{out}/{a:x}.bin", "wb").write(mem.read(b - a))
        idx.write(f"{a:x} {b:x}\n")
        n += 1
print(n)
PY
}
copied=0
for _ in 1 2; do
    sleep 2
    pid="$(pgrep -P "$perf_pid" | head -1 || true)"
    [ -n "$pid" ] || break
    if [ "$(copy_code "$pid" 2>/dev/null || echo 0)" != "0" ]; then
        copied=1
        break
    fi
done
wait "$perf_pid" || true
[ "$copied" = 1 ] || { echo "the run ended before its code could be copied: raise the batch" >&2; exit 1; }
head -1 "$work/profile.txt"

perf script -i "$work/perf.data" -F ip 2>/dev/null >"$work/ips"
python3 - "$work" "$top" <<'PY'
import collections, re, subprocess, sys
work, top = sys.argv[1], int(sys.argv[2])
regions = [tuple(int(v, 16) for v in l.split()) for l in open(f"{work}/regions")]
samples = collections.Counter(int(l, 16) for l in open(f"{work}/ips") if l.strip())
total = sum(samples.values())
hot = collections.Counter({ip: c for ip, c in samples.items()
                           if any(a <= ip < b for a, b in regions)})
jit = sum(hot.values())
print(f"samples: {total}, in the compiled kernels: {jit} ({100 * jit / max(total, 1):.1f}%)")
text = {}
for a, b in regions:
    out = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64",
                          f"--adjust-vma={a}", f"{work}/{a:x}.bin"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.*)", line)
        if m:
            text[int(m.group(1), 16)] = m.group(2).strip()
print(f"{'share':>7}  {'address':>14}  instruction (a stalled load shows on the one after it)")
for ip, c in hot.most_common(top):
    print(f"{100 * c / max(jit, 1):6.1f}%  {ip:14x}  {text.get(ip, '?')}")
PY
