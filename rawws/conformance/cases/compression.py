"""Cases 12.x and 13.x: permessage-deflate (RFC 7692).

Each case sends 1000 compressed messages of one size, one after the other, each after the
echo of the previous one, and compares every echo with what was sent (type, length, SHA-1).
Messages are consecutive slices of a corpus (:mod:`.corpora`), wrapping around at its end.
Some cases fragment the compressed messages (auto-fragment size 256 to 32768 bytes, §5.4 and
RFC 7692 §6.1: only the first frame carries RSV1).

* 12.x: the five corpora, the default offer (``client_no_context_takeover;
  client_max_window_bits``), the server accepts it as offered.
* 13.x: one corpus (JSON), seven combinations of offers and answers: context takeover on or
  off, window bits 9 or 15 (RFC 7692 §7.1.1, §7.1.2).

A testee that does not agree to permessage-deflate gets ``UNIMPLEMENTED`` and a normal close.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import ClassVar

from ..case import FAILED, OK, UNIMPLEMENTED, Case
from ..pmce import Deflate, DeflateAccept, DeflateOffer, DeflateResponse, parse_extensions
from . import CATEGORIES, corpora, define

#: (message size, messages, seconds allowed, auto-fragment size).
MESSAGE_SIZES = [
    (16, 1000, 60, 0), (64, 1000, 60, 0), (256, 1000, 120, 0), (1024, 1000, 240, 0),
    (4096, 1000, 480, 0), (8192, 1000, 480, 0), (16384, 1000, 480, 0), (32768, 1000, 480, 0),
    (65536, 1000, 480, 0), (131072, 1000, 480, 0),
    (8192, 1000, 480, 256), (16384, 1000, 480, 256), (32768, 1000, 480, 256),
    (65536, 1000, 480, 256), (131072, 1000, 480, 256), (131072, 1000, 480, 1024),
    (131072, 1000, 480, 4096), (131072, 1000, 480, 32768),
]

Accept = Callable[[Sequence[DeflateOffer]], DeflateAccept | None]


class _Compressed(Case):
    report_time = True
    report_compression_ratio = True
    corpus: ClassVar[str] = "json_data1"
    length: ClassVar[int] = 16
    count: ClassVar[int] = 1000
    wait: ClassVar[int] = 60
    fragment: ClassVar[int] = 0
    accept: ClassVar[Accept]

    def server_accept(self, offers: list[DeflateOffer]) -> DeflateAccept | None:
        return type(self).accept(offers)

    def accept_response(self, header: str) -> Deflate | None:
        """As a client: take any permessage-deflate answer with valid parameters, once."""
        found: Deflate | None = None
        for name, params in parse_extensions(header):
            if name != "permessage-deflate":
                raise ValueError(f"server wants extension {name!r}, which we did not offer")
            if found is not None:
                raise ValueError("multiple occurrence of a permessage-compress extension")
            found = Deflate.for_client(DeflateResponse.parse(params), header)
        return found

    def on_open(self) -> None:
        self.peer.enable_wirelog(False)
        self.peer.auto_fragment_size = self.fragment
        self.binary = corpora.CORPORA[self.corpus].binary
        self.position = 0
        if self.peer.pmce is None:
            self.behavior = UNIMPLEMENTED
            self.peer.send_close(1000)
            return
        self.behavior = FAILED
        self.result = f"Case did not finish within {self.wait} seconds."
        self.peer.close_after(self.wait)
        self.sent = 0
        self.send_one()

    def _next_slice(self) -> bytes:
        start = self.position
        if self.binary:
            data = corpora.load(self.corpus)
            end = (start + self.length) % len(data)
            self.position = end
            return data[start:end] if end > start else data[start:] + data[:end]
        text = corpora.text(self.corpus)
        end = (start + self.length) % len(text)
        self.position = end
        return (text[start:end] if end > start else text[start:] + text[:end]).encode()

    def send_one(self) -> None:
        payload = self._next_slice()
        self.digest = hashlib.sha1(payload).digest()
        self.peer.send_message(payload, self.binary)
        self.sent += 1

    def on_message(self, payload: bytes, binary: bool) -> None:
        digest = hashlib.sha1(payload).digest()
        length = len(payload) if self.binary else len(payload.decode("utf-8", "replace"))
        if binary != self.binary or length != self.length or digest != self.digest:
            self.behavior = FAILED
            if binary != self.binary:
                self.result = (f"Echo'ed message type differs from what I sent (got binary"
                               f" {binary}, expected binary {self.binary}).")
            elif length != self.length:
                self.result = (f"Echo'ed message length differs from what I sent (got length"
                               f" {length}, expected length {self.length}).")
            else:
                self.result = (f"Echo'ed message contents differs from what I sent (got SHA1"
                               f" {digest.hex()}, expected SHA1 {self.digest.hex()}).")
        elif self.sent < self.count:
            self.send_one()
            return
        else:
            self.behavior = OK
            self.result = "Ok, received all echo'ed messages in time."
            self.traffic_stats = self.peer.traffic.to_json()
        self.peer.enable_wirelog(True)
        self.peer.send_close(1000)


# --- the server's answers (13.x) ---------------------------------------------------------------

def _answer(no_context_takeover: bool, window_bits: int) -> Accept:
    """Accept the first offer that allows what we request of the client."""

    def accept(offers: Sequence[DeflateOffer]) -> DeflateAccept | None:
        for offer in offers:
            if no_context_takeover and not offer.accept_no_context_takeover:
                continue
            if window_bits and not offer.accept_max_window_bits:
                continue
            return DeflateAccept(offer, request_no_context_takeover=no_context_takeover,
                                 request_max_window_bits=window_bits)
        return None

    return accept


def _first_of(*answers: Accept) -> Accept:
    def accept(offers: Sequence[DeflateOffer]) -> DeflateAccept | None:
        for answer in answers:
            if (chosen := answer(offers)) is not None:
                return chosen
        return None

    return accept


_AS_OFFERED = _answer(False, 0)
#: (client offers, server answer, what the answer requests: (no context takeover, bits)...)
PARAMETERS: list[tuple[tuple[DeflateOffer, ...], Accept, str]] = [
    ((DeflateOffer(),), _AS_OFFERED, "[(False, 0)]"),
    ((DeflateOffer(request_no_context_takeover=True),), _answer(True, 0), "[(True, 0)]"),
    ((DeflateOffer(request_max_window_bits=9),), _answer(False, 9), "[(False, 9)]"),
    ((DeflateOffer(request_max_window_bits=15),), _answer(False, 15), "[(False, 15)]"),
    ((DeflateOffer(request_no_context_takeover=True, request_max_window_bits=9),),
     _answer(True, 9), "[(True, 9)]"),
    ((DeflateOffer(request_no_context_takeover=True, request_max_window_bits=15),),
     _answer(True, 15), "[(True, 15)]"),
    ((DeflateOffer(request_no_context_takeover=True, request_max_window_bits=9),
      DeflateOffer(request_no_context_takeover=True), DeflateOffer()),
     _first_of(_answer(True, 9), _answer(True, 0), _AS_OFFERED),
     "[(True, 9), (True, 0), (False, 0)]"),
]


def _register(case_id: str, corpus: str, size: tuple[int, int, int, int],
              offers: tuple[DeflateOffer, ...], accept: Accept, parameters: str) -> None:
    length, count, wait, fragment = size
    fragmented = f", auto-fragmented to {fragment} bytes" if fragment else ""
    define(case_id, f"Send {count} compressed messages of {length} bytes each{fragmented}"
           f" (RFC 7692 §7.2); permessage-deflate offers {parameters}"
           " (no context takeover, max window bits).",
           f"Every message comes back unchanged; the case ends within {wait} s.",
           base=_Compressed, corpus=corpus, length=length, count=count, wait=wait,
           fragment=fragment, client_offers=offers,
           accept=staticmethod(accept))(_Compressed.on_open)


for _group, _corpus in enumerate(corpora.CORPORA.values(), 1):
    _kind = "binary" if _corpus.binary else "UTF-8"
    CATEGORIES[f"12.{_group}"] = f"{_corpus.description} ({_kind})"
    for _n, _size in enumerate(MESSAGE_SIZES, 1):
        _register(f"12.{_group}.{_n}", _corpus.name, _size, (DeflateOffer(),), _AS_OFFERED,
                  "[(False, 0)]")

for _group, (_offers, _accept, _what) in enumerate(PARAMETERS, 1):
    CATEGORIES[f"13.{_group}"] = f"Large JSON data file; client offers {_what}"
    for _n, _size in enumerate(MESSAGE_SIZES, 1):
        _register(f"13.{_group}.{_n}", "json_data1", _size, _offers, _accept, _what)
