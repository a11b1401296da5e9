#!/usr/bin/env bash
# Run uvicorn's own WebSocket test module (tests/protocols/test_websocket.py of uvicorn's source
# distribution) against rawws.asgi.WebSocketProtocol, beside uvicorn's wsproto and
# websockets-sansio classes. Nothing of uvicorn's is kept in the repository: the source
# distribution of the *installed* uvicorn version is downloaded from PyPI once, unpacked into a
# cache directory, and our plugin (scripts/uvicorn_tests/conftest.py) is copied next to the
# module. Extra arguments go to pytest (e.g. -k rawws, -x).
#
#   scripts/uvicorn_tests.sh            # make test-uvicorn
#   PY=python3 scripts/uvicorn_tests.sh -k 'rawws and keepalive'
#
# The plugin prints outcomes per class and fails the run if any test passes with wsproto but
# not with rawws (the documented differences, docs/asgi.md, are strict xfails).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
CACHE="${RAWWS_UVICORN_CACHE:-$ROOT/.cache/uvicorn-tests}"

VERSION="$("$PY" -c 'import uvicorn; print(uvicorn.__version__)')"
DIR="$CACHE/uvicorn-$VERSION"

if [ ! -f "$DIR/tests/protocols/test_websocket.py" ]; then
    mkdir -p "$CACHE"
    TMP="$(mktemp -d "$CACHE/download.XXXXXX")"
    trap 'rm -rf "$TMP"' EXIT
    "$PY" -m pip download --quiet --no-binary :all: --no-deps "uvicorn==$VERSION" -d "$TMP"
    tar -xzf "$TMP/uvicorn-$VERSION.tar.gz" -C "$TMP"
    # The installed uvicorn is the one under test: drop the sdist's copy of the package so the
    # tests cannot import it from the unpacked tree.
    rm -rf "$TMP/uvicorn-$VERSION/uvicorn"
    if [ -e "$TMP/uvicorn-$VERSION/tests/protocols/conftest.py" ]; then
        echo "uvicorn $VERSION ships tests/protocols/conftest.py: the rawws plugin would" \
             "replace it; update scripts/uvicorn_tests.sh" >&2
        exit 2
    fi
    rm -rf "$DIR"
    mv "$TMP/uvicorn-$VERSION" "$DIR"
fi

cp "$ROOT/scripts/uvicorn_tests/conftest.py" "$DIR/tests/protocols/conftest.py"
cd "$DIR"
# uvicorn's own pytest settings (warnings are errors, strict markers), without its -n 8.
exec "$PY" -m pytest tests/protocols/test_websocket.py -p no:cacheprovider \
    -o addopts="-rfE --strict-config --strict-markers" "$@"
