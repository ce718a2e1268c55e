#!/usr/bin/env bash
# The whole test suite: typecheck, then every test file with node's test runner.
# Network-namespace tests need root and iproute2; UI tests need /usr/bin/chromium
# (.ci/run installs both on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install tsc -p tsconfig.json --noEmit
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx --import ./node/src/polyfill.ts --test --test-concurrency=1 --test-timeout=300000 "$@" "${files[@]}"
