"""Keeping secrets out of logs: tokens travel in query strings (``?token=``), so request targets
are logged with every query value replaced, and a logging filter does the same to any record
(rawws's own DEBUG transcript includes request targets)."""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["RedactingFilter", "redact_target"]


def redact_target(target: str) -> str:
    """A request target safe to log: every query value replaced by ``***`` (keys kept)."""
    path, sep, query = target.partition("?")
    if not sep:
        return path
    keys = [part.partition("=")[0] for part in query.split("&") if part]
    return path + "?" + "&".join(f"{key[:32]}=***" for key in keys[:16])


class RedactingFilter(logging.Filter):
    """Redact query strings in any log record (rawws logs request targets at DEBUG level)."""

    _QUERY: Final = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg = self._QUERY.sub(lambda m: m.group(1) + "?[redacted]", message)
            record.args = None
        return True
