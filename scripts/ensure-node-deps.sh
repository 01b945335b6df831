#!/usr/bin/env bash
# Installs node_modules with `npm ci` when they are missing or older than package-lock.json; otherwise does nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "ensure-node-deps: Node.js is not installed; the gateway needs Node 20 or newer" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "ensure-node-deps: Node $(node --version) is too old; the gateway needs Node 20 or newer" >&2
  exit 1
fi

# npm writes node_modules/.package-lock.json on every install: when the lock file is newer, dependencies changed.
if [ -d node_modules ] && [ -f node_modules/.package-lock.json ] \
  && ! [ package-lock.json -nt node_modules/.package-lock.json ]; then
  exit 0
fi

# better-sqlite3 has no prebuilt binary that can be downloaded here, so node-gyp compiles it (~75 s) against the
# Node headers Debian ships in /usr/include/node instead of downloading a header tarball.
if [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

echo "ensure-node-deps: installing node_modules with npm ci (compiles better-sqlite3, about a minute and a half)" >&2
npm ci --no-audit --no-fund
