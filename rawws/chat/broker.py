"""``--broker redis://...``: what a broker URL says, checked before anything starts.

Owns: parsing and validating a broker URL (``redis://`` and ``rediss://``, credentials, database,
options in the query string), showing it without its password, and the broker's tunables with
their defaults. Standard library only: ``rawws serve`` parses its flags with this module without
importing redis-py, which only :mod:`rawws.chat.redis_link` does (and only once a broker is
configured).

Does not own: talking to Redis (:mod:`rawws.chat.redis_link`), what is kept there
(:mod:`rawws.chat.redis_store`) or how nodes share live state (:mod:`rawws.chat.bus`).

URL form (docs/scaling.md, "Configuration")::

    redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTION=VALUE&...]
    rediss://...            (TLS; ca_certs=PATH for a private CA)

The password may also come from ``$RAWWS_REDIS_URL`` (the whole URL) so that it never appears
in a process list. Options: ``prefix`` (key prefix, default ``rawws``), ``bus_length``
(entries kept on the bus stream for nodes that reconnect, default 20000), ``presence_ttl``
(seconds after which a silent node's members expire, default 5), ``heartbeat`` (seconds between
a node's heartbeats, default 1), ``timeout`` (seconds a Redis command may take before the
broker counts as down, default 2), ``persistence`` (``required``, the default: refuse a Redis
without AOF; ``off``: accept losing what was acknowledged when Redis restarts), ``ca_certs``,
``certfile``, ``keyfile`` (rediss only).
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass
from typing import Final

__all__ = ["BrokerConfig", "BrokerConfigError", "parse_broker_url"]

SCHEMES: Final = ("redis", "rediss")
_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class BrokerConfigError(ValueError):
    """Redis is reachable but cannot be used as configured (authentication, version,
    persistence): a startup error (``rawws serve`` exits 2)."""


@dataclass(frozen=True, kw_only=True)
class BrokerConfig:
    """A validated broker URL. ``repr`` and :attr:`display` never show the password."""

    tls: bool = False
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    #: Every key rawws writes starts with ``PREFIX:`` (several clusters may share one Redis).
    prefix: str = "rawws"
    #: Bus entries kept for a node that reconnects (XADD MAXLEN ~): past that it resyncs.
    bus_length: int = 20_000
    #: Seconds without a heartbeat after which a node is dead and its members expire.
    presence_ttl: float = 5.0
    #: Seconds between two heartbeats of a node.
    heartbeat: float = 1.0
    #: Seconds a command may wait for Redis before the broker counts as down.
    timeout: float = 2.0
    #: Refuse to start on a Redis without AOF (acknowledged messages would not survive it).
    require_persistence: bool = True
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __repr__(self) -> str:
        return f"BrokerConfig({self.display})"

    @property
    def display(self) -> str:
        """The URL as it may be logged: the password replaced by ``***``."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or self.password:
            auth = (urllib.parse.quote(self.username or "", safe="")
                    + (":***" if self.password else "") + "@")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}"


def _number(options: dict[str, str], name: str, default: float, *, low: float,
            integer: bool = False) -> float:
    raw = options.pop(name, None)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = math.nan
    if not (value >= low and math.isfinite(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"--broker: {name} must be {kind} >= {low:g}, not {raw!r}")
    return value


def parse_broker_url(url: str) -> BrokerConfig:
    """Check ``url`` and return its configuration; ``ValueError`` (one line, no password)
    for anything wrong."""
    if not url or not url.strip():
        raise ValueError("--broker is empty (expected redis://HOST:PORT/DB)")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"--broker: not a valid URL ({exc})") from None
    if parts.scheme not in SCHEMES:
        shown = parts.scheme or url.split(":", 1)[0][:20]
        raise ValueError(f"--broker must be redis://HOST[:PORT][/DB] or rediss://..., not "
                         f"{shown!r}://")
    if not parts.hostname:
        raise ValueError("--broker: no host (expected redis://HOST[:PORT][/DB])")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"--broker: the database must be a number (redis://HOST:PORT/0), not "
                         f"{path[:20]!r}")
    if parts.fragment:
        raise ValueError("--broker: unexpected #fragment in the URL")
    options: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True,
                                             strict_parsing=False):
        if key in options:
            raise ValueError(f"--broker: option {key!r} given twice")
        options[key] = value
    prefix = options.pop("prefix", "rawws")
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError("--broker: prefix must be 1-64 characters from A-Z a-z 0-9 _ . -")
    persistence = options.pop("persistence", "required")
    if persistence not in ("required", "off"):
        raise ValueError(f"--broker: persistence must be 'required' or 'off', not "
                         f"{persistence[:20]!r}")
    tls_files = {name: options.pop(name, None) for name in ("ca_certs", "certfile", "keyfile")}
    if parts.scheme != "rediss" and any(tls_files.values()):
        raise ValueError("--broker: ca_certs, certfile and keyfile need rediss:// (TLS)")
    presence_ttl = _number(options, "presence_ttl", BrokerConfig.presence_ttl, low=0.5)
    heartbeat = _number(options, "heartbeat", min(BrokerConfig.heartbeat, presence_ttl / 3),
                        low=0.05)
    if heartbeat * 2 > presence_ttl:
        raise ValueError(f"--broker: heartbeat ({heartbeat:g} s) must be at most half of "
                         f"presence_ttl ({presence_ttl:g} s), or live nodes would expire")
    config = BrokerConfig(
        tls=parts.scheme == "rediss",
        host=parts.hostname,
        port=port or 6379,
        db=int(path) if path else 0,
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password is not None else None,
        prefix=prefix,
        bus_length=int(_number(options, "bus_length", BrokerConfig.bus_length, low=100,
                               integer=True)),
        presence_ttl=presence_ttl,
        heartbeat=heartbeat,
        timeout=_number(options, "timeout", BrokerConfig.timeout, low=0.05),
        require_persistence=persistence == "required",
        **tls_files,
    )
    if options:
        raise ValueError(f"--broker: unknown option {sorted(options)[0]!r} (known: prefix, "
                         "bus_length, presence_ttl, heartbeat, timeout, persistence, ca_certs, "
                         "certfile, keyfile)")
    return config
