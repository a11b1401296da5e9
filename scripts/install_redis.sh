#!/usr/bin/env bash
# Install Debian's redis-server for the Redis tests (tests/cluster/, the Redis leg of the store
# suite), idempotently.
#
#   scripts/install_redis.sh      # prints the path of a working redis-server on its last line
#
# Nothing to do when redis-server (RAWWS_REDIS_SERVER, default: the one on PATH, else
# /usr/bin/redis-server) already answers --version. Otherwise `apt-get install -y redis-server`
# (after `apt-get update`; as root, or through sudo when it is there). The tests never use the
# system service: each starts its own redis-server on a free port of 127.0.0.1 in a temporary
# directory and stops it by PID. So the package's own service is stopped and disabled again
# right after an install when systemd runs it (it would hold port 6379 for nothing).
#
# Any failure stops the script with a message that says what to do; it never skips silently.
set -euo pipefail

find_server() {
    if [ -n "${RAWWS_REDIS_SERVER:-}" ]; then echo "$RAWWS_REDIS_SERVER"; return; fi
    command -v redis-server 2>/dev/null || echo /usr/bin/redis-server
}
SERVER=$(find_server)

die() {
    printf '\ninstall_redis: FAILED: %s\n' "$*" >&2
    printf 'install_redis: redis-server is NOT installed; the Redis tests cannot run.\n' >&2
    printf 'install_redis: install it by hand (Debian/Ubuntu: apt-get install -y redis-server)\n' >&2
    exit 1
}

works() { [ -x "$SERVER" ] && "$SERVER" --version >/dev/null 2>&1; }
version() { printf '== install_redis: %s\n' "$("$SERVER" --version 2>/dev/null)" >&2; }

if works; then
    version
    echo "$SERVER"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "$SERVER is missing and apt-get is not available"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    die "$SERVER is missing and installing it needs root (or password-less sudo)"
fi

printf '== install_redis: apt-get update\n' >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
    || die "apt-get update failed"
printf '== install_redis: apt-get install -y redis-server\n' >&2
# policy-rc.d 101: "do not start services" for the install (containers without systemd would
# otherwise fail the package's postinst, and on machines with systemd nothing should listen).
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=
if [ ! -e "$POLICY" ] && [ "$(id -u)" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY" && chmod +x "$POLICY" && ADDED_POLICY=1
fi
status=0
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    redis-server >&2 || status=$?
[ -n "$ADDED_POLICY" ] && rm -f "$POLICY"
[ "$status" -eq 0 ] || die "apt-get install -y redis-server failed"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    "${SUDO[@]}" systemctl disable --now redis-server >&2 || true
fi

SERVER=$(find_server)
[ -x "$SERVER" ] || die "apt-get installed redis-server but $SERVER does not exist"
works || die "$SERVER --version failed after the install"
version
echo "$SERVER"
