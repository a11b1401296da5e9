"""A Python 3 implementation of the Autobahn WebSocket testsuite's fuzzing modes (1.x-13.x).

    python -m rawws.conformance fuzzingclient --url ws://127.0.0.1:9001 --outdir reports/server
    python -m rawws.conformance fuzzingserver --port 9001 --outdir reports/client
    python -m rawws.conformance list --cases '6.4.*'

``fuzzingclient`` tests a WebSocket *server*: one connection per case, the fuzzer is the client.
``fuzzingserver`` tests *clients*: it listens, and a driver runs each case with the client under
test (wstest's endpoints, so existing Autobahn drivers work unchanged). Both write wstest's
report layout (``index.json``, a JSON and an HTML file per case, ``index.html``).

Same case ids, same steps and the same verdict rules as the testsuite (autobahntestsuite
25.10.1); standard library only, no Python 2, no Docker. ``docs/conformance.md`` has the
details and the differences; ``conformance/README.md`` the comparison with wstest, case by case.

Modules: :mod:`.endpoint` (the fuzzer's end of a connection), :mod:`.opening` (its opening
handshake, both sides), :mod:`.records` (what reports are made of), :mod:`.case` (verdict rules),
:mod:`.cases` (the catalogue, one module per family), :mod:`.pmce` (permessage-deflate),
:mod:`.runner` (running cases, the fuzzing server), :mod:`.report` (reports). Frames are built
and decoded by :mod:`rawws.tools.wire`, like ``rawws craft``'s.
"""
