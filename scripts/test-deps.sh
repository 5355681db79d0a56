#!/usr/bin/env bash
# Installs the system components the tests drive for real: certbot,
# PostgreSQL (initdb/pg_ctl for throwaway clusters), Chromium (console
# browser tests), openssl, haproxy (its config check) and ruby-acme-client. Runs apt-get only as root and only for what
# is missing; otherwise the tests skip those parts with a clear message
# (or fail, under CI=true).
set -euo pipefail

missing=()
command -v certbot >/dev/null 2>&1 || missing+=(certbot)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
ruby -e 'require "acme/client"' >/dev/null 2>&1 || missing+=(ruby-acme-client)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: missing ${missing[*]}; not root, so the tests that need them will skip (or fail under CI=true)" >&2
  exit 0
fi
echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
