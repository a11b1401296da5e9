"""``--broker`` URLs: what is accepted, what is refused (one line, never the password)."""

from __future__ import annotations

import pytest

from rawws.chat.broker import BrokerConfig, parse_broker_url


def test_the_parts_of_a_url() -> None:
    config = parse_broker_url("rediss://app:s%3Acret@redis.internal:6380/3?prefix=prod"
                              "&presence_ttl=10&heartbeat=2&bus_length=500&timeout=0.5"
                              "&ca_certs=/etc/ca.pem")
    assert config == BrokerConfig(tls=True, host="redis.internal", port=6380, db=3,
                                  username="app", password="s:cret", prefix="prod",
                                  presence_ttl=10.0, heartbeat=2.0, bus_length=500,
                                  timeout=0.5, ca_certs="/etc/ca.pem")
    assert config.display == "rediss://app:***@redis.internal:6380/3"
    assert "s:cret" not in repr(config)


def test_defaults() -> None:
    config = parse_broker_url("redis://localhost")
    assert (config.host, config.port, config.db, config.password) == ("localhost", 6379, 0, None)
    assert config.display == "redis://localhost:6379/0"
    assert config.presence_ttl == 5.0 and config.heartbeat == 1.0
    assert config.require_persistence
    assert not parse_broker_url("redis://h/0?persistence=off").require_persistence
    assert parse_broker_url("redis://:pw@[::1]:7000").display == "redis://:***@[::1]:7000/0"
    # A short presence_ttl brings the heartbeat down with it (at most a third).
    assert parse_broker_url("redis://h?presence_ttl=1.5").heartbeat == 0.5


@pytest.mark.parametrize(("url", "message"), [
    ("", "empty"),
    ("http://h:6379", "must be redis://"),
    ("redis://", "no host"),
    ("redis://h:99999", "not a valid URL"),
    ("redis://h/x", "database must be a number"),
    ("redis://:hunter2@h?bogus=1", "unknown option 'bogus'"),
    ("redis://h?prefix=a%20b", "prefix must be"),
    ("redis://h?presence_ttl=0", "presence_ttl must be a number >= 0.5"),
    ("redis://h?presence_ttl=nan", "presence_ttl must be"),
    ("redis://h?bus_length=1.5", "bus_length must be a whole number"),
    ("redis://h?presence_ttl=2&heartbeat=1.5", "at most half of presence_ttl"),
    ("redis://h?persistence=maybe", "persistence must be"),
    ("redis://h?ca_certs=/x", "need rediss://"),
    ("redis://h?timeout=1&timeout=2", "given twice"),
])
def test_refused_with_one_line_and_no_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_broker_url(url)
    text = str(info.value)
    assert "\n" not in text and "hunter2" not in text
