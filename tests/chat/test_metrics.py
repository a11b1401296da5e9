"""rawws.chat.metrics: the Prometheus text rendering."""

from __future__ import annotations

from rawws.chat.metrics import Metrics


def test_render() -> None:
    m = Metrics()
    m.connections_opened += 3
    m.messages_received += 7
    m.bytes_received += 700
    m.closes[1013] += 2
    m.closes[1000] += 1
    m.handshake_rejections["per_ip"] += 1
    m.dropped["queue_full"] += 4
    m.errors["bad_json"] += 1
    m.http_requests[200] += 5
    m.http_requests[429] += 2
    m.http_rate_limited += 2
    m.aborts["slow_consumer"] += 1
    m.gauge("connections", "Open WebSocket connections.", lambda: 2)
    m.gauge("rooms", "Rooms alive.", lambda: 1.5)
    m.dropped_source(lambda: {"inbox_full": 3, "queue_full": 1})
    text = m.render()
    lines = text.splitlines()
    assert text.endswith("\n")
    assert "# TYPE rawws_connections gauge" in lines
    assert "rawws_connections 2" in lines
    assert "rawws_rooms 1.5" in lines
    assert "# TYPE rawws_connections_opened_total counter" in lines
    assert "rawws_connections_opened_total 3" in lines
    assert "rawws_messages_received_total 7" in lines
    assert "rawws_bytes_received_total 700" in lines
    assert "rawws_messages_sent_total 0" in lines
    assert 'rawws_closes_total{code="1000"} 1' in lines
    assert 'rawws_closes_total{code="1013"} 2' in lines
    assert 'rawws_handshake_rejections_total{reason="per_ip"} 1' in lines
    assert 'rawws_dropped_total{reason="queue_full"} 5' in lines
    assert 'rawws_dropped_total{reason="inbox_full"} 3' in lines
    assert 'rawws_errors_total{code="bad_json"} 1' in lines
    assert 'rawws_http_requests_total{status="200"} 5' in lines
    assert 'rawws_http_requests_total{status="429"} 2' in lines
    assert "rawws_http_rate_limited_total 2" in lines
    assert 'rawws_aborts_total{reason="slow_consumer"} 1' in lines
    # Every sample line belongs to a family declared with HELP and TYPE.
    families = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    for line in lines:
        if not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] in families


def test_label_escaping() -> None:
    m = Metrics()
    m.handshake_rejections['a"b\\c\nd'] += 1
    assert 'rawws_handshake_rejections_total{reason="a\\"b\\\\c\\nd"} 1' in m.render()
