"""The byte diagrams of ``docs/walkthrough.md``, made by running the real code.

Owns: one scripted connection between rawws' own sans-I/O client and server
(:func:`conversation`): the upgrade request and the 101, a masked text frame, a fragmented
message, a ping and its pong, a compressed message and the close handshake. Randomness is
injected (a seeded generator), so the masking keys and the handshake key are the same on every
run and every machine. The annotated hex dumps of those bytes (:func:`render`), and the
regeneration and check of the document (:func:`update`).

Usage::

    python -m rawws.tools.walkthrough --write    # regenerate the diagrams in docs/walkthrough.md
    python -m rawws.tools.walkthrough --check    # exit 1 if the document and the code disagree

``tests/tools/test_walkthrough.py`` runs the check: a change to the framing, the handshake, the
masking or the compression that changes a byte fails it until the document is regenerated.

The document's prose is written by hand; each diagram sits between two markers,
``<!-- walkthrough:NAME -->`` and ``<!-- /walkthrough:NAME -->``, and only that is replaced.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import random as random_module
import re
import sys
from collections.abc import Callable
from pathlib import Path

from ..sansio.client import ClientProtocol
from ..sansio.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory
from ..sansio.handshake import accept_key
from ..sansio.mask import apply_mask
from ..sansio.protocol import Protocol
from ..sansio.reader import decode_header
from ..sansio.server import ServerProtocol
from ..wirelog import OPCODE_NAMES

__all__ = ["DOCUMENT", "SEED", "Step", "conversation", "render", "update"]

#: The seed of the random bytes (handshake key, masking keys) of the walkthrough.
SEED = 6455
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "walkthrough.md"

#: The compressed message: long enough to pass the compression threshold, repetitive enough
#: that DEFLATE visibly shrinks it.
COMPRESSED_TEXT = "The quick brown fox jumps over the lazy dog. " * 4


@dataclasses.dataclass(frozen=True)
class Step:
    """Bytes one side wrote: ``name`` is the document's marker, ``sender`` client or server."""

    name: str
    sender: str
    data: bytes


def seeded(seed: int = SEED) -> Callable[[int], bytes]:
    generator = random_module.Random(seed)
    return generator.randbytes


def _pump(sender: Protocol) -> bytes:
    return b"".join(sender.data_to_send())


def conversation(seed: int = SEED) -> list[Step]:
    """Run the scripted connection; return what each side wrote, step by step."""
    client = ClientProtocol(host="127.0.0.1", port=8765, resource="/chat",
                            extensions=[ClientPerMessageDeflateFactory()], random=seeded(seed),
                            user_agent="rawws")
    server = ServerProtocol(extensions=[ServerPerMessageDeflateFactory()],
                            random=seeded(seed + 1))
    steps: list[Step] = []

    def client_sends(name: str) -> None:
        data = _pump(client)
        steps.append(Step(name, "client", data))
        server.receive_data(data)

    def server_sends(name: str) -> None:
        data = _pump(server)
        steps.append(Step(name, "server", data))
        client.receive_data(data)

    client.send_request(client.connect())
    client_sends("request")
    (request,) = server.events_received()
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    server_sends("response")
    client.events_received()

    client.send_text("Hello")
    client_sends("text")
    assert server.events_received() == ["Hello"]

    server.send_text("Hel", fin=False, compress=False)
    server.send_continuation("lo, client", fin=True)
    server_sends("fragments")
    assert client.events_received() == ["Hello, client"]

    client.send_ping(b"ping")
    client_sends("ping")
    server.events_received()
    server_sends("pong")  # queued by the core when the ping arrived (RFC 6455 §5.5.2)
    client.events_received()

    client.send_text(COMPRESSED_TEXT)
    client_sends("compressed")
    assert server.events_received() == [COMPRESSED_TEXT]

    client.send_close(1000, "bye")
    client_sends("close")
    server.events_received()
    server_sends("close-echo")
    client.events_received()
    assert server.close_transport  # the server closes TCP first (§7.1.1)
    return steps


# --- rendering ---------------------------------------------------------------------------------


def _hex(data: bytes, limit: int = 16) -> str:
    shown = data[:limit].hex(" ")
    return shown + (f" ... ({len(data)} bytes)" if len(data) > limit else "")


def _bits(byte: int, groups: tuple[int, ...]) -> str:
    text = f"{byte:08b}"
    out, pos = [], 0
    for size in groups:
        out.append(text[pos:pos + size])
        pos += size
    return " ".join(out)


def render_http(data: bytes) -> str:
    """An HTTP head as text, each line with its byte count (CRLF shown)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert not rest
    lines = head.decode("latin-1").split("\r\n")
    width = max(len(line) for line in lines)
    out = [f"{line:<{width}}  \\r\\n" for line in lines]
    out.append(f"{'':<{width}}  \\r\\n   (the empty line ends the head: {len(data)} bytes)")
    return "\n".join(out)


def _payload_rows(chunk: bytes, offset: int, meaning: str) -> list[tuple[str, str, str]]:
    """Every byte, 16 to a row; offsets only for the bytes as they are on the wire (``offset``
    is -1 for a transformed copy)."""
    rows = []
    for i in range(0, max(len(chunk), 1), 16):
        part = chunk[i:i + 16]
        last = offset + i + len(part) - 1
        span = "" if offset < 0 else (f"{offset + i}-{last}" if len(part) > 1
                                      else f"{offset + i}" if part else "-")
        rows.append((span, _hex(part) if part else "(empty)", meaning if i == 0 else ""))
    return rows


def render_frames(data: bytes, *, inflated: list[bytes] | None = None) -> str:
    """Annotated hex dumps of the frames in ``data``: every header field, the masking key, the
    payload as sent and, unmasked (and inflated), as meant."""
    out: list[str] = []
    pos = 0
    index = 0
    while pos < len(data):
        header = decode_header(data, pos)
        assert header is not None
        name = OPCODE_NAMES.get(header.opcode, str(header.opcode))
        start = pos
        b0, b1 = data[pos], data[pos + 1]
        rows: list[tuple[str, str, str]] = [
            (f"{start}", f"{b0:02x}",
             f"{_bits(b0, (1, 1, 1, 1, 4))}  FIN={header.fin:d} RSV1={header.rsv1:d} "
             f"RSV2={header.rsv2:d} RSV3={header.rsv3:d} opcode={header.opcode:#x} ({name})"),
            (f"{start + 1}", f"{b1:02x}",
             f"{_bits(b1, (1, 7))}  MASK={header.masked:d} payload length="
             + (f"{b1 & 0x7F}" if (b1 & 0x7F) < 126 else f"{b1 & 0x7F} (extended, below)")),
        ]
        pos += 2
        if (b1 & 0x7F) == 126:
            rows.append((f"{pos}-{pos + 1}", _hex(data[pos:pos + 2]),
                         f"extended payload length (16 bits) = {header.length}"))
            pos += 2
        elif (b1 & 0x7F) == 127:
            rows.append((f"{pos}-{pos + 7}", _hex(data[pos:pos + 8]),
                         f"extended payload length (64 bits) = {header.length}"))
            pos += 8
        if header.mask_key is not None:
            rows.append((f"{pos}-{pos + 3}", _hex(header.mask_key), "masking key"))
            pos += 4
        payload = data[pos:pos + header.length]

        if header.mask_key is not None:
            rows += _payload_rows(payload, pos, "payload, masked")
            payload = bytes(apply_mask(payload, header.mask_key))
            rows += _payload_rows(payload, -1, "payload, unmasked (XOR with the key, §5.3)")
        else:
            rows += _payload_rows(payload, pos, "payload")
        if header.opcode == 8 and len(payload) >= 2:
            rows.append(("", "", f"close code {int.from_bytes(payload[:2], 'big')}, "
                                 f"reason {payload[2:].decode()!r}"))
        elif header.rsv1 and inflated is not None:
            text = inflated[index]
            rows.append(("", "", f"inflated (RFC 7692 §7.2.2): {len(text)} bytes, "
                                 f"{text[:40].decode()!r}..."))
        elif header.opcode in (1, 0, 9, 10) and payload:
            rows.append(("", "", f"as text: {payload.decode()!r}"))
        pos += header.length
        index += 1
        out.append(f"frame {index}: {name}, {pos - start} bytes on the wire")
        out.append(f"  {'offset':<7} {'bytes':<47} meaning")
        out.extend(f"  {offset:<7} {hexes:<47} {meaning}".rstrip() for offset, hexes, meaning
                   in rows)
        out.append("")
    return "\n".join(out).rstrip()


def render(seed: int = SEED) -> dict[str, str]:
    """Every diagram of the document, by marker name."""
    steps = {step.name: step for step in conversation(seed)}
    request = steps["request"].data.decode("latin-1")
    key = re.search(r"Sec-WebSocket-Key: (\S+)", request)
    assert key is not None
    blocks = {
        "request": render_http(steps["request"].data),
        "response": render_http(steps["response"].data),
        "accept": (f"Sec-WebSocket-Key    {key.group(1)}\n"
                   f"+ GUID               258EAFA5-E914-47DA-95CA-C5AB0DC85B11\n"
                   f"SHA-1, then base64   {accept_key(key.group(1))}"),
        "compressed": render_frames(steps["compressed"].data,
                                    inflated=[COMPRESSED_TEXT.encode()]),
    }
    for name in ("text", "fragments", "ping", "pong", "close", "close-echo"):
        blocks[name] = render_frames(steps[name].data)
    return blocks


_BLOCK = re.compile(r"(<!-- walkthrough:(?P<name>[\w-]+) -->\n```text\n)(?P<body>(?:.*?\n)?)"
                    r"(```\n<!-- /walkthrough:(?P=name) -->)", re.DOTALL)


def update(document: str, blocks: dict[str, str]) -> str:
    """``document`` with every marked diagram replaced by the one ``blocks`` has for it."""
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            raise KeyError(f"the document has a diagram {name!r} the code does not make")
        seen.add(name)
        return match.group(1) + blocks[name] + "\n" + match.group(4)

    result = _BLOCK.sub(replace, document)
    missing = set(blocks) - seen
    if missing:
        raise KeyError(f"diagrams missing from the document: {', '.join(sorted(missing))}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rawws.tools.walkthrough",
                                     description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate the diagrams")
    group.add_argument("--check", action="store_true", help="exit 1 if they are out of date")
    parser.add_argument("--document", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    current = args.document.read_text(encoding="utf-8")
    fresh = update(current, render())
    if args.write:
        if fresh != current:
            args.document.write_text(fresh, encoding="utf-8")
            print(f"{args.document}: diagrams regenerated")
        return 0
    if fresh != current:
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(True), fresh.splitlines(True), "document", "code"))
        print(f"{args.document} disagrees with the code: run "
              "python -m rawws.tools.walkthrough --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
