#!/usr/bin/env bash
# kiln benchmarks (issue #12): kiln against buildah, docker classic and BuildKit in one run.
#
#   bash bench/run.sh            # full run (~20-30 min): warm-up + 3 runs (heavy workloads: 2)
#   bash bench/run.sh --quick    # smoke test: 1 run of a few workloads
#   bash bench/run.sh --only busybox-run-copy,pull --builders buildah-overlay,docker-buildkit
#
# Needs root (buildah chroot isolation, dockerd, kiln's chroot back-end). Installs the peers it needs
# (buildah, docker.io, runc) through scripts/install-deps.sh, builds kiln, then runs bench/run.ts, which
# writes bench/results/latest.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh buildah docker.io runc debootstrap
npm run build --silent
exec npx tsx bench/run.ts "$@"
