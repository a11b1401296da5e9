"""websockets' names exist in rawws, at the same import paths, with the same class relations.

websockets 17 (a dev dependency) is the reference: every name in its modules' ``__all__`` that
docs/websockets-compat.md marks supported must import from the matching rawws module, and the
exception tree must keep websockets' subclass relations, so that ``except`` clauses written for
websockets catch the same errors.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import websockets
import websockets.exceptions

import rawws
import rawws.exceptions
from rawws.frames import Close, CloseCode, Opcode

#: websockets module -> rawws module, and the names deliberately absent (see the compat doc).
MODULES = {
    "websockets.exceptions": ("rawws.exceptions", set()),
    "websockets.frames": ("rawws.frames", set()),
    "websockets.datastructures": ("rawws.datastructures", set()),
    "websockets.http11": ("rawws.http11", set()),
    "websockets.asyncio.server": ("rawws.asyncio.server", set()),
    "websockets.asyncio.client": ("rawws.asyncio.client", set()),
    "websockets.sync.server": ("rawws.sync.server", set()),
    "websockets.sync.client": ("rawws.sync.client", set()),
    "websockets.sync.connection": ("rawws.sync.connection", set()),
}


@pytest.mark.parametrize("theirs", sorted(MODULES))
def test_every_name_of_the_module_exists(theirs: str) -> None:
    ours, absent = MODULES[theirs]
    their_module = importlib.import_module(theirs)
    our_module = importlib.import_module(ours)
    missing = [name for name in their_module.__all__
               if name not in absent and not hasattr(our_module, name)]
    assert missing == []


def _exception_names() -> list[str]:
    return [name for name in websockets.exceptions.__all__
            if inspect.isclass(getattr(websockets.exceptions, name))]


@pytest.mark.parametrize("name", _exception_names())
def test_exception_tree_keeps_websockets_relations(name: str) -> None:
    theirs = getattr(websockets.exceptions, name)
    ours = getattr(rawws.exceptions, name)
    for other in _exception_names():
        their_other = getattr(websockets.exceptions, other)
        if issubclass(theirs, their_other):
            assert issubclass(ours, getattr(rawws.exceptions, other)), (name, other)
    for builtin in (LookupError, RuntimeError, AssertionError):
        if issubclass(theirs, builtin):
            assert issubclass(ours, builtin), (name, builtin)
    assert issubclass(ours, rawws.WebSocketException)


def test_the_names_are_the_same_objects_everywhere() -> None:
    assert rawws.WebSocketException is rawws.RawwsError is rawws.exceptions.WebSocketException
    assert rawws.exceptions.InvalidStatus is rawws.InvalidStatus is rawws.errors.InvalidStatus
    from rawws.asyncio.client import connect
    from rawws.asyncio.server import serve
    assert (serve, connect) == (rawws.serve, rawws.connect)


def test_top_level_names() -> None:
    wanted = ["serve", "connect", "broadcast", "ConnectionClosed", "ConnectionClosedOK",
              "ConnectionClosedError", "InvalidHandshake", "InvalidStatus", "InvalidURI",
              "InvalidMessage", "WebSocketException", "State", "Headers", "Close", "CloseCode",
              "Opcode", "Request", "Response", "ServerConnection", "ClientConnection",
              "Server", "ConcurrencyError", "InvalidState", "PayloadTooBig", "ProtocolError"]
    assert [name for name in wanted if name not in rawws.__all__] == []
    for name in wanted:
        assert name in websockets.__all__, name  # the list above is websockets' too


def test_enum_names_of_websockets_are_aliases() -> None:
    assert Opcode.CONT is Opcode.CONTINUATION and Opcode.CONT == websockets.frames.Opcode.CONT
    assert CloseCode.INVALID_DATA is CloseCode.INVALID_FRAME_PAYLOAD_DATA
    for member in websockets.frames.Opcode:
        assert Opcode[member.name] == member.value
    for member in websockets.frames.CloseCode:
        assert CloseCode[member.name] == member.value
    for member in websockets.State:
        assert rawws.State[member.name] == member.value


def test_close_values() -> None:
    close = Close(1000, "bye")
    assert (close.code, close.reason) == (1000, "bye")
    assert str(close) == "1000 (normal closure) bye"
    assert str(Close(4001, "")) == "4001 (private use)"
    assert str(Close(3000)) == "3000 (registered)"
    assert Close.parse(close.serialize()) == close
    assert close.serialize() == websockets.frames.Close(1000, "bye").serialize()


def test_connection_closed_carries_the_close_frames() -> None:
    exc = rawws.ConnectionClosedOK(Close(1000, "bye"), Close(1000, "bye"), True)
    assert (exc.rcvd.code, exc.rcvd.reason, exc.sent.code) == (1000, "bye", 1000)  # type: ignore[union-attr]
    assert (exc.code, exc.reason, exc.sent_code) == (1000, "bye", 1000)
    assert str(exc) == "received 1000 (normal closure) bye; then sent 1000 (normal closure) bye"
    lost = rawws.ConnectionClosedError(None, None)
    assert (lost.code, lost.reason, lost.sent_code) == (1006, "", None)
    assert str(lost) == "no close frame received or sent"
    sent_only = rawws.ConnectionClosedError(None, Close(1011, "oops"))
    assert str(sent_only) == "sent 1011 (internal error) oops; no close frame received"


def test_invalid_status_and_uri() -> None:
    response = rawws.Response(403, rawws.Headers(), b"go away\n")
    exc = rawws.InvalidStatus(response)
    assert exc.response is response and exc.response.status_code == 403
    assert (exc.status_code, exc.body) == (403, b"go away\n")
    assert str(exc) == "server rejected WebSocket connection: HTTP 403 Forbidden"
    with pytest.raises(rawws.InvalidURI) as info:
        rawws.connect("http://example.com/")
    assert info.value.uri == "http://example.com/"
    assert str(info.value) == "http://example.com/ isn't a valid URI: scheme isn't ws or wss"


def test_headers_mapping_methods() -> None:
    headers = rawws.Headers({"X-A": "1"}, Upgrade="websocket")
    headers["x-a"] = "2"
    assert headers.get_all("X-A") == ["1", "2"]
    with pytest.raises(rawws.MultipleValuesError):
        headers["X-A"]
    with pytest.raises(LookupError):
        headers["x-a"]
    assert list(headers.raw_items()) == [("X-A", "1"), ("Upgrade", "websocket"), ("x-a", "2")]
    assert headers.keys() == ["x-a", "upgrade"]
    assert headers.setdefault("upgrade", "other") == "websocket"
    headers.update({"B": "3"}, C="4")
    assert (headers["b"], headers["c"]) == ("3", "4")
    headers.clear()
    assert len(headers) == 0


def test_http11_constructors_follow_websockets() -> None:
    from rawws.http11 import Request, Response
    response = Response(200, "OK", rawws.Headers([("X", "1")]), b"body")
    assert isinstance(response, rawws.Response)
    assert (response.status_code, response.reason_phrase, response.body) == (200, "OK", b"body")
    request = Request("/chat?token=abc", rawws.Headers([("Host", "x")]))
    assert isinstance(request, rawws.Request)
    assert (request.path, request.method, request.query) == ("/chat?token=abc", "GET",
                                                             {"token": "abc"})


#: websockets' top-level names that rawws does not have, each explained in the compat doc.
NOT_AT_TOP_LEVEL = {"route", "unix_route", "Router", "Protocol", "ClientProtocol",
                    "ServerProtocol"}
DOC = Path(__file__).resolve().parents[2] / "docs" / "websockets-compat.md"


def test_every_top_level_name_exists_or_is_explained() -> None:
    missing = [name for name in websockets.__all__
               if name not in NOT_AT_TOP_LEVEL and not hasattr(rawws, name)]
    assert missing == []
    assert not any(hasattr(rawws, name) for name in NOT_AT_TOP_LEVEL)


@pytest.mark.parametrize("module", ["websockets", *sorted(MODULES)])
def test_the_compat_doc_has_a_row_for_every_name(module: str) -> None:
    """docs/websockets-compat.md: one row per public name, with its status."""
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ")]
    for name in importlib.import_module(module).__all__:
        row = next((r for r in rows if f"`{name}`" in r.split("|")[1]), None)
        assert row is not None, f"{module}.{name} has no row"
        assert row.split("|")[2].strip() in ("supported", "differs", "not supported"), row
