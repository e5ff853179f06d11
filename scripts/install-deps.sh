#!/usr/bin/env bash
# Install everything kiln's build and tests need, idempotently.
#
#   scripts/install-deps.sh [EXTRA_DEBIAN_PACKAGE ...]
#
# 1. Debian packages (the list below is THE list; extra names on the command line are added, e.g.
#    `debootstrap` for scripts/make-debian-base.sh; KILN_DEPS="pkg ..." replaces the list for callers that
#    need only a few). Missing ones are installed with apt-get when running as root; otherwise the missing
#    names are printed and the script fails.
# 2. npm dependencies: `npm ci`, only when node_modules is missing or package-lock.json changed since.
#
# Works on a fresh Debian 12 machine that has only node, npm, git and gcc. Safe to run repeatedly:
# when everything is present it does no network access and finishes in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# What each package is for (keep this list the single source of truth).
DEBIAN_PACKAGES=(
  docker-registry   # the registry every pull/push test talks to
  skopeo            # independent registry/OCI-layout client to check what kiln wrote
  umoci             # independent OCI-layout unpacker; builds offline base images
  busybox-static    # tiny offline base image with a shell
  apache2-utils     # htpasswd for registry basic auth
  pigz              # parallel gzip baseline
  zstd              # zstd layers
  libarchive-tools  # bsdtar: independent tar reader
  attr              # getfattr/setfattr for xattr tests
  libcap2-bin       # getcap/setcap for security.capability tests
  openssl           # TLS certificates for registry tests
  gcc               # builds native/kiln-exec
  libc6-dev         # static libc for the helper (cc -static)
  util-linux        # unshare, nsenter, mount
  git               # git build contexts
  ca-certificates   # HTTPS to the npm registry and Debian archive
  xz-utils          # .tar.xz fixtures for ADD auto-extraction
  bzip2             # .tar.bz2 fixtures for ADD auto-extraction
  docker.io         # reference dockerd + /usr/bin/docker for the differential tests (test/differential)
  chromium          # headless browser that opens the HTML build report in tests
  debootstrap       # the Debian minbase stand-in image (test/support/base-images.ts)
  podman            # runs kiln's executor image as an unprivileged container (test/image)
  runc              # podman's runtime here (crun cannot start containers on these VMs)
  catatonit         # podman kube play's pause process
  findutils         # GNU find: the fast metadata walk for snapshots
)
MIN_NODE="20.19.0"

now_ms() { date +%s%3N; }
T0=$(now_ms)
step_start=$T0
step() { # step NAME — announce a step and start its clock
  printf '[install-deps] %s\n' "$1"
  step_start=$(now_ms)
}
step_done() {
  local t
  t=$(now_ms)
  printf '[install-deps]   done in %d.%03ds\n' $(((t - step_start) / 1000)) $(((t - step_start) % 1000))
}

# --- node ------------------------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "[install-deps] node and npm must be installed (Node.js >= $MIN_NODE)" >&2
  exit 1
fi
node_version=$(node -p 'process.versions.node')
if ! node -e '
  const v = (s) => s.split(".").reduce((acc, n) => acc * 1000 + Number(n), 0);
  process.exit(v(process.argv[1]) >= v(process.argv[2]) ? 0 : 1);
' "$node_version" "$MIN_NODE"; then
  echo "[install-deps] Node.js $node_version is too old: kiln needs >= $MIN_NODE" >&2
  exit 1
fi

# --- Debian packages -------------------------------------------------------------------------------------
step "checking Debian packages"
if [[ -n ${KILN_DEPS:-} ]]; then
  read -r -a wanted <<<"$KILN_DEPS" # a caller that needs only a few packages (e.g. scripts/demo.sh)
  wanted+=("$@")
else
  wanted=("${DEBIAN_PACKAGES[@]}" "$@")
fi
missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "[install-deps]   all ${#wanted[@]} packages present"
elif [[ $(id -u) -ne 0 ]]; then
  echo "[install-deps] missing Debian packages: ${missing[*]}" >&2
  echo "[install-deps] run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
else
  echo "[install-deps]   missing: ${missing[*]}"
  step "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  step_done
  step "apt-get install ${missing[*]}"
  # Do not let package scripts start system services (docker-registry would otherwise start a registry
  # on :5000 under systemd); tests start their own. Only installed when no policy exists already.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  if ((own_policy)); then rm -f "$policy"; fi
  if ((rc != 0)); then
    echo "[install-deps] apt-get install failed (exit $rc)" >&2
    exit "$rc"
  fi
fi
step_done

# --- npm -------------------------------------------------------------------------------------------------
step "checking node_modules"
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  step "npm ci"
  npm ci --no-audit --no-fund
else
  echo "[install-deps]   up to date"
fi
step_done

T1=$(now_ms)
printf '[install-deps] total %d.%03ds\n' $(((T1 - T0) / 1000)) $(((T1 - T0) % 1000))
