"""Starting ``rawws serve --broker``: what is refused (status 2, one line), what cannot be
reached (status 1), and the password never printed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.processes import ServerProcess, free_port, run, serve
from tests.redis_server import RedisServer, require_redis, running_redis

from .nodes import Node, eventually, joined, request


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize(("args", "message"), [
    (["--broker", "http://h:1"], "--broker must be redis://"),
    (["--broker", "redis://:hunter2@h:1/0?bogus=1"], "unknown option 'bogus'"),
    (["--workers", "2"], "--workers > 1 needs --broker"),
    (["--workers", "2", "--broker", "redis://:hunter2@h:1/x"], "database must be a number"),
    (["--broker", "redis://h:1/0", "--store", "sqlite:/tmp/x.db"], "with a broker the store"),
])
async def test_a_bad_broker_configuration_exits_2_with_one_line(args: list[str],
                                                                message: str) -> None:
    status, output = await run("serve", "--port", "0", *args)
    assert status == 2, output
    assert _lines(output) == [_lines(output)[0]] and message in output, output
    assert "hunter2" not in output and "Traceback" not in output


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
async def test_workers_takes_a_whole_number_or_auto(value: str) -> None:
    status, output = await run("serve", "--port", "0", "--workers", value)
    assert status == 2 and "--workers" in output, output


async def test_an_unreachable_broker_exits_1_with_one_line() -> None:
    status, output = await run("serve", "--port", "0", "--broker",
                               f"redis://:hunter2@127.0.0.1:{free_port()}/0?timeout=0.5")
    assert status == 1, output
    assert len(_lines(output)) == 1 and "broker redis://:***@127.0.0.1" in output, output
    assert "hunter2" not in output and "Traceback" not in output


@pytest.mark.redis
async def test_a_redis_without_aof_is_refused_unless_accepted() -> None:
    require_redis()
    with running_redis(appendonly=False) as server:
        status, output = await run("serve", "--port", "0", "--broker", server.url)
        assert status == 2 and "appendonly no" in output and "persistence=off" in output, output
        assert len(_lines(output)) == 1, output
        proc, _ = await serve("--broker", server.url + "?persistence=off")
        try:
            await eventually(lambda: "store and broker: Redis at redis://127.0.0.1"
                             in proc.output)
        finally:
            assert await proc.stop() == 0


@pytest.mark.redis
async def test_a_wrong_password_is_a_configuration_error_and_is_never_printed() -> None:
    require_redis()
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory), extra=("--requirepass", "right-secret")).start()
        try:
            url = f"redis://:wrong-secret@127.0.0.1:{server.port}/0"
            status, output = await run("serve", "--port", "0", "--broker", url)
            assert status == 2 and "authentication failed" in output, output
            assert "wrong-secret" not in output and "right-secret" not in output
            # The right one, from the environment: never on the command line.
            env = {"RAWWS_REDIS_URL": f"redis://:right-secret@127.0.0.1:{server.port}/0"}
            proc = await ServerProcess.start("serve", "--port", "0", env=env)
            try:
                await proc.expect(r"Redis at redis://:\*\*\*@127\.0\.0\.1")
            finally:
                assert await proc.stop() == 0
            assert "right-secret" not in proc.output
        finally:
            server.stop()


@pytest.mark.redis
async def test_a_node_prints_where_its_store_is(redis_server: RedisServer) -> None:
    proc, _ = await serve("--broker", redis_server.url)
    try:
        await eventually(lambda: f"store and broker: Redis at {redis_server.url} (node "
                         in proc.output)
    finally:
        assert await proc.stop() == 0
    assert "Traceback" not in proc.output, proc.output


@pytest.mark.redis
async def test_rediss_with_a_private_ca(tmp_path: Path) -> None:
    require_redis()
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other.pem"))
    tls_port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory), extra=(
            "--tls-port", str(tls_port), "--tls-cert-file", str(tmp_path / "cert.pem"),
            "--tls-key-file", str(tmp_path / "key.pem"),
            "--tls-ca-cert-file", str(tmp_path / "ca.pem"), "--tls-auth-clients", "no")).start()
        try:
            url = f"rediss://127.0.0.1:{tls_port}/0"
            status, output = await run("serve", "--port", "0", "--broker",
                                       f"{url}?ca_certs={tmp_path / 'other.pem'}&timeout=1")
            assert status == 1 and "certificate verify failed" in output, output
            proc, port = await serve("--broker", f"{url}?ca_certs={tmp_path / 'ca.pem'}")
            try:
                node = Node(proc, port)
                alice, _ = await node.user("alice")
                await joined(alice, "tls")
                reply = await request(alice, {"type": "message", "room": "tls",
                                              "content": "over TLS", "id": 1})
                assert reply["seq"] == 1  # assigned by Redis, over TLS
            finally:
                assert await proc.stop() == 0
            assert server.command("HGET", "rawws:room:tls", "seq") == b"1"
        finally:
            server.stop()
