"""Who is on the other end of a request: which ``Host`` it may name, and which client address to
believe. Both checks run on every request, upgrade or plain HTTP, before anything else.

Owns: :class:`HostPolicy` (``--allowed-host``: the ``Host`` names this server answers for; any
other gets 421, which closes DNS rebinding) and :class:`ProxyPolicy` (``--trusted-proxy``: the
only peers whose ``X-Forwarded-For`` is believed, for rate limits and per-address caps).

Theory of operation:

1. DNS rebinding: a page on ``evil.example`` whose name the attacker re-points at 127.0.0.1 (or
   at a LAN address) makes the victim's browser talk to this server as if it were
   ``evil.example``: same-origin from the browser's point of view, so the page can read the API
   and open WebSockets. The one thing the attacker cannot change is the ``Host`` header: it
   names ``evil.example``. So a request is answered only if its ``Host`` names this server.
2. The default set (``allowed_hosts=None``), from what the server is bound to:

   * always the bind address itself, and the hosts of ``--allow-origin`` origins;
   * bound to loopback (127.0.0.0/8, ::1, ``localhost``): ``localhost`` and every loopback
     address literal;
   * bound to every interface (``0.0.0.0``, ``::``, ``""``): the localhost names, this
     machine's host name (``socket.gethostname()``), and **any IP address literal**. An IP
     literal cannot be rebound (rebinding needs a DNS name the attacker controls), so
     ``http://192.168.1.5:8765`` works out of the box; a DNS name such as ``chat.example``
     needs ``--allowed-host chat.example``.

   ``--allowed-host NAME`` (repeatable) replaces the default with exactly the names given
   (``*.example.com`` matches its subdomains, ``*`` matches anything: the explicit way to turn
   the check off). The port is not compared: rebinding keeps the port.
3. Names are compared case-insensitively, without a trailing dot (``localhost.`` is
   ``localhost``). A ``Host`` that is missing, repeated or not a host name is a 400 (RFC 9112
   §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request
   message that lacks a Host header field and to any request message that contains more than
   one Host header field line or a Host header field with an invalid field value.").
4. ``X-Forwarded-For`` is a list each proxy appends to. Behind trusted proxies the client is
   the right-most address that is not itself a trusted proxy: anything left of it was written
   by the client and proves nothing. From any other peer the header is ignored.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Iterable
from typing import Final

__all__ = ["HostPolicy", "ProxyPolicy", "parse_host"]

_NAME: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_\-]{0,62}))*")
_PORT: Final = re.compile(r"[0-9]{1,5}")
LOCALHOST_NAMES: Final = frozenset({"localhost"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_host(value: str) -> str | None:
    """The host of a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``), lower-cased,
    without a trailing dot; an IPv6 literal without its brackets. None if it is not valid."""
    value = value.strip().lower()
    if value.startswith("["):
        inside, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:]))):
            return None
        try:
            return str(ipaddress.IPv6Address(inside))
        except ValueError:
            return None
    name, sep, port = value.partition(":")
    if sep and not _PORT.fullmatch(port):
        return None
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253 or not _NAME.fullmatch(name):
        return None
    return name


def _ip(name: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _origin_host(origin: str) -> str | None:
    if origin == "*":
        return None
    try:
        netloc = urllib.parse.urlsplit(origin).netloc
    except ValueError:
        return None
    return parse_host(netloc) if netloc else None


class HostPolicy:
    """Which ``Host`` header values this server answers (the rest: 421)."""

    def __init__(self, allowed_hosts: Iterable[str] | None, *, bind_host: str | Iterable[str],
                 origins: Iterable[str] | None = None) -> None:
        self.any_host = False
        self.any_ip = False
        self.loopback_ips = False
        names: set[str] = set()
        suffixes: list[str] = []
        if allowed_hosts is not None:
            for entry in allowed_hosts:
                entry = entry.strip().lower()
                if entry == "*":
                    self.any_host = True
                elif entry.startswith("*."):
                    host = parse_host(entry[2:])
                    if host is None:
                        raise ValueError(f"--allowed-host {entry!r} is not a host name pattern")
                    suffixes.append("." + host)
                else:
                    host = parse_host(entry)
                    if host is None:
                        raise ValueError(f"--allowed-host {entry!r} is not a host name")
                    names.add(host)
            if not (names or suffixes or self.any_host):
                raise ValueError("--allowed-host was given no name")
        else:
            binds = [bind_host] if isinstance(bind_host, str) else list(bind_host)
            for bind in binds:
                host = parse_host(f"[{bind}]" if ":" in bind else bind) if bind else None
                ip = _ip(host) if host else None
                if not bind or (ip is not None and ip.is_unspecified):
                    # Every interface: any IP literal (cannot be rebound), the local names.
                    self.any_ip = True
                    names |= LOCALHOST_NAMES
                    names.add(socket.gethostname().lower().rstrip("."))
                elif host in LOCALHOST_NAMES or (ip is not None and ip.is_loopback):
                    self.loopback_ips = True
                    names |= LOCALHOST_NAMES
                if host is not None:
                    names.add(host)
            for origin in origins or ():
                origin_host = _origin_host(origin)
                if origin_host is not None:
                    names.add(origin_host)
        self.names = frozenset(names)
        self.suffixes = tuple(suffixes)

    def allows(self, host: str) -> bool:
        """Whether a parsed host (:func:`parse_host`) is one this server answers for."""
        if self.any_host or host in self.names:
            return True
        if any(host.endswith(suffix) for suffix in self.suffixes):
            return True
        if self.any_ip or self.loopback_ips:
            ip = _ip(host)
            if ip is not None and (self.any_ip or ip.is_loopback):
                return True
        return False

    def describe(self) -> str:
        """For the startup line."""
        if self.any_host:
            return "any"
        parts = sorted(self.names) + [f"*{s}" for s in self.suffixes]
        if self.any_ip:
            parts.append("any IP address")
        elif self.loopback_ips:
            parts.append("loopback addresses")
        return ", ".join(parts)


class ProxyPolicy:
    """Which peers' ``X-Forwarded-For`` is believed (``--trusted-proxy ADDR``, an address or a
    network such as ``10.0.0.0/8``)."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        networks: list[IPNetwork] = []
        for entry in trusted:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"--trusted-proxy {entry!r} is not an IP address or "
                                 "network") from None
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def is_trusted(self, address: str) -> bool:
        ip = _ip(address.partition("%")[0])
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client address to believe for a request from ``peer`` carrying these
        ``X-Forwarded-For`` header values (RFC 7239 §5.2 semantics, the de-facto header)."""
        if not self.networks or not self.is_trusted(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            if _ip(hop.partition("%")[0]) is None:
                return peer  # garbage written by someone: believe only what we saw
            if not self.is_trusted(hop):
                return hop
        return hops[0] if hops else peer
