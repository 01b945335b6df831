#!/usr/bin/env bash
# `npm test`: installs what is missing, type-checks, then runs the whole vitest suite.
# Extra arguments go to vitest: `npm test -- test/config.test.ts`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-system-deps.sh
bash scripts/ensure-node-deps.sh

echo "── type check (tsc --noEmit)"
npx tsc --noEmit

echo "── tests (vitest)"
npx vitest run "$@"
