#!/bin/sh
# Writes the two secrets docker-compose.yml hands to Postgres and certmint,
# each a random line, unless they exist: the Postgres volume keeps the
# first password and the CA keys stay encrypted under the first
# passphrase, so a secret is never replaced here.
#
# The directory is 0700 (only you reach the files on this machine); the
# files are 0644 because compose mounts a file secret as it is, and
# certmint runs as a non-root user in its container.
set -eu
dir="$(dirname "$0")/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
for name in pg-password ca-passphrase; do
	file="$dir/$name"
	if [ -s "$file" ]; then
		echo "$file exists; kept"
		continue
	fi
	# 32 random bytes, hex: no character a URL or a shell would mangle.
	od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$file.tmp"
	echo >> "$file.tmp"
	chmod 0644 "$file.tmp"
	mv "$file.tmp" "$file"
	echo "$file written"
done
