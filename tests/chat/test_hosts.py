"""rawws.chat.hosts: which Host names a server answers (DNS rebinding), whose X-Forwarded-For
is believed."""

from __future__ import annotations

import socket

import pytest

from rawws.chat.hosts import HostPolicy, ProxyPolicy, parse_host


@pytest.mark.parametrize(("value", "expected"), [
    ("localhost", "localhost"),
    ("LocalHost:8765", "localhost"),
    ("localhost.", "localhost"),
    ("chat.example:443", "chat.example"),
    ("127.0.0.1:8765", "127.0.0.1"),
    ("[::1]:8765", "::1"),
    ("[::1]", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("", None),
    (":80", None),
    ("a b", None),
    ("evil.example:80:80", None),
    ("evil.example:x", None),
    ("[::1", None),
    ("[::1]x", None),
    ("[not-v6]:80", None),
    ("user@evil.example", None),
    ("evil.example/x", None),
    ("ex\u00e4mple.com", None),
    ("-" + "a" * 300, None),
])
def test_parse_host(value: str, expected: str | None) -> None:
    assert parse_host(value) == expected


def allowed(policy: HostPolicy, *hosts: str) -> list[bool]:
    results = []
    for host in hosts:
        parsed = parse_host(host)
        assert parsed is not None, host
        results.append(policy.allows(parsed))
    return results


def test_default_on_loopback() -> None:
    policy = HostPolicy(None, bind_host="127.0.0.1")
    assert allowed(policy, "127.0.0.1:1", "localhost:1", "[::1]:1", "127.0.0.2") == [True] * 4
    assert allowed(policy, "evil.example", "192.168.1.5", "localhost.evil.example",
                   "0.0.0.0") == [False] * 4


def test_default_on_a_given_address_and_with_origins() -> None:
    policy = HostPolicy(None, bind_host="192.168.1.5",
                        origins=["https://chat.example", "http://app.example:8080", "*"])
    assert allowed(policy, "192.168.1.5:8765", "chat.example", "app.example") == [True] * 3
    assert allowed(policy, "localhost", "127.0.0.1", "evil.example", "192.168.1.6") == [False] * 4


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", ""])
def test_default_on_every_interface(bind: str) -> None:
    policy = HostPolicy(None, bind_host=bind)
    hostname = socket.gethostname().lower()
    assert allowed(policy, "10.1.2.3:8765", "[2001:db8::1]", "localhost", hostname) == [True] * 4
    assert allowed(policy, "evil.example", "rebind.attacker.example") == [False, False]


def test_explicit_names_replace_the_default() -> None:
    policy = HostPolicy(["chat.example", "*.corp.example", "[::1]"], bind_host="127.0.0.1")
    assert allowed(policy, "chat.example:443", "a.corp.example", "b.a.corp.example",
                   "[::1]:9") == [True] * 4
    assert allowed(policy, "corp.example", "127.0.0.1", "localhost",
                   "xchat.example") == [False] * 4
    assert allowed(HostPolicy(["*"], bind_host="127.0.0.1"), "anything.example") == [True]


@pytest.mark.parametrize("names", [[], ["a b"], ["*."], ["http://x"]])
def test_bad_allowed_hosts_are_refused(names: list[str]) -> None:
    with pytest.raises(ValueError, match="allowed-host"):
        HostPolicy(names, bind_host="127.0.0.1")


def test_proxy_policy() -> None:
    proxies = ProxyPolicy(["127.0.0.1", "10.0.0.0/8"])
    # From a trusted proxy: the right-most hop that is not a trusted proxy.
    assert proxies.client_address("127.0.0.1", ["203.0.113.7"]) == "203.0.113.7"
    assert proxies.client_address("127.0.0.1", ["1.1.1.1, 203.0.113.7, 10.0.0.9"]) \
        == "203.0.113.7"
    assert proxies.client_address("127.0.0.1", ["1.1.1.1", "203.0.113.7"]) == "203.0.113.7"
    assert proxies.client_address("::ffff:127.0.0.1", ["203.0.113.7"]) == "203.0.113.7"
    assert proxies.client_address("127.0.0.1", []) == "127.0.0.1"
    assert proxies.client_address("127.0.0.1", ["garbage"]) == "127.0.0.1"
    assert proxies.client_address("127.0.0.1", ["10.0.0.1, 10.0.0.2"]) == "10.0.0.1"
    # From anyone else, the header means nothing.
    assert proxies.client_address("198.51.100.1", ["203.0.113.7"]) == "198.51.100.1"
    assert ProxyPolicy().client_address("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"
    with pytest.raises(ValueError, match="trusted-proxy"):
        ProxyPolicy(["not-an-address"])
