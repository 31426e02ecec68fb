#!/usr/bin/env bash
# The docker driver tests (test/docker) against real dockerds, as CI runs them.
#
#   bash scripts/docker/driver-test.sh [VITEST ARGS...]
#
# Starts the private dockerd once (scripts/docker/dockerd.sh; reused when it already
# runs) so that the test files share it and its images, builds baton, runs
# `vitest run test/docker` with BATON_DOCKER_TESTS=1, and stops the daemon again if
# this script started it, also on failure. The two-engine test starts and stops its
# own second daemon (/run/baton-ci-e2). Needs root. Takes about 1.5 minutes.
set -euo pipefail

cd "$(dirname "$0")/../.."
HERE=scripts/docker
STARTED=0

cleanup () {
  local rc=$?
  if [[ $STARTED -eq 1 ]]; then bash "$HERE/dockerd.sh" stop || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || { echo "driver-test: needs root (it runs dockerd)" >&2; exit 1; }
if ! bash "$HERE/dockerd.sh" status 2>/dev/null; then STARTED=1; fi
eval "$(bash "$HERE/dockerd.sh" start)"
export DOCKER_HOST

npx tsc -p tsconfig.json
BATON_DOCKER_TESTS=1 npx vitest run test/docker "$@"
