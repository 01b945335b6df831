#!/usr/bin/env bash
# Installs the Debian packages the gateway and its tests need, and only those that are missing.
# Quiet when everything is there, so it can run before every `npm test` and `npm start`.
set -euo pipefail

# Each entry is "debian-package:binary-it-provides"; a package counts as present when its binary is on PATH.
REQUIRED=(
  "redis-server:redis-server"   # the delivery queues (BullMQ) and their tests; brings redis-cli with it
  "xmlsec1:xmlsec1"             # independent XMLDSig implementation for interop tests
  "libxml2-utils:xmllint"       # XSD validation of SEOS messages
  "openssl:openssl"             # test and demo certificates
)

missing=()
for entry in "${REQUIRED[@]}"; do
  package="${entry%%:*}"
  binary="${entry#*:}"
  if ! command -v "$binary" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "ensure-system-deps: install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-system-deps: missing ${missing[*]}, and apt-get is not available to install them (not Debian?)" >&2
  exit 1
fi

echo "ensure-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists on a fresh machine may be empty or stale, so update once, and only because something is missing.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
