"""The payloads of the compression cases (12.x, 13.x): five corpora of different kinds.

Autobahn slices its messages out of five files it ships (a JSON document, an HTML page, a
bitmap, a German book as UTF-8 bytes, a PDF). We do not ship those files; by default each corpus
is *generated*, deterministically, with the same kind, size and roughly the same
compressibility, so that every run sends the same bytes:

==================  ======  =====================================================
``json_data1``      text    a JSON report (ASCII), ~190 KiB
``lena512``         binary  an 8-bit grey bitmap, 512x512, smooth with noise
``gutenberg_faust`` binary  German verse as UTF-8 (umlauts: multi-byte), ~215 KiB
``html_data1``      text    an HTML report with some non-ASCII text, ~255 KiB
``ooms``            binary  a PDF-like file, mostly incompressible, ~1 MiB
==================  ======  =====================================================

``--testdata DIR`` (or :func:`use_directory`) takes the corpora from Autobahn's own files
instead (``autobahntestsuite/testdata`` in its install), for byte-identical messages.
"""

from __future__ import annotations

import json
import random as _random
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

__all__ = ["CORPORA", "Corpus", "load", "use_directory"]


class Corpus:
    def __init__(self, name: str, description: str, binary: bool, filename: str,
                 generate: Callable[[], bytes]) -> None:
        self.name, self.description, self.binary = name, description, binary
        self.filename, self.generate = filename, generate


_directory: Path | None = None


def use_directory(path: str | Path | None) -> None:
    """Read the corpora from Autobahn's testdata directory (``None``: generate them)."""
    global _directory
    _directory = None if path is None else Path(path)
    load.cache_clear()
    text.cache_clear()


def _json_report() -> bytes:
    rng = _random.Random(1)
    behaviors = ["OK"] * 40 + ["NON-STRICT", "FAILED", "INFORMATIONAL"]
    report: dict[str, dict[str, dict[str, object]]] = {}
    for agent in ("AutobahnPython/0.6.0", "rawws/0.1", "websockets/17.4", "aiohttp/3.14"):
        cases: dict[str, dict[str, object]] = {}
        for major in range(1, 8):
            for minor in range(1, 9):
                for n in range(1, 5):
                    case_id = f"{major}.{minor}.{n}"
                    slug = agent.lower().replace("/", "_").replace(".", "_")
                    cases[case_id] = {
                        "behavior": rng.choice(behaviors),
                        "behaviorClose": rng.choice(behaviors),
                        "duration": rng.randint(0, 2000),
                        "remoteCloseCode": rng.choice([1000, 1000, 1002, 1007, None]),
                        "reportfile": f"{slug}_case_{case_id.replace('.', '_')}.json",
                    }
        report[agent] = cases
    return json.dumps(report, indent=3, sort_keys=True).encode()


def _bitmap() -> bytes:
    rng = _random.Random(2)
    width = height = 512
    palette = b"".join(bytes((g, g, g, 0)) for g in range(256))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + width * height, 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, width * height, 2835, 2835,
                       256, 0)
    rows = bytearray()
    for y in range(height):
        for x in range(width):
            value = (x * 3 + y * 5 + ((x * y) >> 9)) // 4 + rng.randint(-6, 6)
            rows.append(max(0, min(255, value)) & 0xFF)
    return header + info + palette + bytes(rows)


_VERSE = ("Habe nun ach Philosophie Juristerei und Medizin und leider auch Theologie"
          " durchaus studiert mit heißem Bemühn da steh ich nun ich armer Tor und bin so klug"
          " als wie zuvor heiße Magister heiße Doktor gar und ziehe schon an die zehen Jahr"
          " herauf herab und quer und krumm meine Schüler an der Nase herum und sehe daß wir"
          " nichts wissen können das will mir schier das Herz verbrennen Grübeln Überdruß"
          " Würde Größe Mächte Geister fürwahr dämmernd schöner Öde")
_WORDS = tuple(_VERSE.split(" "))


def _verse() -> bytes:
    rng = _random.Random(3)
    lines = ["Faust. Der Tragödie erster Teil (a generated stand-in)", ""]
    size = 0
    while size < 220_000:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 9)))
        line = line[0].upper() + line[1:] + rng.choice([",", ".", ";", "!", ""])
        lines.append(line)
        if rng.random() < 0.12:
            lines += ["", rng.choice(["FAUST:", "MEPHISTOPHELES:", "GRETCHEN:", "WAGNER:"])]
        size += len(line.encode()) + 1
    return "\r\n".join(lines).encode()


def _html_report() -> bytes:
    rng = _random.Random(4)
    parts = ["<!DOCTYPE html>\n<html>\n   <head>\n      <meta charset=\"utf-8\" />\n",
             "      <style lang=\"css\">body { font-family: sans-serif; }</style>\n",
             "   </head>\n   <body>\n      <h1>Conformance report — générée</h1>\n",
             "      <table id=\"agent_case_results\">\n"]
    n = 0
    while sum(len(p) for p in parts) < 255_000:
        n += 1
        behavior = rng.choice(["Pass", "Pass", "Pass", "Non-Strict", "Fail", "Info"])
        css = {"Pass": "case_ok", "Non-Strict": "case_non_strict", "Fail": "case_failed",
               "Info": "case_info"}[behavior]
        parts.append(f"         <tr class=\"agent_case_result_row\"><td class=\"case\">"
                     f"<a href=\"#case_desc_{n}\">Case {n // 40 + 1}.{n % 40}</a></td>"
                     f"<td class=\"{css}\"><a href=\"agent_case_{n}.html\">{behavior}</a>"
                     f"<br/><span class=\"case_duration\">{rng.randint(1, 900)} ms</span></td>"
                     f"<td class=\"close {css}\">{rng.choice([1000, 1002, 1007])}</td></tr>\n")
        if n % 500 == 0:
            parts.append("      <p>Résumé: Übersicht über die Fälle — ✓</p>\n")
    parts.append("      </table>\n   </body>\n</html>\n")
    return "".join(parts).encode()


def _pdf_like() -> bytes:
    rng = _random.Random(5)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    obj = 0
    while len(out) < 1_040_000:
        obj += 1
        if obj % 4:
            stream = rng.randbytes(rng.randint(2000, 9000))  # compressed image data
        else:
            stream = (" ".join(rng.choice(_WORDS) for _ in range(300))).encode("latin-1",
                                                                              "replace")
        out += (f"{obj} 0 obj\n<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n"
                .encode())
        out += stream + b"\nendstream\nendobj\n"
    out += b"trailer\n<< /Size %d >>\n%%%%EOF\n" % obj
    return bytes(out)


#: In Autobahn's order of the 12.x groups.
CORPORA: dict[str, Corpus] = {c.name: c for c in (
    Corpus("json_data1", "Large JSON data file", False, "data1.json", _json_report),
    Corpus("lena512", "Picture, bitmap 512x512 grey", True, "lena512.bmp", _bitmap),
    Corpus("gutenberg_faust", "Human readable text, Goethe's Faust I (German)", True,
           "pg2229.txt", _verse),
    Corpus("html_data1", "Large HTML file", False, "data1.html", _html_report),
    Corpus("ooms", "A larger PDF", True, "10.1.1.105.5439.pdf", _pdf_like),
)}


@cache
def load(name: str) -> bytes:
    """The bytes of one corpus."""
    corpus = CORPORA[name]
    if _directory is not None:
        return (_directory / corpus.filename).read_bytes()
    return corpus.generate()


@cache
def text(name: str) -> str:
    """A text corpus, decoded: text messages are sliced by code points, as Autobahn does."""
    return load(name).decode("utf-8")
