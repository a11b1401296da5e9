#!/usr/bin/env bash
# Install the Autobahn testsuite's `wstest` command, idempotently, outside the repository.
#
#   conformance/install_wstest.sh          # prints the path of a working wstest on its last line
#
# Where it goes: $RAWWS_WSTEST_HOME (default /opt/rawws-wstest), so that a clean clone on the same
# machine (CI) reuses an existing install. Layout:
#   $RAWWS_WSTEST_HOME/bin/wstest   the command run.py uses (a symlink into the virtualenv, or a
#                                   wrapper that runs the Docker image)
#   $RAWWS_WSTEST_HOME/venv/        a python2.7 virtualenv holding autobahntestsuite==25.10.1
#   $RAWWS_WSTEST_HOME/wheels/      the bootstrap wheels (pip, setuptools, wheel, virtualenv)
#
# Routes, in order of preference:
#   1. an existing $RAWWS_WSTEST_HOME/bin/wstest that answers `--help`: nothing to do;
#   2. a running Docker engine (`docker info` succeeds): pull $RAWWS_WSTEST_IMAGE and write a wrapper;
#   3. native (verified on Debian 12, see ../shared/notes/autobahn-without-docker.md): python2.7 from
#      Debian bullseye (a temporary apt source with the URIs / Signed-By of the existing
#      debian.sources, removed afterwards), then pip 20.3.4 + virtualenv 16.7.12 bootstrapped from
#      PyPI wheels, then `pip install autobahntestsuite==25.10.1` (compiles Twisted; ~3 minutes).
#
# Any failure stops the script with a message saying which step failed; it never skips silently.
set -euo pipefail

WSTEST_HOME=${RAWWS_WSTEST_HOME:-/opt/rawws-wstest}
WSTEST_VERSION=25.10.1
IMAGE=${RAWWS_WSTEST_IMAGE:-crossbario/autobahn-testsuite}
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
TMP_SOURCE=/etc/apt/sources.list.d/rawws-wstest-bullseye.sources
PY27=/usr/bin/python2.7   # explicit: a pyenv shim named python2.7 may sit earlier on PATH
WSTEST=$WSTEST_HOME/bin/wstest

step() { printf '== install_wstest: %s\n' "$*" >&2; }
die() {
    printf '\ninstall_wstest: FAILED: %s\n' "$*" >&2
    printf 'install_wstest: wstest is NOT installed; the conformance run cannot proceed.\n' >&2
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

# pip reads the machine's pip.conf; drop its warnings about absent local mirror directories.
pip_quiet() { "$@" 2>&1 | { grep -v 'is neither a file nor a directory' || true; } >&2; }

wstest_works() { [ -x "$WSTEST" ] && "$WSTEST" --help >/dev/null 2>&1; }

if wstest_works; then
    step "already installed: $WSTEST"
    echo "$WSTEST"
    exit 0
fi

mkdir -p "$WSTEST_HOME/bin"

# --- Route 2: Docker, only when an engine actually answers (a client alone is not enough). ---
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    step "Docker engine found: pulling $IMAGE"
    docker pull "$IMAGE" || die "docker pull $IMAGE failed"
    # The wrapper mounts the current directory at the same path, so relative spec and outdir paths
    # (run.py runs wstest from the repository root) resolve identically inside the container, and
    # shares the host network so that 127.0.0.1 means the host on both sides.
    cat >"$WSTEST.tmp" <<EOF
#!/bin/sh
# wstest via Docker (written by rawws conformance/install_wstest.sh)
exec docker run --rm -i --init --network host -u "\$(id -u):\$(id -g)" \\
    -v "\$PWD:\$PWD" -w "\$PWD" ${IMAGE} wstest "\$@"
EOF
    chmod +x "$WSTEST.tmp"
    mv "$WSTEST.tmp" "$WSTEST"
    wstest_works || die "the Docker wrapper $WSTEST does not run (docker run $IMAGE wstest --help)"
    step "wstest runs in Docker image $IMAGE"
    echo "$WSTEST"
    exit 0
fi

# --- Route 3: native python2.7 from Debian bullseye. ---
[ "$(id -u)" = 0 ] || die "the native route installs Debian packages: run as root (or start a Docker engine)"
command -v apt-get >/dev/null || die "no apt-get: the native route needs Debian (or start a Docker engine)"
command -v gcc >/dev/null || die "gcc is required to compile Twisted for python2.7 (apt-get install gcc)"

if ! [ -x "$PY27" ] || ! [ -e /usr/include/python2.7/Python.h ]; then
    [ -r "$DEBIAN_SOURCES" ] || die "$DEBIAN_SOURCES not found: cannot derive the bullseye apt source"
    # First deb822 stanza whose URIs are the main archive (not -security): take URIs and Signed-By.
    read -r uris signed_by < <(awk '
        BEGIN { RS = ""; FS = "\n" }
        {
            u = ""; s = ""
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/)      { u = $i; sub(/^URIs:[ \t]*/, "", u) }
                if ($i ~ /^Signed-By:/) { s = $i; sub(/^Signed-By:[ \t]*/, "", s) }
            }
            if (u != "" && u !~ /security/) { print u, s; exit }
        }' "$DEBIAN_SOURCES") || true
    [ -n "${uris:-}" ] || die "no main-archive URIs found in $DEBIAN_SOURCES"
    step "temporary apt source: bullseye from $uris (Signed-By: ${signed_by:-none})"
    # Remove the temporary source whatever happens, so nothing else is ever pulled from bullseye.
    trap 'rm -f "$TMP_SOURCE"' EXIT
    {
        echo "Types: deb"
        echo "URIs: $uris"
        echo "Suites: bullseye"
        echo "Components: main"
        [ -n "${signed_by:-}" ] && echo "Signed-By: $signed_by"
    } >"$TMP_SOURCE"
    apt-get update -q || die "apt-get update (with the bullseye source) failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bullseye python2.7 python2.7-dev \
        || die "apt-get install -t bullseye python2.7 python2.7-dev failed"
    rm -f "$TMP_SOURCE"
    trap - EXIT
    step "temporary apt source removed"
fi
[ -x "$PY27" ] || die "$PY27 missing after the apt install"

if ! [ -x "$WSTEST_HOME/venv/bin/python" ]; then
    step "bootstrapping pip and virtualenv for python2.7 from PyPI wheels"
    wheels=$WSTEST_HOME/wheels
    mkdir -p "$wheels"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 2.7 --platform any \
        pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 virtualenv==16.7.12 -d "$wheels" \
        || die "pip download of the python2.7 bootstrap wheels failed"
    rm -rf "$WSTEST_HOME/bootstrap"
    pip_quiet "$PY27" "$wheels/pip-20.3.4-py2.py3-none-any.whl/pip" install -q --no-index \
        --find-links "$wheels" --target "$WSTEST_HOME/bootstrap" virtualenv==16.7.12 \
        || die "installing virtualenv for python2.7 failed"
    rm -rf "$WSTEST_HOME/venv"
    PYTHONPATH=$WSTEST_HOME/bootstrap "$PY27" -m virtualenv -q --no-download \
        --extra-search-dir "$wheels" "$WSTEST_HOME/venv" \
        || die "creating the python2.7 virtualenv at $WSTEST_HOME/venv failed"
    pip_quiet "$WSTEST_HOME/venv/bin/python" -m pip install -q --no-index --find-links "$wheels" \
        pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 \
        || die "upgrading pip in the virtualenv failed"
fi

step "pip install autobahntestsuite==$WSTEST_VERSION (compiles Twisted; a few minutes)"
pip_quiet "$WSTEST_HOME/venv/bin/python" -m pip install -q "autobahntestsuite==$WSTEST_VERSION" \
    || die "pip install autobahntestsuite==$WSTEST_VERSION failed"
[ -x "$WSTEST_HOME/venv/bin/wstest" ] || die "no wstest in $WSTEST_HOME/venv/bin after the install"
ln -sfn "$WSTEST_HOME/venv/bin/wstest" "$WSTEST"
wstest_works || die "$WSTEST --help does not run"
step "installed autobahntestsuite $WSTEST_VERSION (native python2.7)"
echo "$WSTEST"
