#!/usr/bin/env bash
# The whole test suite: typecheck, then every test file with node's test runner.
# Network-namespace tests need root, iproute2 and iptables; UI tests need
# /usr/bin/chromium: system-deps.sh installs what is missing (as root, apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
npx --no-install tsc -p tsconfig.json --noEmit
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx --import ./node/src/polyfill.ts --test --test-concurrency=1 --test-timeout=300000 "$@" "${files[@]}"
