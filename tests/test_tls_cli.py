"""TLS without a proxy (issue 11 item 6), with certificates made at test time by trustme:
``rawws serve`` and ``rawws echo`` with ``--certfile/--keyfile`` (and ``--ca-certs`` for client
certificates), ``wss://`` in ``rawws client`` and ``rawws chat``, every misconfiguration an exit
status 2 with one line. Real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import rawws
from rawws.tls import TLSConfigError, client_context, server_context

from .processes import ROOT, WAIT, ServerProcess, run

trustme = pytest.importorskip("trustme")


@dataclass
class PKI:
    ca: Path  # the test CA's certificate
    cert: Path  # server chain for 127.0.0.1 and localhost
    key: Path
    combined: Path  # key and chain in one file
    client_cert: Path  # a client certificate from the same CA
    client_key: Path
    other_ca: Path  # a CA that signed nothing here
    other_key: Path  # a key that does not match cert
    encrypted_key: Path
    garbage: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    from cryptography.hazmat.primitives import serialization

    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("alice@example.com")
    other = trustme.CA()

    def write(name: str, data: bytes) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path

    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"passphrase"))
    return PKI(
        ca=write("ca.pem", ca.cert_pem.bytes()),
        cert=write("cert.pem", b"".join(p.bytes() for p in server.cert_chain_pems)),
        key=write("key.pem", server.private_key_pem.bytes()),
        combined=write("combined.pem", server.private_key_and_cert_chain_pem.bytes()),
        client_cert=write("client.pem", b"".join(p.bytes() for p in client.cert_chain_pems)),
        client_key=write("client-key.pem", client.private_key_pem.bytes()),
        other_ca=write("other-ca.pem", other.cert_pem.bytes()),
        other_key=write("other-key.pem", other.issue_cert("x.example").private_key_pem.bytes()),
        encrypted_key=write("encrypted-key.pem", encrypted),
        garbage=write("garbage.pem", b"-----BEGIN CERTIFICATE-----\nnot base64\n"),
    )


def trusting(pki: PKI, *, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client_cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


async def https_get(port: int, target: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                   server_hostname="127.0.0.1")
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    async with asyncio.timeout(WAIT):
        raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def run_chat(*args: str, stdin: bytes = b"/quit\n") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rawws", "chat", *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(WAIT):
        out, _ = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode()


# --- rawws serve --------------------------------------------------------------------------------


@pytest.mark.parametrize("separate_key", [True, False])
async def test_serve_over_tls(pki: PKI, separate_key: bool) -> None:
    flags = (["--certfile", str(pki.cert), "--keyfile", str(pki.key)] if separate_key
             else ["--certfile", str(pki.combined)])
    proc = await ServerProcess.start("serve", "--port", "0", *flags)
    try:
        port = int((await proc.expect(r"on https://127\.0\.0\.1:(\d+)  \(WebSocket: "
                                      r"wss://")).group(1))
        ws = await rawws.connect(f"wss://127.0.0.1:{port}/ws?user_id=alice", ssl=trusting(pki))
        assert json.loads(await ws.recv())["user_id"] == "alice"
        assert ws.transport is not None and ws.transport.get_extra_info("ssl_object")
        await ws.close()
        status, body = await https_get(port, "/healthz", trusting(pki))
        assert status == 200 and json.loads(body)["status"] == "ok"
        # A client that does not trust the CA cannot connect: the certificate is checked.
        with pytest.raises(ssl.SSLCertVerificationError):
            await rawws.connect(f"wss://127.0.0.1:{port}/ws", ssl=ssl.create_default_context())
        # Plain TCP to the TLS port gets no WebSocket.
        with pytest.raises((rawws.InvalidHandshake, OSError, EOFError)):
            await rawws.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=WAIT)
        assert await proc.stop() == 0
    finally:
        proc.kill()


async def test_rawws_chat_over_wss(pki: PKI) -> None:
    proc = await ServerProcess.start("serve", "--port", "0", "--certfile", str(pki.cert),
                                     "--keyfile", str(pki.key))
    try:
        port = int((await proc.expect(r"on https://127\.0\.0\.1:(\d+)")).group(1))
        proc.keep_reading()
        url = f"wss://127.0.0.1:{port}/ws"
        status, out = await run_chat(url, "--user", "alice", "--ca-certs", str(pki.ca),
                                     "--no-reconnect")
        assert status == 0, out
        assert "= connected as alice" in out and "= joined #lobby; here: alice" in out
        # Without the CA the certificate is refused, and the client says so.
        status, out = await run_chat(url, "--user", "bob", "--no-reconnect")
        assert status == 1 and "could not connect: tls: certificate verify failed" in out
        assert await proc.stop() == 0
    finally:
        proc.kill()


async def test_serve_requires_client_certificates_with_ca_certs(pki: PKI) -> None:
    proc = await ServerProcess.start("serve", "--port", "0", "--certfile", str(pki.cert),
                                     "--keyfile", str(pki.key), "--ca-certs", str(pki.ca))
    try:
        port = int((await proc.expect(r"on https://127\.0\.0\.1:(\d+)")).group(1))
        proc.keep_reading()
        url = f"wss://127.0.0.1:{port}/ws?user_id=alice"
        ws = await rawws.connect(url, ssl=trusting(pki, client_cert=True))
        assert json.loads(await ws.recv())["user_id"] == "alice"
        await ws.close()
        with pytest.raises((ssl.SSLError, ConnectionError, rawws.InvalidHandshake, EOFError)):
            ws = await rawws.connect(url, ssl=trusting(pki), open_timeout=WAIT)
            await ws.recv()  # TLS 1.3 reports the missing certificate after the handshake
        status, out = await run_chat(url, "--ca-certs", str(pki.ca), "--certfile",
                                     str(pki.client_cert), "--keyfile", str(pki.client_key),
                                     "--no-reconnect")
        assert status == 0 and "= connected as alice" in out, out
        assert await proc.stop() == 0
    finally:
        proc.kill()


# --- rawws echo and rawws client -----------------------------------------------------------------


async def test_echo_and_client_over_wss(pki: PKI) -> None:
    proc = await ServerProcess.start("echo", "--port", "0", "--certfile", str(pki.cert),
                                     "--keyfile", str(pki.key))
    try:
        port = await proc.port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rawws", "client", f"wss://localhost:{port}/",
            "--ca-certs", str(pki.ca), "--show-close", cwd=ROOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        async with asyncio.timeout(WAIT):
            # stdin a pipe: each line is a message, echoes print as they are, the close
            # (after the input ends) with --show-close.
            out, _ = await process.communicate(b"over tls\n")
        text = out.decode()
        assert process.returncode == 0, text
        assert text.splitlines() == ["over tls", "closed: 1000 (normal closure)"], text
        assert await proc.stop() == 0
    finally:
        proc.kill()


# --- misconfigurations: exit 2, one line ---------------------------------------------------------


def misconfigurations(pki: PKI) -> dict[str, tuple[list[str], str]]:
    missing = str(pki.ca.parent / "missing.pem")
    return {
        "missing key file": (["--certfile", str(pki.cert), "--keyfile", missing], "key file"),
        "missing certificate": (["--certfile", missing, "--keyfile", str(pki.key)],
                                "certificate file"),
        "unreadable certificate": (["--certfile", str(pki.garbage), "--keyfile", str(pki.key)],
                                   "cannot load the certificate"),
        "no key at all": (["--certfile", str(pki.cert)], "--keyfile"),
        "key of another certificate": (["--certfile", str(pki.cert), "--keyfile",
                                        str(pki.other_key)], "cannot load the certificate"),
        "encrypted key": (["--certfile", str(pki.cert), "--keyfile", str(pki.encrypted_key)],
                          "passphrase"),
        "ca-certs without certfile": (["--ca-certs", str(pki.ca)], "without --certfile"),
        "keyfile without certfile": (["--keyfile", str(pki.key)], "without --certfile"),
        "unreadable CA file": (["--certfile", str(pki.cert), "--keyfile", str(pki.key),
                                "--ca-certs", str(pki.garbage)], "CA"),
        "missing CA file": (["--certfile", str(pki.cert), "--keyfile", str(pki.key),
                             "--ca-certs", missing], "CA file"),
    }


CASES = ["missing key file", "missing certificate", "unreadable certificate", "no key at all",
         "key of another certificate", "encrypted key", "ca-certs without certfile",
         "keyfile without certfile", "unreadable CA file", "missing CA file"]


@pytest.mark.parametrize("command", ["serve", "echo"])
@pytest.mark.parametrize("case", CASES)
async def test_tls_misconfiguration_is_exit_2_with_one_line(pki: PKI, command: str,
                                                            case: str) -> None:
    flags, words = misconfigurations(pki)[case]
    status, output = await run(command, "--port", "0", *flags)
    lines = output.splitlines()
    assert status == 2, output
    assert len(lines) == 1 and lines[0].startswith(f"rawws {command}: "), lines
    assert words in lines[0] and "Traceback" not in output


@pytest.mark.parametrize("command", ["client", "chat"])
@pytest.mark.parametrize(("flags", "words"), [
    (["--ca-certs", "missing.pem"], "CA file"),
    (["--keyfile", "k.pem"], "--keyfile without --certfile"),
    (["--ca-certs", "CA"], "need a wss://"),
])
async def test_client_tls_misconfiguration_is_exit_2(pki: PKI, command: str, flags: list[str],
                                                     words: str) -> None:
    flags = [str(pki.ca) if f == "CA" else f for f in flags]
    url = "ws://127.0.0.1:9/" if words == "need a wss://" else "wss://127.0.0.1:9/"
    status, output = await run(command, url, *flags)
    lines = output.splitlines()
    assert status == 2 and len(lines) == 1, output
    assert lines[0].startswith(f"rawws {command}: ") and words in lines[0], lines


def test_contexts_have_safe_defaults(pki: PKI) -> None:
    server = server_context(certfile=pki.cert, keyfile=pki.key, ca_certs=pki.ca)
    assert server is not None
    assert server.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert server.verify_mode is ssl.CERT_REQUIRED
    assert server_context(certfile=None) is None
    client = client_context(ca_certs=pki.ca)
    assert client is not None and client.check_hostname
    assert client.verify_mode is ssl.CERT_REQUIRED
    assert client_context() is None
    with pytest.raises(TLSConfigError):
        client_context(ca_certs=pki.other_ca.parent / "nope.pem")
