"""The named attacks of ``rawws craft --attack NAME`` (``--list`` shows them).

Each attack is a craft script (:mod:`rawws.tools.craftscript`) with the RFC section it tests
and the reaction the RFC requires, written as ``expect`` steps; a testee that reacts otherwise
makes craft exit with status 1. Attacks marked "echo" assume an echo server (``rawws echo``
is one); the rest only need a WebSocket endpoint. Client-side attacks (``--serve``) play the
misbehaving server against a client that connects.

Limits: ``huge-length`` and ``deflate-bomb`` expect 1009 from a server with a message size
limit (rawws' default is 1 MiB); ``slowloris`` expects the server to drop a handshake that
never ends (rawws: after its open timeout, 10 s by default).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ATTACKS", "Attack"]


@dataclass(frozen=True)
class Attack:
    name: str
    section: str
    summary: str
    script: str
    #: "client" attacks run against servers (craft URL); "server" ones with --serve.
    side: str = "client"
    echo: bool = False


ATTACKS: dict[str, Attack] = {a.name: a for a in (
    # --- frames, against a server ----------------------------------------------------------
    Attack("rsv-bits", "RFC 6455 §5.2", "a text frame with RSV1 set and no extension agreed",
           'send text "hello" rsv1=1\nexpect close 1002\nexpect drop'),
    Attack("reserved-opcode", "RFC 6455 §5.2", "a data frame with the reserved opcode 3",
           'send frame opcode=3 "x"\nexpect close 1002\nexpect drop'),
    Attack("reserved-control-opcode", "RFC 6455 §5.2", "a frame with the reserved opcode 11",
           "send frame opcode=11\nexpect close 1002\nexpect drop"),
    Attack("unmasked-frame", "RFC 6455 §5.1", "a client frame without a mask",
           'send text "hello" mask=none\nexpect close 1002\nexpect drop'),
    Attack("oversized-control", "RFC 6455 §5.5", "a ping with 126 bytes of payload",
           "send ping zeros:126\nexpect close 1002\nexpect drop"),
    Attack("fragmented-control", "RFC 6455 §5.5", "a ping split into two fragments",
           'send ping "a" fin=0\nsend cont "b"\nexpect close 1002\nexpect drop'),
    Attack("orphan-continuation", "RFC 6455 §5.4", "a continuation frame with nothing to"
           " continue", 'send cont "x"\nexpect close 1002\nexpect drop'),
    Attack("interleaved-fragments", "RFC 6455 §5.4", "a new text message before the"
           " fragmented one ended", 'send text "a" fin=0\nsend text "b"\nexpect close 1002'
           "\nexpect drop"),
    Attack("length-msb", "RFC 6455 §5.2", "a 64-bit payload length with its most significant"
           " bit set", "send binary length=2**63 length-field=64\nexpect close 1002\n"
           "expect drop"),
    Attack("huge-length", "RFC 6455 §10.4", "a frame that declares 2**62 bytes (the server"
           " must refuse it before buffering)", "send binary length=2**62 length-field=64\n"
           "expect close 1009\nexpect drop"),
    Attack("non-minimal-length", "RFC 6455 §5.2", "'hello' with its length in a 64-bit field"
           " (a sender's MUST; receivers may accept it)", 'send text "hello"'
           " length-field=64\nread 0.5", echo=True),
    Attack("split-utf8", "RFC 6455 §5.6", "valid text split inside a UTF-8 sequence across"
           " fragments (must be accepted)", 'send text hex:48c3 fin=0\nsend cont hex:a96c6c6f\n'
           'expect text "Héllo"', echo=True),
    Attack("invalid-utf8", "RFC 6455 §8.1", "a text message that is not UTF-8 (an encoded"
           " surrogate)", "send text hex:cebae1bdb9cf83cebcceb5eda080656469746564\n"
           "expect close 1007\nexpect drop"),
    Attack("invalid-utf8-fail-fast", "RFC 6455 §8.1", "the first fragment already invalid;"
           " the rest never comes (fail before the end of the message)",
           "send text hex:cebae1bdf49080 fin=0\nexpect close 1007\nexpect drop"),
    Attack("bad-close-code", "RFC 6455 §7.4.1", "a close frame with 1005, which must never be"
           " sent", "send close 1005\nexpect close 1002\nexpect drop"),
    Attack("close-one-byte", "RFC 6455 §5.5.1", "a close frame with a 1-byte body",
           "send close hex:03\nexpect close 1002\nexpect drop"),
    Attack("close-invalid-reason", "RFC 6455 §8.1", "a close reason that is not UTF-8",
           "send close 1000 hex:ff\nexpect close 1002,1007\nexpect drop"),
    Attack("data-after-close", "RFC 6455 §5.5.1", "a text message after our close frame"
           " (must be ignored)", 'set reply-close=0\nsend close 1000\nsend text "late"\n'
           "expect close 1000\nexpect drop"),
    Attack("ping-flood", "RFC 6455 §5.5.3", "1000 pings back to back; the last must be"
           " answered (the others may be)", "\n".join(['send ping "p"'] * 999)
           + '\nsend ping "last"\nexpect pong "last"'),
    Attack("deflate-bomb", "RFC 6455 §10.4, RFC 7692 §7.2.2", "100 MB of zeros compressed to"
           " about 100 KB, after agreeing permessage-deflate",
           'handshake extensions="permessage-deflate"\nexpect status 101\n'
           "send binary deflate:zeros:100000000 rsv1=1\nexpect close 1009\nexpect drop"),
    # --- the opening handshake, against a server -------------------------------------------
    Attack("slowloris", "RFC 6455 §10.4", "an upgrade request written one byte every"
           " 0.2 s, for ever", "handshake chop=1 delay=0.2 headers=100000\nexpect drop"),
    Attack("header-flood", "RFC 6455 §10.4, RFC 6585 §5", "an upgrade request with 10,000"
           " headers", "handshake headers=10000\nexpect status 400,413,431\nexpect drop"),
    Attack("huge-header", "RFC 6455 §10.4, RFC 6585 §5", "one header line of 1 MiB",
           "handshake header-size=1M\nexpect status 400,413,431\nexpect drop"),
    Attack("bad-version", "RFC 6455 §4.4", "Sec-WebSocket-Version: 8",
           "handshake version=8\nexpect status 426\nexpect drop"),
    Attack("missing-key", "RFC 6455 §4.2.1", "no Sec-WebSocket-Key",
           "handshake omit=sec-websocket-key\nexpect status 400\nexpect drop"),
    Attack("not-get", "RFC 6455 §4.1", "the upgrade request is a POST",
           "handshake method=POST\nexpect status 400,405\nexpect drop"),
    # --- frames and handshakes, against a client (--serve) ---------------------------------
    Attack("masked-server-frame", "RFC 6455 §5.1", "the server masks a frame",
           'respond\nsend text "hello" mask=auto\nexpect close 1002', side="server"),
    Attack("server-rsv-bits", "RFC 6455 §5.2", "the server sets RSV2",
           'respond\nsend text "hello" rsv2=1\nexpect close 1002', side="server"),
    Attack("server-invalid-utf8", "RFC 6455 §8.1", "the server sends invalid UTF-8",
           "respond\nsend text hex:ff\nexpect close 1007", side="server"),
    Attack("bogus-accept", "RFC 6455 §4.1", "a wrong Sec-WebSocket-Accept (the client must"
           " not open the connection)", "respond accept=bogus\nexpect drop", side="server"),
    Attack("unrequested-extension", "RFC 6455 §9.1", "the server agrees to an extension the"
           " client did not offer", 'respond extensions="x-unknown"\nexpect drop',
           side="server"),
)}
