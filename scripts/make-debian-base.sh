#!/usr/bin/env bash
# Build (once) a Debian bookworm minbase image as an OCI layout for fidelity tests and benchmarks:
#
#   scripts/make-debian-base.sh        # -> .tmp/images/debian-oci, image ref "bookworm"
#   scripts/make-debian-base.sh --force  # rebuild even when the layout exists
#
# debootstrap --variant=minbase (needs the Debian archive, ~100 s), apt caches/lists, logs and /dev
# nodes removed, then packed with umoci as one gzip layer (linux/amd64, Cmd ["bash"], Docker's PATH).
# Independent of kiln's own code. Needs root (debootstrap). MIRROR overrides the Debian mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)

OUT="$REPO/.tmp/images/debian-oci"
REF=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CREATED=2024-01-01T00:00:00Z

if [[ ${1:-} != --force && -f $OUT/index.json ]]; then
  echo "[debian-base] $OUT exists (use --force to rebuild)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[debian-base] must run as root (debootstrap)" >&2
  exit 1
fi
bash scripts/install-deps.sh debootstrap >/dev/null

mkdir -p "$REPO/.tmp/images"
WORK=$(mktemp -d "$REPO/.tmp/images/.debian-build-XXXXXX")
cleanup() {
  # debootstrap may leave /proc or /sys mounted in the target when it fails: never rm -rf across them.
  local m
  for m in $(awk -v p="$WORK/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

t0=$(date +%s)
ROOT="$WORK/root"
echo "[debian-base] debootstrap --variant=minbase $REF $MIRROR"
debootstrap --variant=minbase "$REF" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  tail -30 "$WORK/debootstrap.log" >&2
  exit 1
}
echo "[debian-base] debootstrap done in $(($(date +%s) - t0))s"

rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/var/log/* "$ROOT"/dev/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
mkdir -p "$ROOT"/var/cache/apt/archives/partial "$ROOT"/var/lib/apt/lists/partial

LAYOUT="$WORK/oci"
BUNDLE="$WORK/bundle"
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:$REF"
umoci unpack --image "$LAYOUT:$REF" "$BUNDLE"
cp -a "$ROOT/." "$BUNDLE/rootfs/"
umoci repack --history.created "$CREATED" --history.created_by "debootstrap --variant=minbase $REF" \
  --image "$LAYOUT:$REF" "$BUNDLE"
umoci config --no-history --created "$CREATED" --config.cmd bash \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --os linux --architecture amd64 --image "$LAYOUT:$REF"
umoci gc --layout "$LAYOUT"

if [[ ${1:-} != --force && -f $OUT/index.json ]]; then
  echo "[debian-base] another run published $OUT meanwhile: keeping it"
  exit 0
fi
rm -rf "$OUT"
mv "$LAYOUT" "$OUT"
echo "[debian-base] $OUT:$REF ready in $(($(date +%s) - t0))s"
skopeo inspect "oci:$OUT:$REF" | grep -E '"(Digest|Architecture|Os)"'
