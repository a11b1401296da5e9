"""The HTTP side of the chat server: the JSON API, ``/healthz``, ``/metrics`` and static files.

Owns: routing plain HTTP requests (``rawws.serve(http_handler=...)`` hands them over), the API
key check, request body validation, and the exact status of every failure. Deliveries go
through the router (so an API notification follows the same path as a WebSocket one) and the
``deliver`` callable (the hub's executor).

Does not own: WebSocket upgrades (the hub), body size before the handler runs (rawws answers
413 above ``max_body_size`` itself; this module checks again for direct callers).

Status rules, checked in this order, each with a JSON body ``{"error": ..., "message": ...}``:

0. 429 (with ``Retry-After``): a request under ``/api/`` from a client address (an IPv6 /64
   counts as one address) over its token bucket (``http_rate`` per second, ``http_burst`` at
   once). First, so that guessing the API key is rate limited too. Callers that pass no
   ``client`` (in-process) are not limited.
1. 404: no such path. 2. 405 (with ``Allow``): the path exists, the method does not.
3. Who calls (:meth:`HttpApi._caller`), for ``/api/*``:

   * auth off (no JWT secret, no tokens), no API key: anyone, as the operator (local use);
   * an API key is set: ``Authorization: Bearer KEY`` is the operator (compared with
     :func:`hmac.compare_digest`); with auth on, ``Bearer <user token>`` is that user, limited
     by the token's grants (below); no ``Authorization``: 401 (with ``WWW-Authenticate:
     Bearer``); a wrong key or a refused token: 403;
   * auth on and no API key: 401 for every request (the API is closed), unless the operator
     passed ``open_api`` (``--open-api``): then anyone is the operator.

   With auth on, nothing in a body names the acting user: a room message posted by the
   operator comes from ``api``, one posted with a user token from that token's user, and a
   ``user_id`` naming anyone else is 403. A user token may post to, read, and list only the
   rooms its ``rooms`` claim lets it join, publish only where its ``publish`` claim (and
   ``client_publish``) allow, and may not notify or broadcast (403).
4. 413: body over ``max_body_size``, or the content inside it over ``max_content_size``.
5. 400: empty body, not UTF-8, not strict JSON, nested too deep, or a field or name invalid.
6. 503: a room cannot be created (``max_rooms`` rooms, all with members).

An unexpected exception is our bug: it is logged with its traceback and answered with a bare
500; the client never sees a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import math
import mimetypes
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, Protocol

import rawws
from rawws.redact import redact_target

from .auth import AuthError, Identity
from .idempotency import valid_key
from .limits import BucketTable, Limits
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .router import HTTP_SCOPE, Action, Answer, Router
from .topics import split_topic
from .wire import (
    ErrorCode,
    WireError,
    bearer_token,
    decode_json,
    encode,
    is_valid_room,
    is_valid_user,
)

__all__ = ["COMMON_HEADERS", "OPERATOR", "HttpApi", "client_key", "json_response"]

_logger = logging.getLogger("rawws.chat.http")

MAX_STATIC_SIZE: Final = 4 * 1024 * 1024
_STATIC_SEGMENT: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_HOST: Final = re.compile(
    r"[A-Za-z0-9.\-]{1,253}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")
_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
    ".woff2": "font/woff2",
}
#: On every response of the chat server (issue 11 item 14): no content sniffing, no caching
#: (API answers, history, metrics and the page all reflect live state or credentials).
COMMON_HEADERS: Final = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))

INDEX_FALLBACK: Final = b"""rawws chat server

WebSocket endpoints: /ws  /ws/chat/{room}  /ws/notifications
HTTP API: POST /api/notify/{user_id}, /api/broadcast, /api/publish/{topic},
          /api/rooms/{room}/messages; GET /api/rooms, /api/rooms/{room}, /api/users/online
Health and metrics: /healthz  /metrics
Protocol reference: docs/chat-protocol.md
"""


#: The caller holding the API key (or anyone, where the API is open): the server's operator.
#: Room messages it posts come from ``api`` unless auth is off and the body names a user.
OPERATOR: Final = Identity("api")


def _is_api(target: str) -> bool:
    path = target.partition("?")[0]
    return path == "/api" or path.startswith("/api/")


def client_key(address: str) -> str:
    """The rate-limit key of a client address: the address itself, except that an IPv6 client
    counts by its /64 (one host usually holds a whole /64) and an IPv4-mapped IPv6 address is
    its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class HeaderLookup(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


class _Fail(Exception):
    def __init__(self, status: int, error: str, message: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


def json_response(status: int, value: Any,
                  headers: tuple[tuple[str, str], ...] = ()) -> rawws.Response:
    """A JSON answer with :data:`COMMON_HEADERS`."""
    return rawws.Response(status, rawws.Headers([
        ("Content-Type", "application/json"), *COMMON_HEADERS,
        *headers]), encode(value).encode("utf-8"))


_STATUS: Final = {ErrorCode.UNAVAILABLE: 503, ErrorCode.CONFLICT: 422,
                  ErrorCode.FORBIDDEN: 403, ErrorCode.BAD_REQUEST: 400}


def _from_answer(answer: Answer) -> rawws.Response:
    if answer.error is not None:
        code, message = answer.error
        status = _STATUS.get(code, 400)
        headers = (("Retry-After", "5"),) if status == 503 else ()
        return json_response(status, {"error": code.value, "message": message}, headers)
    assert answer.body is not None, "the router answered nothing"
    replayed = (("Idempotent-Replayed", "true"),) if answer.replayed else ()
    return json_response(200, answer.body, replayed)


def _at_once(callback: Callable[[], object]) -> None:
    callback()


def _idempotency_key(headers: HeaderLookup) -> str | None:
    """The ``Idempotency-Key`` request header (draft-ietf-httpapi-idempotency-key-header),
    checked like the WebSocket ``idempotency_key``."""
    key = headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if key.startswith('"') and key.endswith('"') and len(key) > 1:
        key = key[1:-1]  # the draft writes it as a quoted string: both forms are accepted
    if not valid_key(key):
        raise _Fail(400, "bad_request", "Idempotency-Key must be 1-255 visible ASCII "
                    "characters")
    return key


def _scope(caller: Identity) -> str:
    """Whose idempotency keys: the operator's (``http``), or a token holder's own (shared
    with its WebSocket requests)."""
    return HTTP_SCOPE if caller is OPERATOR else f"user:{caller.user}"


class HttpApi:
    """Answers plain HTTP requests. One per server."""

    def __init__(
        self,
        router: Router,
        *,
        deliver: Callable[[list[Action]], None],
        after: Callable[[Callable[[], object]], None] | None = None,
        health: Callable[[], str | None] | None = None,
        api_key: str | None = None,
        open_api: bool = False,
        static_dir: Path | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self.router = router
        self.deliver = deliver
        #: Runs a callback once the actions delivered so far are carried out (the hub's
        #: when_released): a request whose write is not durable yet is answered then.
        self.after: Callable[[Callable[[], object]], None] = after or _at_once
        #: Why the server is degraded (None: it is not): /healthz answers 503 with it.
        self.health = health
        if api_key is not None and not api_key.strip():
            raise ValueError("the API key is empty: refusing to start with the HTTP API open "
                             "by accident (unset it, or give a real key)")
        if api_key is not None and open_api:
            raise ValueError("an API key and an open API contradict each other: give one")
        self._api_key = api_key.encode("utf-8") if api_key is not None else None
        self.open_api = open_api
        self.static_dir = static_dir
        self.limits = limits or router.limits
        self._clock = clock
        self._started = clock()
        self.metrics = router.metrics
        self.logger = logger or _logger
        limits = self.limits
        self.buckets: BucketTable | None = None
        if limits.http_rate is not None:
            table = self.buckets = BucketTable(limits.http_rate, limits.http_burst,
                                               limits.http_max_clients)
            self.metrics.gauge("http_clients", "Client addresses tracked by the HTTP API rate "
                               "limit.", lambda: len(table))

    # --- entry point -------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: HeaderLookup,
               body: bytes, *, client: str | None = None
               ) -> rawws.Response | Awaitable[rawws.Response]:
        """Answer one request: a response, or, for a request whose write is not durable yet,
        an awaitable of it (the answer is sent once it is). ``client``: the peer's IP
        address, for the per-address API rate limit (None: an in-process caller)."""
        try:
            if client is not None and self.buckets is not None and _is_api(target):
                self._throttle(client)
            response = self._route(method, target, headers, body)
        except _Fail as fail:
            response = json_response(fail.status, {"error": fail.error, "message": fail.message},
                             fail.headers)
        except Exception:
            self.logger.exception("HTTP %s %s: internal error", method, redact_target(target))
            response = json_response(500, {"error": "internal_error", "message": "internal error"})
        if isinstance(response, rawws.Response):
            return self._answered(method, target, response)

        async def later(pending: Awaitable[rawws.Response]) -> rawws.Response:
            return self._answered(method, target, await pending)

        return later(response)

    def _answered(self, method: str, target: str, response: rawws.Response) -> rawws.Response:
        self.metrics.http_requests[response.status] += 1
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("HTTP %s %s -> %d", method[:16], redact_target(target),
                             response.status)
        return response

    def _route(self, method: str, target: str, headers: HeaderLookup,
               body: bytes) -> rawws.Response | Awaitable[rawws.Response]:
        raw_path = target.partition("?")[0]
        parts = [urllib.parse.unquote(p, errors="replace") for p in raw_path.split("/")[1:]]
        if parts and parts[-1] == "" and len(parts) > 1:
            parts.pop()  # a trailing slash
        match parts:
            case [""]:
                self._allow(method, "GET")
                return self._index(headers)
            case ["inspect"]:  # the live frame inspector (rawws/chat/inspector.py)
                self._allow(method, "GET")
                return self._page("inspect.html", headers)
            case ["static", *names] if names:
                self._allow(method, "GET")
                return self._static(names, headers)
            case ["healthz"]:
                self._allow(method, "GET")
                uptime = round(self._clock() - self._started, 3)
                reason = self.health() if self.health is not None else None
                if reason is not None:
                    return json_response(503, {"status": "degraded", "reason": reason,
                                       "uptime_seconds": uptime})
                return json_response(200, {"status": "ok", "uptime_seconds": uptime})
            case ["metrics"]:
                self._allow(method, "GET")
                return rawws.Response(200, rawws.Headers([
                    ("Content-Type", METRICS_CONTENT_TYPE), *COMMON_HEADERS]),
                    self.metrics.render().encode("utf-8"))
            case ["api", "notify", user]:
                self._allow(method, "POST")
                self._operator_only(self._caller(headers), "notify")
                return self._notify(user, body, _idempotency_key(headers))
            case ["api", "broadcast"]:
                self._allow(method, "POST")
                self._operator_only(self._caller(headers), "broadcast")
                return self._broadcast(body, _idempotency_key(headers))
            case ["api", "publish", topic]:
                self._allow(method, "POST")
                return self._publish(self._caller(headers), topic, body,
                                     _idempotency_key(headers))
            case ["api", "rooms"]:
                self._allow(method, "GET")
                caller = self._caller(headers)
                rooms = self.router.rooms_summary()
                if caller is not OPERATOR:
                    rooms = [r for r in rooms if caller.grants.may_join(r["room"])]
                return json_response(200, {"rooms": rooms})
            case ["api", "rooms", room]:
                self._allow(method, "GET")
                return self._room(self._caller(headers), room)
            case ["api", "rooms", room, "messages"]:
                self._allow(method, "POST")
                return self._post(self._caller(headers), room, body, _idempotency_key(headers))
            case ["api", "users", "online"]:
                self._allow(method, "GET")
                self._caller(headers)
                users = self.router.online_users()
                return json_response(200, {"users": users, "count": len(users)})
        raise _Fail(404, "not_found", "no such endpoint")

    def _throttle(self, client: str) -> None:
        assert self.buckets is not None
        wait = self.buckets.take(client_key(client), self._clock())
        if wait:
            self.metrics.http_rate_limited += 1
            raise _Fail(429, "rate_limited", "too many API requests from this address; retry "
                        "later", (("Retry-After", str(max(1, math.ceil(wait)))),))

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise _Fail(405, "method_not_allowed", f"use {allowed}", (("Allow", allowed),))

    def _caller(self, headers: HeaderLookup) -> Identity:
        """Who is calling ``/api/*``: :data:`OPERATOR`, or a user (an :class:`Identity` from
        a token). Raises 401 / 403 (rules in the module docstring)."""
        authenticator = self.router.authenticator
        credential = bearer_token(headers.get("Authorization"))
        if self._api_key is not None:
            if credential is None:
                raise _Fail(401, "unauthorized", "send Authorization: Bearer <api key>",
                            (("WWW-Authenticate", 'Bearer realm="rawws"'),))
            if hmac.compare_digest(credential.encode("utf-8", "surrogatepass"),
                                   self._api_key):
                return OPERATOR
        elif authenticator is None:
            return OPERATOR  # auth off, no key: open (user names are claims anyway)
        elif not self.open_api:
            raise _Fail(401, "unauthorized", "the HTTP API is closed: auth is on and the "
                        "server has no API key (--api-key)",
                        (("WWW-Authenticate", 'Bearer realm="rawws"'),))
        elif credential is None:
            return OPERATOR  # --open-api: anyone
        if authenticator is not None:  # a user token (refused ones are refused)
            try:
                return authenticator.verify(credential)
            except AuthError:
                raise _Fail(403, "forbidden", "wrong API key or refused token") from None
        raise _Fail(403, "forbidden", "wrong API key")

    @staticmethod
    def _operator_only(caller: Identity, what: str) -> None:
        if caller is not OPERATOR:
            raise _Fail(403, "forbidden", f"{what} needs the API key, not a user token")

    def _may_join(self, caller: Identity, room: str) -> None:
        if caller is not OPERATOR and not caller.grants.may_join(room):
            raise _Fail(403, "forbidden", "this token may not join that room")

    # --- bodies ------------------------------------------------------------------------------

    def _body(self, body: bytes) -> Any:
        if len(body) > self.limits.max_body_size:
            raise _Fail(413, "too_large", f"body over {self.limits.max_body_size} bytes")
        if not body.strip():
            raise _Fail(400, "bad_request", "empty body; send JSON")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail(400, "bad_json", "body is not UTF-8") from None
        try:
            return decode_json(text, max_depth=self.limits.max_json_depth)
        except WireError as exc:
            raise _Fail(400, exc.code.value, exc.message) from None

    def _check_size(self, value: Any, what: str) -> None:
        size = len(encode(value).encode("utf-8"))
        if size > self.limits.max_content_size:
            raise _Fail(413, "too_large", f"{what} is {size} bytes; the limit is "
                        f"{self.limits.max_content_size}")

    def _message(self, body: bytes) -> Any:
        value = self._body(body)
        # {"message": X} is unwrapped to X; any other JSON body is the message itself.
        if type(value) is dict and len(value) == 1 and "message" in value:
            value = value["message"]
        self._check_size(value, "message")
        return value

    # --- endpoints ---------------------------------------------------------------------------

    def _notify(self, user: str, body: bytes,
                key: str | None) -> rawws.Response | Awaitable[rawws.Response]:
        if not is_valid_user(user):
            raise _Fail(400, "bad_request", "invalid user_id")
        message = self._message(body)
        answer = Answer()
        return self._respond(answer, self.router.notify(user, message, answer, key))

    def _broadcast(self, body: bytes,
                   key: str | None) -> rawws.Response | Awaitable[rawws.Response]:
        message = self._message(body)
        answer = Answer()
        return self._respond(answer, self.router.broadcast(message, answer, key))

    def _publish(self, caller: Identity, topic: str, body: bytes,
                 key: str | None) -> rawws.Response | Awaitable[rawws.Response]:
        try:
            split_topic(topic)
        except ValueError as exc:
            raise _Fail(400, "bad_request", str(exc)) from None
        if caller is not OPERATOR and not (self.router.client_publish
                                           and caller.grants.may_publish(topic)):
            raise _Fail(403, "forbidden", "this token may not publish to that topic")
        message = self._message(body)
        answer = Answer()
        return self._respond(answer, self.router.publish(topic, message, answer, key,
                                                         scope=_scope(caller)))

    def _respond(self, answer: Answer,
                 actions: list[Action]) -> rawws.Response | Awaitable[rawws.Response]:
        """Carry out the actions; answer once they are released (at once when no write is
        waiting to be durable): acknowledged means durable."""
        self.deliver(actions)
        waiter: asyncio.Future[rawws.Response] | None = None
        ready: list[rawws.Response] = []

        def respond() -> None:
            response = _from_answer(answer)
            if waiter is None:
                ready.append(response)
            elif not waiter.done():
                waiter.set_result(response)

        self.after(respond)
        if ready:
            return ready[0]
        waiter = asyncio.get_running_loop().create_future()
        return waiter

    def _room(self, caller: Identity, room: str) -> rawws.Response:
        if not is_valid_room(room):
            raise _Fail(400, "bad_request", "invalid room name")
        self._may_join(caller, room)  # before the lookup: a 404 would tell that it exists
        detail = self.router.room_detail(room)
        if detail is None:
            raise _Fail(404, "not_found", f"no room {room!r}")
        return json_response(200, detail)

    def _post(self, caller: Identity, room: str, body: bytes,
              key: str | None) -> rawws.Response | Awaitable[rawws.Response]:
        if not is_valid_room(room):
            raise _Fail(400, "bad_request", "invalid room name")
        self._may_join(caller, room)
        value = self._body(body)
        if type(value) is not dict:
            raise _Fail(400, "bad_request", 'expected {"content": ..., "user_id": ...}')
        if "content" not in value:
            raise _Fail(400, "bad_request", "missing content")
        acting = caller.user  # "api" for the operator
        user = value.get("user_id", acting)
        if not is_valid_user(user):
            raise _Fail(400, "bad_request", "invalid user_id")
        if user != acting and self.router.auth_required:
            # With auth on a body never names the acting user: that would let the key (or a
            # token) speak as anyone.
            raise _Fail(403, "forbidden", f"with auth on, messages posted here come from "
                        f"{acting!r}; user_id cannot name another user")
        self._check_size(value["content"], "content")
        answer = Answer()
        return self._respond(answer, self.router.post(room, user, value["content"], answer,
                                                      key, scope=_scope(caller)))

    # --- the page ----------------------------------------------------------------------------

    def _page_headers(self, headers: HeaderLookup, content_type: str) -> rawws.Headers:
        host = headers.get("Host")
        connect = "'self'"
        if host and _HOST.fullmatch(host):
            connect += f" ws://{host} wss://{host}"
        csp = (f"default-src 'self'; connect-src {connect}; img-src 'self' data:; "
               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
        return rawws.Headers([("Content-Type", content_type), ("Content-Security-Policy", csp),
                              ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
                              *COMMON_HEADERS])

    def _index(self, headers: HeaderLookup) -> rawws.Response:
        if self.static_dir is not None:
            page = self._read_static(["index.html"])
            if page is not None:
                return rawws.Response(
                    200, self._page_headers(headers, _CONTENT_TYPES[".html"]), page)
        return rawws.Response(200, self._page_headers(headers, "text/plain; charset=utf-8"),
                              INDEX_FALLBACK)

    def _page(self, name: str, headers: HeaderLookup) -> rawws.Response:
        page = self._read_static([name]) if self.static_dir is not None else None
        if page is None:
            raise _Fail(404, "not_found", "no such page")
        return rawws.Response(200, self._page_headers(headers, _CONTENT_TYPES[".html"]), page)

    def _static(self, names: list[str], headers: HeaderLookup) -> rawws.Response:
        data = self._read_static(names) if self.static_dir is not None else None
        if data is None:
            raise _Fail(404, "not_found", "no such file")
        suffix = Path(names[-1]).suffix.lower()
        content_type = _CONTENT_TYPES.get(suffix) or mimetypes.types_map.get(
            suffix, "application/octet-stream")
        return rawws.Response(200, self._page_headers(headers, content_type), data)

    def _read_static(self, names: list[str]) -> bytes | None:
        assert self.static_dir is not None
        if len(names) > 4 or not all(_STATIC_SEGMENT.fullmatch(n) and ".." not in n
                                     for n in names):
            return None
        root = self.static_dir.resolve()
        path = root.joinpath(*names)
        try:
            resolved = path.resolve()
            if root not in resolved.parents or not resolved.is_file():
                return None
            if resolved.stat().st_size > MAX_STATIC_SIZE:
                return None
            return resolved.read_bytes()
        except OSError:
            return None
