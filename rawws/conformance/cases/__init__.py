"""The catalogue: every case of Autobahn's fuzzing modes 1.x-13.x, by id, and case selection.

Each family lives in its own module and registers its cases with :func:`define` as it is
imported: ``framing`` (1.x framing, 2.x pings and pongs, 3.x reserved bits, 4.x opcodes, 5.x
fragmentation), ``utf8`` (6.x), ``closing`` (7.x), ``limits`` (9.x limits and performance,
10.x auto-fragmentation), ``compression`` (12.x and 13.x, permessage-deflate).

The ids, the order, what each case sends and how it is judged are those of the Autobahn
testsuite (autobahntestsuite 25.10.1, the version ``make conformance`` runs): its case classes
are the specification this package was written from. The descriptions are ours, with the RFC
section each case exercises.

Selecting cases (:func:`select`) follows wstest's spec files: a pattern with ``*`` matches case
ids from their start (``"1.*"``, ``"12.1.*"``; ``.`` is literal, ``*`` any run of characters),
a pattern without ``*`` names one case; excluded patterns are removed; the result is sorted by
id, numerically.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ..case import Case

__all__ = ["CATEGORIES", "REGISTRY", "all_ids", "define", "get", "id_key", "select"]

#: Case id -> class, in definition order.
REGISTRY: dict[str, type[Case]] = {}

#: Names of the case groups, for reports.
CATEGORIES: dict[str, str] = {
    "1": "Framing", "1.1": "Text messages", "1.2": "Binary messages",
    "2": "Pings and pongs",
    "3": "Reserved bits",
    "4": "Opcodes", "4.1": "Reserved data opcodes", "4.2": "Reserved control opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "6.1": "Valid UTF-8 in empty fragments",
    "6.2": "Valid UTF-8, fragmented on and inside code points",
    "6.3": "Invalid UTF-8, fragmented in different ways",
    "6.4": "Failing fast on invalid UTF-8",
    "7": "Close handling",
    "7.1": "Basic close behaviour", "7.3": "Close frame payload length",
    "7.5": "Close frame payload value", "7.7": "Valid close codes",
    "7.9": "Invalid close codes", "7.13": "Close codes the RFC leaves open",
    "9": "Limits and performance",
    "9.1": "Text message, increasing size", "9.2": "Binary message, increasing size",
    "9.3": "Fragmented text message, increasing fragment size",
    "9.4": "Fragmented binary message, increasing fragment size",
    "9.5": "Text message, increasing chop size", "9.6": "Binary message, increasing chop size",
    "9.7": "Text message round trips, increasing size",
    "9.8": "Binary message round trips, increasing size",
    "10": "Miscellaneous", "10.1": "Auto-fragmentation",
    "12": "permessage-deflate, different payloads",
    "13": "permessage-deflate, different parameters",
}


def id_key(case_id: str) -> tuple[int, ...]:
    """``"9.10.2"`` -> ``(9, 10, 2)``: the numeric order of case ids."""
    return tuple(int(part) for part in case_id.split("."))


def define(case_id: str, description: str, expectation: str, *,
           base: type[Case] = Case, **attributes: Any,
           ) -> Callable[[Callable[[Any], None]], type[Case]]:
    """Register a case whose ``on_open`` is the decorated function (its argument is the case)."""

    def register(on_open: Callable[[Any], None]) -> type[Case]:
        namespace = {"id": case_id, "description": description, "expectation": expectation,
                     "on_open": on_open, "__qualname__": f"Case {case_id}", **attributes}
        cls = type(f"Case_{case_id.replace('.', '_')}", (base,), namespace)
        if case_id in REGISTRY:
            raise ValueError(f"case {case_id} defined twice")
        REGISTRY[case_id] = cls
        return cls

    return register


def _load() -> None:
    from . import closing, compression, framing, limits, utf8  # noqa: F401  (they register)


def all_ids() -> list[str]:
    """Every case id, in numeric order."""
    return sorted(REGISTRY, key=id_key)


def get(case_id: str) -> type[Case]:
    return REGISTRY[case_id]


def _resolve(patterns: Iterable[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if "*" in pattern:
            regex = re.compile(re.escape(pattern).replace(r"\*", ".*"))
            found += [case_id for case_id in all_ids() if regex.match(case_id)]
        elif pattern in REGISTRY:
            found.append(pattern)
        else:
            raise KeyError(f"no case {pattern!r}")
    return found


def select(patterns: Iterable[str] = ("*",), exclude: Iterable[str] = ()) -> list[str]:
    """The case ids ``patterns`` name, minus those ``exclude`` names, in numeric order."""
    chosen = set(_resolve(patterns)) - set(_resolve(exclude))
    return sorted(chosen, key=id_key)


def agent_excluded(rules: dict[str, list[str]], agent: str, case_id: str) -> bool:
    """wstest's ``exclude-agent-cases``: {agent pattern: [case patterns]}, whole-name matches."""

    def full(pattern: str) -> re.Pattern[str]:
        return re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")

    return any(full(a).match(agent) and any(full(c).match(case_id) for c in cases)
               for a, cases in rules.items())


_load()
