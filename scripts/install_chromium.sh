#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser/), idempotently.
#
#   scripts/install_chromium.sh      # prints the path of a working chromium on its last line
#
# Nothing to do when /usr/bin/chromium already answers --version. Otherwise
# `apt-get install -y chromium` (after `apt-get update`; as root, or through sudo when it is there).
# A browser downloaded by a test tool (`playwright install`) does not work on these machines:
# the tests drive this system Chromium (../shared/notes/browser-tests.md).
#
# Any failure stops the script with a message that says what to do; it never skips silently.
set -euo pipefail

CHROMIUM=${RAWWS_CHROMIUM:-/usr/bin/chromium}

die() {
    printf '\ninstall_chromium: FAILED: %s\n' "$*" >&2
    printf 'install_chromium: Chromium is NOT installed; the browser tests cannot run.\n' >&2
    printf 'install_chromium: install it by hand (Debian/Ubuntu: apt-get install -y chromium)\n' >&2
    exit 1
}

works() { "$CHROMIUM" --version >/dev/null 2>&1; }

# Debian's launcher script prints a harmless shell warning on stderr: keep only the version.
version() { printf '== install_chromium: %s\n' "$("$CHROMIUM" --version 2>/dev/null)" >&2; }

if [ -x "$CHROMIUM" ] && works; then
    version
    echo "$CHROMIUM"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and apt-get is not available"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    die "$CHROMIUM is missing and installing it needs root (or password-less sudo)"
fi

printf '== install_chromium: apt-get update\n' >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
    || die "apt-get update failed"
printf '== install_chromium: apt-get install -y chromium\n' >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium >&2 || die "apt-get install -y chromium failed"

[ -x "$CHROMIUM" ] || die "apt-get installed chromium but $CHROMIUM does not exist"
works || die "$CHROMIUM --version failed after the install"
version
echo "$CHROMIUM"
