"""``rawws craft``: a scriptable misbehaving WebSocket peer.

    rawws craft ws://127.0.0.1:9001 -e 'send text "hi" rsv1=1; expect close 1002'
    rawws craft ws://127.0.0.1:9001 script.craft
    rawws craft ws://127.0.0.1:9001 --attack deflate-bomb
    rawws craft --list
    rawws craft --serve 9002 --attack masked-server-frame --once

It sends what a script says — hand-made handshakes and frames, valid or not (the language is
in :mod:`rawws.tools.craftscript`, the named attacks in :mod:`rawws.tools.attacks`) — and prints
the peer's reaction as it happens: the HTTP status and headers, every frame it sends (decoded
with the core's reader, rule violations named with their RFC section, compressed payloads
inflated), close codes, and when TCP was closed and by whom, each line stamped with the
milliseconds since the connection opened. Transcript prefixes: ``>`` sent, ``<`` received,
``=`` a state change, ``!`` a broken rule or error, ``x`` TCP closed, ``?`` an expectation.

As a client (``craft URL``) it tests servers; with ``--serve PORT`` it plays the server and
runs the script on every client that connects (``--once``: the first one, then exit).

Exit status: 0 when every ``expect`` held, 1 when one did not, 2 for a bad script, bad
arguments or a peer that could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..sansio.codes import CLOSE_CODE_MEANINGS
from .attacks import ATTACKS
from .craftpeer import DEFAULT_TIMEOUT, Outcome, Peer
from .craftscript import ScriptError, Step, parse_script

__all__ = ["DEFAULT_TIMEOUT", "Outcome", "Peer", "add_parser", "run", "run_script",
           "serve_script", "summarize"]

def _prepare(steps: list[Step], *, is_server: bool) -> list[Step]:
    """A client script that does not open with its own handshake gets the default one; a
    server script that does not answer the upgrade itself gets a plain 101."""
    if is_server:
        if not steps or steps[0].verb != "respond":
            return [Step("respond", source="respond"), *steps]
        return steps
    lead = 0
    while lead < len(steps) and steps[lead].verb == "set":
        lead += 1
    first = steps[lead] if lead < len(steps) else None
    starts_by_hand = first is not None and (
        first.verb == "handshake" or (first.verb == "send" and first.args[0] in ("raw", "http")))
    if starts_by_hand:
        return steps
    return [*steps[:lead], Step("handshake", source="handshake"), *steps[lead:]]


async def run_script(steps: list[Step], host: str, port: int, *, path: str = "/",
                     timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None) -> Outcome:
    """Run ``steps`` as a client against ``host:port``."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        outcome = Outcome(error=f"cannot connect to {host}:{port}: {exc}")
        return outcome
    peer = Peer(reader, writer, is_server=False, out=out, timeout=timeout, host=host, port=port,
                path=path)
    peer.say("=", f"connected to {host}:{port}")
    steps = _prepare(steps, is_server=False)
    if not any(step.verb == "handshake" for step in steps):
        # The request is written by hand: read the response head, then frames.
        peer.start_reading_response(None)
    return await peer.run(steps)


async def serve_script(steps: list[Step], host: str, port: int, *, once: bool,
                       timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None,
                       ready: asyncio.Future[int] | None = None) -> Outcome:
    """Play the misbehaving server: run ``steps`` on every client (``once``: the first)."""
    steps = _prepare(steps, is_server=True)
    finished: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        peer = Peer(reader, writer, is_server=True, out=out, timeout=timeout)
        addr = writer.get_extra_info("peername")
        peer.say("=", f"client {count} connected from {addr[0]}:{addr[1]}")
        head = await peer.read_head()
        if head is None:
            outcome = peer.outcome
        else:
            peer.request_head = head
            peer.say("<", head.decode("latin-1").strip())
            outcome = await peer.run(steps)
        if once and not finished.done():
            finished.set_result(outcome)

    server = await asyncio.start_server(handle, host, port)
    bound = server.sockets[0].getsockname()[1]
    if out is not None:
        out.write(f"= craft serving on ws://{host}:{bound}\n")
        out.flush()
    if ready is not None:
        ready.set_result(bound)
    async with server:
        if once:
            return await finished
        await server.serve_forever()
    return Outcome()


# --- the command line ----------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``rawws craft``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "craft", help="a scriptable misbehaving peer (hand-made handshakes and frames)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="script language: python -m pydoc rawws.tools.craftscript")
    parser.add_argument("url", nargs="?", help="the server to attack, ws://HOST:PORT[/PATH]")
    parser.add_argument("script", nargs="?", help="a script file ('-' for stdin)")
    parser.add_argument("-e", "--execute", metavar="STEPS",
                        help="the script on the command line ('; ' between steps)")
    parser.add_argument("--attack", metavar="NAME", help="run a named attack (see --list)")
    parser.add_argument("--list", action="store_true", help="list the named attacks")
    parser.add_argument("--serve", type=int, metavar="PORT",
                        help="play the server on PORT (0: any) instead of connecting")
    parser.add_argument("--host", default="127.0.0.1", help="with --serve: address to bind")
    parser.add_argument("--once", action="store_true",
                        help="with --serve: handle one client, then exit with its result")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds an expect step waits (default 5)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(run=run)
    return parser


def _list(out: TextIO) -> int:
    width = max(len(name) for name in ATTACKS)
    for side, title in (("client", "against servers: rawws craft URL --attack NAME"),
                        ("server", "against clients: rawws craft --serve PORT --attack NAME")):
        out.write(f"{title}\n")
        for attack in ATTACKS.values():
            if attack.side == side:
                echo = " [echo server]" if attack.echo else ""
                out.write(f"  {attack.name:<{width}}  {attack.section:<28} "
                          f"{attack.summary}{echo}\n")
    return 0


def _script_text(args: argparse.Namespace) -> str:
    if args.attack:
        if args.attack not in ATTACKS:
            raise ScriptError(0, f"no attack {args.attack!r} (rawws craft --list)")
        return ATTACKS[args.attack].script
    if args.execute:
        return str(args.execute)
    if args.script == "-":
        return sys.stdin.read()
    if args.script:
        return Path(args.script).read_text()
    raise ScriptError(0, "nothing to do: give a script file, -e STEPS or --attack NAME")


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.list:
        return _list(out)
    if args.serve is not None and args.url and not args.script:
        args.script, args.url = args.url, None  # `craft --serve 9002 script.craft`
    try:
        steps = parse_script(_script_text(args))
    except (ScriptError, OSError) as exc:
        print(f"rawws craft: {exc}", file=sys.stderr)
        return 2
    transcript = None if args.json else out
    if args.serve is not None:
        outcome = asyncio.run(serve_script(steps, args.host, args.serve, once=args.once,
                                           timeout=args.timeout, out=transcript))
    else:
        if not args.url:
            print("rawws craft: give a ws:// URL (or --serve PORT)", file=sys.stderr)
            return 2
        url = urlsplit(args.url)
        if url.scheme != "ws" or not url.hostname:
            print(f"rawws craft: expected ws://HOST:PORT, not {args.url!r}", file=sys.stderr)
            return 2
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        outcome = asyncio.run(run_script(steps, url.hostname, url.port or 80, path=path,
                                         timeout=args.timeout, out=transcript))
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        print(summarize(outcome))
    if outcome.error:
        print(f"rawws craft: {outcome.error}", file=sys.stderr)
        return 2
    return 0 if outcome.passed else 1


def summarize(outcome: Outcome) -> str:
    """One paragraph: what the peer did in the end, and the expectations."""
    parts = []
    if (status := outcome.status()) is not None:
        parts.append(f"HTTP {status}")
    code = outcome.close_code()
    if code is not None:
        meaning = CLOSE_CODE_MEANINGS.get(code, "")
        parts.append(f"closed by the peer with {code}{' (' + meaning + ')' if meaning else ''}")
    parts.append("TCP closed by the peer" if outcome.dropped_by_peer() else "TCP closed by craft")
    checks = outcome.checks
    held = sum(1 for _, ok, _ in checks if ok)
    verdict = f"{held}/{len(checks)} expectations held" if checks else "no expectations"
    return f"result: {'; '.join(parts)}; {verdict}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rawws")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["craft", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args))
