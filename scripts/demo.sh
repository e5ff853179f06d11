#!/usr/bin/env bash
# README command 1. On a fresh Debian 12 machine (root, Node preinstalled): installs what it needs,
# makes a busybox base image offline, pushes it to a local registry with kiln, then builds the demo
# Dockerfile (examples/demo) FROM it — RUN steps included — into an OCI layout and a docker-archive
# tarball, and prints the image digest. Outputs land in ./demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
KILN_DEPS="busybox-static docker-registry" bash scripts/install-deps.sh
if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src -newer dist/src/cli/main.js -name '*.ts' -print -quit)" ]; then
  npm run --silent build
fi

work=.tmp/demo
out=demo-out
rm -rf "$work" "$out"
mkdir -p "$work/busybox-base" "$out"

# 1. A busybox root filesystem from Debian's busybox-static.
cp examples/busybox-base/Dockerfile "$work/busybox-base/Dockerfile"
bash scripts/make-busybox-rootfs.sh "$work/busybox-base/rootfs"

# 2. A real registry on loopback (distribution), on a free port.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat > "$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem: { rootdirectory: $PWD/$work/registry-data }
http:
  addr: 127.0.0.1:$port
log: { level: error }
YML
/usr/bin/docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
trap 'kill $reg_pid 2>/dev/null || true' EXIT
node -e '
  const url = process.argv[1]; const end = Date.now() + 15000;
  (async () => { for (;;) { try { if ((await fetch(url)).ok) return; } catch {} if (Date.now() > end) { console.error("registry did not start"); process.exit(1); } await new Promise((r) => setTimeout(r, 100)); } })();
' "http://127.0.0.1:$port/v2/"

# 3. kiln builds and pushes the base image (FROM scratch + COPY of the rootfs).
./bin/kiln build --context "$work/busybox-base" --dockerfile "$work/busybox-base/Dockerfile" \
  --destination "127.0.0.1:$port/busybox:latest" --insecure --verbosity warn

# 4. kiln builds the demo image FROM that base, with RUN steps, into a layout and a tarball.
./bin/kiln build --context examples/demo --dockerfile examples/demo/Dockerfile \
  --build-arg "BASE=127.0.0.1:$port/busybox:latest" --insecure-pull \
  --no-push --destination kiln-demo:latest \
  --oci-layout-path "$out/oci" --tar-path "$out/image.tar" --digest-file "$out/digest"

echo
echo "OCI layout:     $out/oci"
echo "docker-archive: $out/image.tar"
echo "image digest:   $(cat "$out/digest")"
echo "demo finished in $(( $(date +%s) - start ))s"
