#!/usr/bin/env bash
# Typecheck only some directories (useful while other parts of the tree are being edited).
# Usage: scripts/check-module.sh src/fs [src/image ...]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
cfg=".tmp/tsconfig.check.$$.json"
inc=$(printf '"../%s/**/*.ts",' "$@" src/common)
cat > "$cfg" <<JSON
{ "extends": "../tsconfig.json", "compilerOptions": { "noEmit": true, "rootDir": ".." }, "include": [${inc%,}] }
JSON
trap 'rm -f "$cfg"' EXIT
npx tsc -p "$cfg"
