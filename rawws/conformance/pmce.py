"""permessage-deflate as the test suite speaks it (RFC 7692): offers, answers, and the codec.

Owns: the ``Sec-WebSocket-Extensions`` grammar as Autobahn's fuzzer parses it, the offers the
12.x/13.x cases make as a client and the answers they give as a server (RFC 7692 §7.1), and a
small zlib codec that compresses *every* message once the extension is agreed (§7.2.1) and
inflates what the testee sends (§7.2.2).

Deliberately independent of :mod:`rawws.sansio.deflate`: the suite judges rawws too, and a
codec bug shared by the judge and the judged would cancel out. What the cases need is simple —
a compressor and a decompressor per direction, reset per message when a side asked for no
context takeover — so it is written again here, small, in Autobahn's terms:

* an **offer** (client to server) says which parameters the client accepts
  (``client_no_context_takeover``, ``client_max_window_bits``) and requests
  (``server_no_context_takeover``, ``server_max_window_bits=N``);
* an **accept** (server) picks one offer and may request the client-side parameters;
* a **response** (what the client reads back) lists the agreed parameters.

One quirk is kept because verdicts depend on it: when Autobahn parses a client's offer, it
records that the client accepts ``client_no_context_takeover`` even when the offer does not say
so, and the 13.2.x/13.5.x-13.7.x answers then request it. The clients we test all accept it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = [
    "WINDOW_BITS",
    "Deflate",
    "DeflateAccept",
    "DeflateOffer",
    "DeflateResponse",
    "ExtensionOffers",
    "parse_extensions",
]

NAME = "permessage-deflate"
#: RFC 7692 §7.1.2.1: a window size of 2**8 to 2**15 bytes.
WINDOW_BITS = range(8, 16)
_TAIL = b"\x00\x00\xff\xff"

#: ``[(extension name, {parameter: [value or True, ...]})]``, in header order.
ExtensionOffers = list[tuple[str, dict[str, list[str | bool]]]]


def parse_extensions(header: str) -> ExtensionOffers:
    """Split a ``Sec-WebSocket-Extensions`` value the lenient way Autobahn does.

    Comma-separated extensions, ``;``-separated parameters, ``name=value`` or a bare ``name``
    (value ``True``); one pair of surrounding double quotes is removed from values; names are
    lower-cased. Nothing is rejected here: the parameter checks are in the ``parse`` methods.
    """
    extensions: ExtensionOffers = []
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        parts = [part.strip() for part in item.split(";")]
        params: dict[str, list[str | bool]] = {}
        for part in parts[1:]:
            key, sep, raw = (piece.strip() for piece in part.partition("="))
            value: str | bool = True
            if sep:
                value = raw[1:] if raw.startswith('"') else raw
                value = value[:-1] if value.endswith('"') else value
            params.setdefault(key.lower(), []).append(value)
        extensions.append((parts[0].lower(), params))
    return extensions


def _single(params: dict[str, list[str | bool]], name: str) -> str | bool:
    values = params[name]
    if len(values) > 1:
        raise ValueError(f"parameter {name!r} of {NAME} appears more than once")
    return values[0]


def _window_bits(name: str, value: str | bool) -> int:
    try:
        bits = int(value) if not isinstance(value, bool) else -1
    except ValueError:
        bits = -1
    if bits not in WINDOW_BITS:
        raise ValueError(f"illegal value {value!r} for {name} of {NAME}")
    return bits


@dataclass(frozen=True, slots=True)
class DeflateOffer:
    """One permessage-deflate offer, as a client makes it or a server reads it (§7.1)."""

    accept_no_context_takeover: bool = True
    accept_max_window_bits: bool = True
    request_no_context_takeover: bool = False
    request_max_window_bits: int = 0

    def header(self) -> str:
        parts = [NAME]
        if self.accept_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.accept_max_window_bits:
            parts.append("client_max_window_bits")
        if self.request_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.request_max_window_bits:
            parts.append(f"server_max_window_bits={self.request_max_window_bits}")
        return "; ".join(parts)

    @classmethod
    def parse(cls, params: dict[str, list[str | bool]]) -> DeflateOffer:
        """Read a client's offer; ``ValueError`` for a parameter §7.1 does not allow."""
        accept_max_window_bits = False
        request_no_context_takeover = False
        request_max_window_bits = 0
        for name in params:
            value = _single(params, name)
            if name == "client_max_window_bits":
                if value is not True:
                    _window_bits(name, value)
                accept_max_window_bits = True
            elif name == "client_no_context_takeover":
                if value is not True:
                    raise ValueError(f"{name} of {NAME} takes no value")
            elif name == "server_max_window_bits":
                request_max_window_bits = _window_bits(name, value)
            elif name == "server_no_context_takeover":
                if value is not True:
                    raise ValueError(f"{name} of {NAME} takes no value")
                request_no_context_takeover = True
            else:
                raise ValueError(f"unknown parameter {name!r} of {NAME}")
        # Autobahn's quirk, kept (see the module docstring): always "accepts no context takeover".
        return cls(True, accept_max_window_bits, request_no_context_takeover,
                   request_max_window_bits)


@dataclass(frozen=True, slots=True)
class DeflateAccept:
    """A server's acceptance of one offer, with what it requests of the client (§7.1)."""

    offer: DeflateOffer
    request_no_context_takeover: bool = False
    request_max_window_bits: int = 0

    def __post_init__(self) -> None:
        if self.request_no_context_takeover and not self.offer.accept_no_context_takeover:
            raise ValueError("the client did not offer client_no_context_takeover")
        if self.request_max_window_bits and not self.offer.accept_max_window_bits:
            raise ValueError("the client did not offer client_max_window_bits")

    def header(self) -> str:
        parts = [NAME]
        if self.offer.request_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.offer.request_max_window_bits:
            parts.append(f"server_max_window_bits={self.offer.request_max_window_bits}")
        if self.request_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.request_max_window_bits:
            parts.append(f"client_max_window_bits={self.request_max_window_bits}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class DeflateResponse:
    """The parameters a server answered with, as the client reads them (§7.1)."""

    client_max_window_bits: int = 0
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 0
    server_no_context_takeover: bool = False

    @classmethod
    def parse(cls, params: dict[str, list[str | bool]]) -> DeflateResponse:
        values: dict[str, int | bool] = {}
        for name in params:
            value = _single(params, name)
            if name in ("client_max_window_bits", "server_max_window_bits"):
                values[name] = _window_bits(name, value)
            elif name in ("client_no_context_takeover", "server_no_context_takeover"):
                if value is not True:
                    raise ValueError(f"{name} of {NAME} takes no value")
                values[name] = True
            else:
                raise ValueError(f"unknown parameter {name!r} of {NAME}")
        return cls(**values)  # type: ignore[arg-type]


class Deflate:
    """The agreed permessage-deflate on one connection: compress what we send, inflate what we
    receive. ``local`` is our direction, ``remote`` the testee's."""

    def __init__(self, *, local_no_context_takeover: bool, local_max_window_bits: int,
                 remote_no_context_takeover: bool, remote_max_window_bits: int,
                 params: dict[str, object]) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.local_max_window_bits = local_max_window_bits or 15
        self.remote_no_context_takeover = remote_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits or 15
        #: What was agreed, for the report.
        self.params = params
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    @classmethod
    def for_server(cls, accept: DeflateAccept) -> Deflate:
        offer = accept.offer
        return cls(local_no_context_takeover=offer.request_no_context_takeover,
                   local_max_window_bits=offer.request_max_window_bits,
                   remote_no_context_takeover=accept.request_no_context_takeover,
                   remote_max_window_bits=accept.request_max_window_bits,
                   params={"offer": offer.header(), "accepted": accept.header()})

    @classmethod
    def for_client(cls, response: DeflateResponse, header: str) -> Deflate:
        return cls(local_no_context_takeover=response.client_no_context_takeover,
                   local_max_window_bits=response.client_max_window_bits,
                   remote_no_context_takeover=response.server_no_context_takeover,
                   remote_max_window_bits=response.server_max_window_bits,
                   params={"response": header})

    def compress_message(self, data: bytes) -> bytes:
        """One whole message: compress, sync-flush, drop the 4-byte tail (§7.2.1)."""
        if self._compressor is None or self.local_no_context_takeover:
            bits = self.local_max_window_bits
            # zlib cannot make a raw deflate stream with an 8-bit window; a 9-bit window with
            # Z_RLE (all distances 1) stays inside any window.
            strategy = zlib.Z_RLE if bits == 8 else zlib.Z_DEFAULT_STRATEGY
            self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                                -max(bits, 9), 8, strategy)
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(_TAIL) else out

    def start_decompress(self) -> None:
        if self._decompressor is None or self.remote_no_context_takeover:
            self._decompressor = zlib.decompressobj(-self.remote_max_window_bits)

    def decompress(self, data: bytes) -> bytes:
        assert self._decompressor is not None
        return self._decompressor.decompress(data)

    def end_decompress(self) -> None:
        """§7.2.2: append the tail the sender removed."""
        assert self._decompressor is not None
        self._decompressor.decompress(_TAIL)
