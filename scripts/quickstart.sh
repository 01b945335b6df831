#!/usr/bin/env bash
# `npm start`: installs what is missing, makes demo certificates on the first run, makes sure Redis answers, and
# runs the gateway in the foreground (Ctrl-C stops it cleanly).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-system-deps.sh
bash scripts/ensure-node-deps.sh

data_dir="$PWD/data"
certs_dir="$data_dir/demo-certs"
mkdir -p "$data_dir"

# make-certs writes manifest.json last, so its presence means a complete earlier run.
if [ ! -f "$certs_dir/manifest.json" ]; then
  echo "quickstart: creating demo certificates in $certs_dir" >&2
  npx tsx certs/make-certs.ts --out ./data/demo-certs --demo
fi

# An operator who set REDIS_URL runs their own Redis; otherwise use the local one, starting it if nothing answers.
if [ -z "${REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "quickstart: starting a local redis-server on 127.0.0.1:6379 (keeps nothing on disk;" \
    "stop it with: redis-cli -p 6379 shutdown nosave)" >&2
  # Loopback only: a Redis without a password must not be reachable from the network.
  redis-server --daemonize yes --port 6379 --bind 127.0.0.1 --save '' --appendonly no --dir "$data_dir" \
    --pidfile "$data_dir/redis.pid" --logfile "$data_dir/redis.log"
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

# First run: a configuration for the demo municipality (Община Алфа, with its DEMO certificate), its data under
# ./data. Edit ./data/gateway.json (self, signing, registry, webhooks) to make it yours; it is not overwritten.
config="$data_dir/gateway.json"
if [ ! -f "$config" ]; then
  ./node_modules/.bin/tsx scripts/write-demo-config.ts "$certs_dir" "$config"
fi

cat >&2 <<BANNER

  ──────────────────────────────────────────────────────────────────────────────
   DEMO CERTIFICATES: $certs_dir
   They come from a made-up certification authority. They are NOT for production:
   no real administration trusts them. Use your qualified certificate for real work.
   (ДЕМОНСТРАЦИОННИ сертификати - не ги използвайте за реална работа.)
  ──────────────────────────────────────────────────────────────────────────────

BANNER

# tsx is called directly rather than through npx: npx does not pass SIGTERM on to the program, so `kill` of this
# script's process would leave the server running. tsx relays SIGINT/SIGTERM and the gateway shuts down cleanly.
exec ./node_modules/.bin/tsx src/cli/main.ts serve --config "$config"
