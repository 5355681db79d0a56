#!/usr/bin/env bash
# Installs the system components the tests drive for real: certbot,
# PostgreSQL (initdb/pg_ctl for throwaway clusters), Chromium (console
# browser tests), openssl and haproxy (its config check), softhsm2 and
# opensc (a PKCS#11 token and pkcs11-tool for the HSM test) and
# ruby-acme-client. Runs apt-get only as root and only for what
# is missing; otherwise the tests skip those parts with a clear message
# (or fail, under CI=true).
set -euo pipefail

missing=()
command -v certbot >/dev/null 2>&1 || missing+=(certbot)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
# certmint trust: the trust stores it drives, and the clients that check them.
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v keytool >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
# ca init --kms: a PKCS#11 token to test against, and pkcs11-tool to inspect it.
[ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
# Debian's Ruby ACME client, one more real client against certmint.
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
