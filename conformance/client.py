"""Autobahn fuzzingserver driver: runs every case against a WebSocket client, echoing each message.

    python conformance/client.py --uri ws://127.0.0.1:9001 [--impl rawws|websockets|aiohttp]

Protocol of `wstest -m fuzzingserver`: read the case count from /getCaseCount, open
/runCase?case=N&agent=AGENT for N = 1..count and echo every message until the server closes, then
open /updateReports?agent=AGENT so that wstest writes index.json. Every case runs under a timeout,
so a stuck case is reported and skipped rather than hanging the run. Errors inside a case are the
point of many cases (the fuzzer fails the connection on purpose), so they are printed, not raised.

--impl rawws (default) drives `rawws.connect`; websockets and aiohttp drive those libraries the
same way, to validate the harness and to reproduce the comparison figures. Standard library only
for rawws.
"""

import argparse
import asyncio
import importlib.util
import inspect
import sys
import time
from typing import Any
from urllib.parse import quote


class RawwsClient:
    def __init__(self, compression: str | None) -> None:
        import rawws

        self.connect = rawws.connect
        self.options: dict[str, Any] = {"max_size": None, "compression": compression}
        # Keepalive pings are frames the case did not ask for; Autobahn counts them as received.
        if "ping_interval" in inspect.signature(rawws.connect).parameters:
            self.options["ping_interval"] = None

    async def first_message(self, uri: str) -> str | bytes:
        async with self.connect(uri, **self.options) as ws:
            return await ws.recv()

    async def echo(self, uri: str) -> object:
        async with self.connect(uri, **self.options) as ws:
            async for message in ws:
                await ws.send(message)
        return ws.close_code


class WebsocketsClient(RawwsClient):
    def __init__(self, compression: str | None) -> None:
        from websockets.asyncio.client import connect

        self.connect = connect
        self.options = {"max_size": None, "compression": compression, "ping_interval": None}


class AiohttpClient:
    def __init__(self, compression: str | None) -> None:
        import aiohttp

        self.aiohttp = aiohttp
        self.options = {"max_msg_size": 0, "compress": 15 if compression else 0, "heartbeat": None}

    async def first_message(self, uri: str) -> str | bytes:
        async with (
            self.aiohttp.ClientSession() as session,
            session.ws_connect(uri, **self.options) as ws,
        ):
            msg = await ws.receive()
            return msg.data

    async def echo(self, uri: str) -> object:
        WSMsgType = self.aiohttp.WSMsgType
        async with (
            self.aiohttp.ClientSession() as session,
            session.ws_connect(uri, **self.options) as ws,
        ):
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
            return ws.close_code


IMPLEMENTATIONS = {"rawws": RawwsClient, "websockets": WebsocketsClient, "aiohttp": AiohttpClient}


def default_compression(impl: str) -> str | None:
    """Offer permessage-deflate when the client has it (rawws: once rawws.sansio.deflate exists)."""
    if impl != "rawws":
        return "deflate"
    try:
        return "deflate" if importlib.util.find_spec("rawws.sansio.deflate") else None
    except ImportError:
        return None


async def run(args: argparse.Namespace) -> int:
    client = IMPLEMENTATIONS[args.impl](args.compression)
    agent = quote(args.agent)
    async with asyncio.timeout(args.case_timeout):
        count = int(await client.first_message(f"{args.uri}/getCaseCount"))
    print(f"{count} cases, agent {args.agent}, impl {args.impl}, compression {args.compression}")
    timeouts = []
    for case in range(1, count + 1):
        started = time.monotonic()
        try:
            async with asyncio.timeout(args.case_timeout):
                code = await client.echo(f"{args.uri}/runCase?case={case}&agent={agent}")
            outcome = f"closed {code}"
        except TimeoutError:
            timeouts.append(case)
            outcome = f"TIMEOUT after {args.case_timeout:g} s (driver gave up)"
        except Exception as exc:  # the fuzzer breaks connections on purpose: report and go on
            outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
        print(f"case {case}/{count}: {outcome} ({time.monotonic() - started:.1f} s)", flush=True)
    try:
        async with asyncio.timeout(args.case_timeout):
            await client.echo(f"{args.uri}/updateReports?agent={agent}")
    except Exception as exc:  # wstest writes the reports before it closes; run.py checks them
        print(f"updateReports: {type(exc).__name__}: {exc}")
    print(f"reports requested; driver timeouts: {timeouts or 'none'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--uri", required=True, help="fuzzingserver base URI, e.g. ws://127.0.0.1:9001"
    )
    parser.add_argument("--impl", choices=sorted(IMPLEMENTATIONS), default="rawws")
    parser.add_argument("--agent", help="agent name in the reports (default: --impl)")
    parser.add_argument(
        "--compression",
        choices=["auto", "deflate", "none"],
        default="auto",
        help="auto: deflate for peers; for rawws only once rawws.sansio.deflate exists",
    )
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=240.0,
        help="seconds before the driver abandons one case (wstest's own 9.x limit is 100 s)",
    )
    args = parser.parse_args()
    args.agent = args.agent or args.impl
    args.compression = {"auto": default_compression(args.impl), "none": None}.get(
        args.compression, args.compression
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
