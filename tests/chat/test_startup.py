"""``rawws serve`` fails closed (issue 11 item 1 and the other configuration checks): every
misconfiguration is exit status 2 with one line on stderr and no traceback, never a server
that runs with auth off or the API open by accident. Risky but valid choices start with a
warning. Real processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..processes import ServerProcess, run

SERVE = ["serve", "--port", "0"]
LONG_SECRET = "x" * 32


def assert_one_line_error(status: int, output: str, *words: str) -> None:
    lines = output.splitlines()
    assert status == 2, output
    assert len(lines) == 1, lines
    assert lines[0].startswith("rawws serve: "), lines
    assert "Traceback" not in output
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize(("argv", "env", "words"), [
    (["--jwt-secret", ""], {}, ["JWT secret is empty"]),
    (["--jwt-secret", "   "], {}, ["JWT secret is empty"]),
    ([], {"RAWWS_JWT_SECRET": ""}, ["JWT secret is empty"]),
    (["--api-key", ""], {}, ["API key is empty"]),
    ([], {"RAWWS_API_KEY": ""}, ["API key is empty"]),
    (["--jwt-secret", LONG_SECRET, "--api-key", "k" * 32, "--open-api"], {}, ["contradict"]),
    (["--tokens", ""], {}, ["tokens file name is empty"]),
    (["--shutdown-timeout", "nan"], {}, ["shutdown"]),
    (["--allowed-host", "not a host"], {}, ["--allowed-host"]),
    (["--allowed-host", ""], {}, ["--allowed-host"]),
    (["--trusted-proxy", "proxy.example"], {}, ["--trusted-proxy"]),
])
async def test_misconfiguration_is_exit_2_with_one_line(argv: list[str], env: dict[str, str],
                                                        words: list[str]) -> None:
    status, output = await run(*SERVE, *argv, env=env)
    assert_one_line_error(status, output, *words)


@pytest.mark.parametrize("text", ["", "\n  \n", "# just comments\n# here\n", "{}", "[]",
                                  '{"t": 1e400}', '{"t": NaN}', "{" * 3000 + "}" * 3000,
                                  "one-field-only\n", "\xff\xfe"])
async def test_an_empty_or_bad_tokens_file_is_exit_2(tmp_path: Path, text: str) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_bytes(text.encode("latin-1"))
    status, output = await run(*SERVE, "--tokens", str(tokens))
    assert_one_line_error(status, output, "tokens")


async def test_a_missing_tokens_file_is_exit_2(tmp_path: Path) -> None:
    status, output = await run(*SERVE, "--tokens", str(tmp_path / "nope.txt"))
    assert_one_line_error(status, output, "nope.txt")


@pytest.mark.parametrize(("argv", "env", "warning"), [
    (["--jwt-secret", "short"], {}, "the JWT secret is 5 bytes: use at least 32"),
    ([], {"RAWWS_JWT_SECRET": "x" * 31}, "the JWT secret is 31 bytes"),
    (["--jwt-secret", LONG_SECRET, "--open-api"], {}, "--open-api: auth is on but the HTTP API"),
    (["--host", "0.0.0.0"], {}, "auth is off and the server listens on 0.0.0.0"),
])
async def test_risky_choices_start_with_a_warning(argv: list[str], env: dict[str, str],
                                                  warning: str) -> None:
    proc = await ServerProcess.start(*SERVE, *argv, env=env)
    try:
        await proc.port()
        await proc.expect("WARNING rawws.chat.server: " + warning.replace("-", r"\-"))
        assert await proc.stop() == 0
    finally:
        proc.kill()


async def test_a_long_secret_starts_without_a_warning() -> None:
    proc = await ServerProcess.start(*SERVE, "--jwt-secret", LONG_SECRET)
    try:
        await proc.port()
        await proc.expect(r"^auth: JWT; HTTP API: closed \(no --api-key\)")
        await proc.expect(r"^Host names answered: 127\.0\.0\.1, localhost, loopback addresses$")
        assert await proc.stop() == 0
    finally:
        proc.kill()
    assert "WARNING" not in proc.output and LONG_SECRET not in proc.output
