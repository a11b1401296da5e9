"""No token, API key, Authorization header or ``?token=`` ever reaches a log line (issue 11
item 3): real ``rawws serve`` / ``rawws echo`` / ``rawws client`` processes at their most
verbose (``--log-level debug``, ``--debug`` frame transcripts), every way a secret travels
exercised (query, header, cookie, first-message auth, API key, malformed requests quoting
them, good and bad credentials), and the captured output searched for every secret string.

Each test also checks that the output it searched is the verbose one (the transcript ran,
the requests were logged): a quiet log would pass the search without proving anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

import pytest

import rawws
from rawws.chat.auth import encode_jwt

from .processes import ROOT, WAIT, ServerProcess

JWT_SECRET = "jwt-secret-Zq8v-never-logged-0123456789abcdef"
API_KEY = "api-key-Kx4d-never-logged-0123456789"
STATIC = "static-token-Pw7m-never-logged"
WRONG_KEY = "wrong-key-Hj2s-never-logged"
UNKNOWN_STATIC = "unknown-static-Vb9n-never-logged"


def jwt(user: str) -> str:
    return encode_jwt({"sub": user}, JWT_SECRET)


GOOD_JWT = jwt("alice")
FORGED_JWT = encode_jwt({"sub": "mallory"}, "not-the-secret-Rr5t")


def secrets() -> list[str]:
    """Every secret string, and the parts of the JWTs that identify them (payload and
    signature; the header part is the same for every HS256 token)."""
    found = [JWT_SECRET, API_KEY, STATIC, WRONG_KEY, UNKNOWN_STATIC]
    for token in (GOOD_JWT, FORGED_JWT, jwt("bob"), jwt("carol")):
        found.append(token)
        found.extend(token.split(".")[1:])
    return found


def assert_no_secret(output: str) -> None:
    leaked = [s for s in secrets() if s in output]
    assert not leaked, f"secrets in the log: {leaked}"


async def raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        async with asyncio.timeout(WAIT):
            return await reader.read(65536)
    finally:
        writer.close()


async def ws_session(url: str, headers: list[tuple[str, str]] | None = None,
                     first: object | None = None, then: object | None = None) -> None:
    """Connect, optionally send a first message (auth) and one more, read until the server
    answered or closed."""
    try:
        ws = await rawws.connect(url, extra_headers=headers or [], compression=None,
                                 ping_interval=None)
    except rawws.InvalidHandshake:
        return
    with contextlib.suppress(rawws.ConnectionClosed, TimeoutError):
        async with asyncio.timeout(WAIT):
            if first is not None:
                await ws.send(first if isinstance(first, str | bytes) else json.dumps(first))
            await ws.recv()
            if then is not None:
                await ws.send(json.dumps(then))
                await ws.recv()
    await ws.close()


async def http(port: int, method: str, target: str, headers: list[str] = (),  # type: ignore[assignment]
               body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return await raw(port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


async def exercise_chat(port: int) -> None:
    base = f"ws://127.0.0.1:{port}"
    # Good credentials, every way they travel.
    await ws_session(f"{base}/ws?token={GOOD_JWT}")
    await ws_session(f"{base}/ws", [("Authorization", f"Bearer {jwt('bob')}")])
    await ws_session(f"{base}/ws", [("Cookie", f"theme=dark; rawws_token={STATIC}")])
    await ws_session(f"{base}/ws", first={"type": "auth", "token": jwt("carol"), "id": 1},
                     then={"type": "auth", "token": GOOD_JWT})  # "already authenticated"
    await ws_session(f"{base}/ws", first={"token": STATIC})
    await ws_session(f"{base}/ws/chat/lobby?token={STATIC}&user_id=x")
    # Bad ones: refused, and the refusal logged.
    await ws_session(f"{base}/ws?token={FORGED_JWT}")
    await ws_session(f"{base}/ws", [("Authorization", f"Bearer {UNKNOWN_STATIC}")])
    await ws_session(f"{base}/ws", first={"type": "auth", "token": FORGED_JWT})
    await ws_session(f"{base}/ws", first=json.dumps({"type": "auth", "token": STATIC}).encode())
    await ws_session(f"{base}/ws", [("Cookie", f"rawws_token={UNKNOWN_STATIC}")])
    await ws_session(f"{base}/elsewhere?token={GOOD_JWT}")  # 404 at the handshake
    await ws_session(f"{base}/ws?token={GOOD_JWT}", [("Origin", "http://evil.example")])
    # The HTTP API: the key, a wrong key, a user token, secrets in the query.
    await http(port, "GET", "/api/rooms", [f"Authorization: Bearer {API_KEY}"])
    await http(port, "GET", "/api/rooms", [f"Authorization: Bearer {WRONG_KEY}"])
    await http(port, "GET", f"/api/rooms?api_key={API_KEY}&token={GOOD_JWT}")
    await http(port, "POST", "/api/broadcast", [f"Authorization: Bearer {API_KEY}"],
               json.dumps({"message": {"token": STATIC}}).encode())
    await http(port, "GET", "/api/users/online", [f"Authorization: Bearer {STATIC}"])
    await http(port, "GET", f"/healthz?token={GOOD_JWT}", [f"Cookie: rawws_token={STATIC}"])
    # Malformed requests that quote a secret in what the server reports about them.
    await raw(port, f"GET /ws?token={GOOD_JWT} HTTP/1.1 extra\r\n\r\n".encode())
    await raw(port, f"GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {API_KEY}\r\n\r\n"
              .encode())
    await raw(port, f"GET /ws HTTP/1.1\r\nHost: x\r\nCookie;rawws_token={STATIC}\r\n\r\n"
              .encode())
    await raw(port, f"GET /?token={STATIC}\x01 HTTP/1.1\r\nHost: x\r\n\r\n".encode())


@pytest.mark.parametrize("verbosity", [["--log-level", "debug"], ["--debug"]])
async def test_rawws_serve_logs_no_secret(tmp_path: Path, verbosity: list[str]) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{STATIC} dave\n")
    # The JWT secret comes from the environment, the API key from a flag: both ways.
    proc = await ServerProcess.start("serve", "--port", "0", "--tokens", str(tokens),
                                     "--api-key", API_KEY, *verbosity,
                                     env={"RAWWS_JWT_SECRET": JWT_SECRET})
    try:
        port = await proc.port()
        proc.keep_reading()
        await exercise_chat(port)
        assert await proc.stop() == 0
    finally:
        proc.kill()
    output = proc.output
    # It was the verbose log: the transcript ran, requests and refusals were logged.
    assert "< TEXT" in output and "> TEXT" in output
    assert "> HTTP 101 to /ws?token=***" in output
    assert "HTTP GET /api/rooms?api_key=***&token=*** -> " in output
    assert '< TEXT [F] \'{"type": "auth", "token": "***' in output  # the auth frame, blanked
    assert_no_secret(output)


async def test_rawws_echo_and_client_debug_transcripts_log_no_secret() -> None:
    proc = await ServerProcess.start("--debug", "echo", "--port", "0")
    try:
        port = await proc.port()
        proc.keep_reading()
        for first in ({"type": "auth", "token": GOOD_JWT},
                      {"type": "auth", "token": STATIC, "password": API_KEY}):
            await ws_session(f"ws://127.0.0.1:{port}/?token={STATIC}",
                             [("Authorization", f"Bearer {API_KEY}")], first=first)
        await ws_session(f"ws://127.0.0.1:{port}/", first=json.dumps({"token": STATIC}).encode())
        # The client side: rawws --debug client, with a token in its URI and in a message.
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rawws", "--debug", "client",
            f"ws://127.0.0.1:{port}/?token={GOOD_JWT}", cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        async with asyncio.timeout(WAIT):
            client_out, _ = await client.communicate(
                json.dumps({"type": "auth", "token": STATIC}).encode() + b"\n")
        assert await proc.stop() == 0
    finally:
        proc.kill()
    client_text = client_out.decode()
    assert "> GET /?token=*** HTTP/1.1" in client_text and "> TEXT" in client_text
    # The client prints the echo it received on purpose (stdout, not a log line: with stdin a
    # pipe, messages print as they are); its log lines (the transcript) are what must be clean.
    log_lines = "\n".join(line for line in client_text.splitlines() if not line.startswith("{"))
    assert_no_secret(log_lines)
    assert "< TEXT" in proc.output and "> TEXT" in proc.output
    assert_no_secret(proc.output)
