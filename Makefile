# rawws — the two commands that matter:  make serve   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: serve test lint venv clean bench bench-full

# The main job: the chat/notify server. History, offline inboxes and idempotency keys live
# in ./var/chat.db (SQLite, git-ignored): a restart or a crash loses nothing acknowledged
# (docs/chat.md, "Durability"). Standard library only: it runs with the system Python, no
# virtualenv needed. ARGS="--store memory" for the in-memory store.
serve:
	@mkdir -p var
	$(PY) -m rawws serve --store sqlite:var/chat.db $(ARGS)

# Dev tools live in a virtualenv the Makefile creates (idempotent; rebuilt when pyproject.toml changes).
# The editable install also builds the optional C accelerator in place when a compiler is there
# (setup.py: masking only, never required; RAWWS_PURE_PYTHON=1 leaves it out).
$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The whole suite, with the branch coverage of rawws/sansio printed (pyproject.toml,
# [tool.coverage]); below 95 % the run fails. With ARGS (a subset) the report is printed but
# not gated.
COVERAGE := --cov --cov-report=term $(if $(ARGS),,--cov-fail-under=95)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(COVERAGE) $(ARGS)

# The same suite with the C accelerator switched off at import: the pure-Python path is the
# reference, and CI runs both (.ci/run).
.PHONY: test-pure speedups
test-pure: $(STAMP)
	RAWWS_PURE_PYTHON=1 $(BIN)/python -m pytest -q $(ARGS)

# (Re)build the optional C accelerator in place (rawws/sansio/_speedups.c).
speedups: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -c 'import rawws.sansio.mask as m; print("accelerated masking:", m.ACCELERATED)'

lint: $(STAMP)
	$(BIN)/ruff check rawws tests conformance benchmarks
	$(BIN)/mypy --strict rawws

# Benchmarks (benchmarks/README.md): benchmark-only deps go in the `bench` extra, installed once
# into the same virtualenv (stamp file). `make bench` is the quick pass (< 5 min); bench-full is long.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --quick $(ARGS)

bench-full: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --full $(ARGS)

# The asgi scenario alone (FastAPI echo under uvicorn: rawws.asgi vs websockets-sansio vs wsproto,
# docs/asgi.md) into results-asgi.json, then RESULTS.md re-rendered with it (about 2 minutes).
.PHONY: bench-asgi
bench-asgi: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --full --scenarios asgi \
		--servers null,asgi-rawws,asgi-websockets-sansio,asgi-wsproto \
		--results benchmarks/results-asgi.json --markdown benchmarks/.results/RESULTS-asgi.md \
		--charts benchmarks/.results/charts-asgi $(ARGS)
	$(BIN)/python -m benchmarks.report

# Autobahn testsuite against rawws: server and client modes, and the server cases through uvicorn
# (rawws.asgi; conformance/README.md). Installs wstest first when
# missing (/opt/rawws-wstest). UNIMPLEMENTED (12.x/13.x) fails the gate once rawws ships
# permessage-deflate, detected by `import rawws.sansio.deflate`. Quick pass: ARGS="--cases 1.*".
.PHONY: conformance
conformance: $(STAMP)
	conformance/install_wstest.sh
	$(BIN)/python conformance/run.py --mode all \
		$$($(BIN)/python -c 'import rawws.sansio.deflate' 2>/dev/null && echo --require-deflate) $(ARGS)

# uvicorn's own WebSocket test module run against rawws.asgi.WebSocketProtocol (docs/asgi.md):
# downloads the installed uvicorn's source distribution once (.cache/), adds our class to its
# parametrisation, fails if any test that passes with uvicorn's wsproto class fails with ours.
.PHONY: test-uvicorn
test-uvicorn: $(STAMP)
	scripts/uvicorn_tests.sh $(ARGS)

# The Python 3 suite (rawws.conformance: Autobahn's cases without Python 2 or Docker), both modes,
# against rawws (conformance/README.md, "Python 3 suite"). conformance-py3 runs the CI subset
# (1.x-10.x whole, 12.x/13.x up to 32 KiB messages: ~3 min); conformance-py3-full all 517 cases
# (~12 min). ARGS=--compare also runs wstest on the same cases and lists every disagreement.
PY3_SUITE = $(BIN)/python conformance/run_py3.py --mode both \
	$$($(BIN)/python -c 'import rawws.sansio.deflate' 2>/dev/null && echo --require-deflate)
.PHONY: conformance-py3 conformance-py3-full
conformance-py3: $(STAMP)
	$(if $(findstring --compare,$(ARGS)),conformance/install_wstest.sh)
	$(PY3_SUITE) --subset ci $(ARGS)

conformance-py3-full: $(STAMP)
	$(if $(findstring --compare,$(ARGS)),conformance/install_wstest.sh)
	$(PY3_SUITE) --subset full $(ARGS)

# The Autobahn server cases through uvicorn only (rawws.asgi, agent rawws-asgi; make conformance
# runs them too). Quick pass: ARGS="--cases 1.*".
.PHONY: conformance-asgi
conformance-asgi: $(STAMP)
	conformance/install_wstest.sh
	$(BIN)/python conformance/run.py --mode asgi --require-deflate $(ARGS)

# Real-browser tests (tests/browser/, issue 7): Debian's Chromium (scripts/install_chromium.sh,
# idempotent) driven by playwright from the `browser` extra (stamp file). `make test` skips them
# when either is missing; here a missing piece fails them (RAWWS_BROWSER_TESTS=require).
BROWSER_STAMP := $(VENV)/.installed-browser

$(BROWSER_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,browser]'
	touch $(BROWSER_STAMP)

.PHONY: test-browser
test-browser: $(BROWSER_STAMP)
	scripts/install_chromium.sh
	RAWWS_BROWSER_TESTS=require $(BIN)/python -m pytest -q tests/browser $(ARGS)

# Redis tests (tests/cluster/, the Redis leg of the store suite: docs/scaling.md): Debian's
# redis-server (scripts/install_redis.sh, idempotent), each test its own process on a free port.
# `make test` runs them too and skips them with the reason when redis-server is missing; here
# (and in .ci/run) a missing piece fails them (RAWWS_REDIS_TESTS=require).
.PHONY: test-redis
test-redis: $(STAMP)
	scripts/install_redis.sh >/dev/null
	RAWWS_REDIS_TESTS=require $(BIN)/python -m pytest -q -m redis $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
