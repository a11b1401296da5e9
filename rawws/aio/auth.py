"""HTTP Basic authentication for the opening handshake: :func:`basic_auth` (RFC 7617).

Owns: a ``process_request`` hook that checks ``Authorization: Basic`` credentials, answers 401
with ``WWW-Authenticate`` when they are missing or wrong, and sets ``connection.username`` when
they are right (websockets' ``basic_auth``, same arguments, same behaviour).

Usage::

    async with rawws.serve(handler, host, port,
                           process_request=rawws.basic_auth(realm="dev",
                                                            credentials=("alice", "s3cret"))):
        ...
"""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from ..sansio.http11 import Request, Response

if TYPE_CHECKING:
    from .server import ServerConnection

__all__ = ["basic_auth", "basic_challenge", "credentials_checker", "parse_authorization_basic"]

CheckCredentials = Callable[[str, str], "Awaitable[bool] | bool"]


def parse_authorization_basic(value: str) -> tuple[str, str]:
    """Return ``(username, password)`` from an ``Authorization: Basic ...`` value.

    RFC 7617 §2: ``credentials = "Basic" 1*SP token68`` where the token is the Base64 of
    ``user-id ":" password``. Raises ``ValueError`` for anything else.
    """
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise ValueError("not Basic credentials")
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError):
        raise ValueError("credentials are not Base64 of UTF-8 text") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("credentials lack the ':' between user and password")
    return username, password


def _is_credentials(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(item, str) for item in value))


def credentials_checker(
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None,
    check_credentials: CheckCredentials | None,
) -> CheckCredentials:
    """The ``check(username, password)`` for :func:`basic_auth`'s arguments (both APIs)."""
    if (credentials is None) == (check_credentials is None):
        raise ValueError("provide either credentials or check_credentials")
    if credentials is None:
        assert check_credentials is not None
        return check_credentials
    if _is_credentials(credentials):
        pairs = [cast(tuple[str, str], credentials)]
    else:
        try:
            pairs = list(cast(Iterable[tuple[str, str]], credentials))
        except TypeError:
            raise TypeError(f"invalid credentials argument: {credentials!r}") from None
        if not all(_is_credentials(pair) for pair in pairs):
            raise TypeError(f"invalid credentials argument: {credentials!r}")
    known = dict(pairs)

    def check_known(username: str, password: str) -> bool:
        expected = known.get(username)
        if expected is None:
            return False
        return hmac.compare_digest(expected.encode(errors="surrogateescape"),
                                   password.encode(errors="surrogateescape"))

    return check_known


def basic_challenge(realm: str) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 7617 §2)."""
    return 'Basic realm="{}", charset="UTF-8"'.format(realm.replace('"', '\\"'))


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: CheckCredentials | None = None,
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]:
    """Make a ``process_request`` hook that enforces HTTP Basic authentication.

    Give either ``credentials`` (one ``(username, password)`` pair or an iterable of them,
    compared in constant time) or ``check_credentials(username, password)`` (a function or a
    coroutine function returning whether they are valid), not both. On success the hook sets
    ``connection.username``; on failure it answers 401 with
    ``WWW-Authenticate: Basic realm="..."``.
    """
    check = credentials_checker(credentials, check_credentials)
    challenge = basic_challenge(realm)

    def unauthorized(connection: ServerConnection, text: str) -> Response:
        response = connection.respond(401, text)
        response.headers["WWW-Authenticate"] = challenge
        return response

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        value = request.headers.get("Authorization")
        if value is None:
            return unauthorized(connection, "Missing credentials\n")
        try:
            username, password = parse_authorization_basic(value)
        except ValueError:
            return unauthorized(connection, "Unsupported credentials\n")
        valid = check(username, password)
        if inspect.isawaitable(valid):
            valid = await valid
        if not valid:
            return unauthorized(connection, "Invalid credentials\n")
        connection.username = username
        return None

    return process_request
