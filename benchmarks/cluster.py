"""What a second process buys: room fan-out and echo through ``rawws serve`` as 1 node, 2 nodes
on one Redis, and ``--workers 2`` on one port (issue 16, docs/scaling.md "Figures").

    .venv/bin/python -m benchmarks.cluster                  # every scenario, 3 rounds (~3 min)
    .venv/bin/python -m benchmarks.cluster --quick          # 1 round, smaller bursts (~1 min)
    .venv/bin/python -m benchmarks.cluster --scenarios fanout --subs 400 --messages 300

Scenarios:

* ``fanout``: ``--subs`` subscribers (400) joined to one room, split evenly over the nodes (or
  spread by the kernel over the workers); one publisher on the first node sends ``--messages``
  room messages back to back; the figure is deliveries per second until every subscriber has
  every message (and per second of the servers' CPU: the cost, which moves less with the
  machine's load). Configurations: 1 node with the memory store (the single-process reference),
  1 node on Redis, 2 nodes on Redis (two ports), ``--workers 2`` on Redis (one port).
* ``echo``: ``--conns`` connections (64) each sending ``{"type":"ping","id":N}`` and waiting for
  its pong, for ``--seconds``; the figure is round trips per second. 1 worker vs ``--workers 2``.
* Redis round trips: for every Redis configuration, write batches (pipelined round trips) and
  scripts per published message, from the publishing node's ``/metrics``, and every command
  Redis executed per message (``INFO stats``), measured in a paced phase (one message at a time,
  the next when all subscribers have it) and in the burst.

Every figure is the median over ``--rounds`` rounds, configurations interleaved (A B C D A B C
D ...). The load generator runs in this process (uvloop when installed) on the same two CPUs as
the servers: each result also gives the CPU seconds the servers, Redis and the load generator
used, and the machine's load average before and after, so a loaded run is visible as such. On a
quiet machine, run the full pass; the ratio that matters is ``2 nodes / 1 node`` on fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from benchmarks.servers._wire import frame_span

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.redis_server import running_redis  # noqa: E402  (the tests' redis-server starter)

HOST = "127.0.0.1"
READY = re.compile(r"on http://127\.0\.0\.1:(\d+)")


# --- servers ------------------------------------------------------------------------------------


class Server:
    """One ``rawws serve`` process (a node, or a supervisor with its workers)."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.drain: asyncio.Future[None] | None = None

    def pids(self) -> list[int]:
        pid = self.process.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as found:
                children = [int(c) for c in found.read().split()]
        except OSError:
            children = []
        return [pid, *children]


async def start_server(*args: str) -> Server:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rawws", "serve", "--port", "0", "--log-level", "warning",
        "--rate", "1000000", "--burst", "1000000", "--max-connections-per-ip", "100000",
        "--max-queue", "100000", "--history-size", "100", "--no-compression", *args,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    workers = args.count("--workers") and args[args.index("--workers") + 1] != "1"
    async with asyncio.timeout(60):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise RuntimeError("rawws serve exited before listening")
            found = READY.search(line)
            if found and (not workers or "workers (pids" in line):
                break

    async def drain() -> None:
        while await process.stdout.readline():  # type: ignore[union-attr]
            pass

    server = Server(process, int(found.group(1)))
    server.drain = asyncio.ensure_future(drain())
    return server


async def stop_server(server: Server) -> None:
    if server.process.returncode is None:
        server.process.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                await server.process.wait()
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(") ", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def http_get(port: int, target: str) -> str:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
                 .encode())
    data = await reader.read()
    writer.close()
    return data.partition(b"\r\n\r\n")[2].decode()


async def broker_counters(port: int) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in (await http_get(port, "/metrics")).splitlines():
        for name in ("broker_round_trips_total", "broker_commands_total",
                     "broker_bus_reads_total"):
            if line.startswith(f"rawws_{name} "):
                found[name] = float(line.split()[1])
    return found


def redis_commands(redis: Any) -> int:
    info = redis.command("INFO", "stats").decode()
    return int(re.search(r"total_commands_processed:(\d+)", info).group(1))  # type: ignore


# --- clients ------------------------------------------------------------------------------------


def handshake(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


def client_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class Client(asyncio.Protocol):
    """A raw WebSocket client that counts the text frames it receives (server frames are
    unmasked: counting needs only each frame's length) and can send frames."""

    def __init__(self, request: bytes, marker: bytes) -> None:
        self.request = request
        self.marker = marker
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.buf = b""
        self.skip = 0
        self.count = 0
        self.on_count: Callable[[Client], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before ready"))

    def data_received(self, data: bytes) -> None:
        if self.skip:
            if self.skip >= len(data):
                self.skip -= len(data)
                return
            data = data[self.skip:]
            self.skip = 0
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.open = True
            buf = buf[end + 4:]
        if not self.ready.done() and self.marker in buf:
            self.ready.set_result(None)
        pos, size, count = 0, len(buf), 0
        while (span := frame_span(buf, pos)) is not None:
            if buf[pos] == 0x81:
                count += 1
            start, n = span
            pos = start + n
            if pos > size:
                self.skip = pos - size
                pos = size
                break
        self.buf = buf[pos:]
        if count:
            self.count += count
            if self.on_count is not None:
                self.on_count(self)

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(payload))


async def connect(port: int, path: str, marker: bytes) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(handshake(port, path), marker),
                                             HOST, port)
    async with asyncio.timeout(60):
        await client.ready
    return client


async def settle(clients: list[Client], quiet: float = 0.5) -> None:
    """Wait until no client received anything for ``quiet`` seconds (join events done)."""
    async with asyncio.timeout(120):
        while True:
            before = sum(c.count for c in clients)
            await asyncio.sleep(quiet)  # measuring a quiet period, not synchronising
            if sum(c.count for c in clients) == before:
                return


# --- scenarios ----------------------------------------------------------------------------------

CONFIGS: dict[str, list[list[str]]] = {
    # name: the argument lists of the rawws serve processes ("{broker}" filled in)
    "1 node, memory": [[]],
    "1 node, redis": [["--broker", "{broker}"]],
    "2 nodes, redis": [["--broker", "{broker}"], ["--broker", "{broker}"]],
    "workers 2, redis": [["--broker", "{broker}", "--workers", "2"]],
}


_runs = iter(range(1, 1 << 30))


@contextlib.asynccontextmanager
async def servers(config: str, broker: str) -> AsyncIterator[list[Server]]:
    # Each run on its own key prefix: no run inherits another's rooms or history.
    broker = f"{broker}?prefix=bench{next(_runs)}"
    started = [await start_server(*(a.replace("{broker}", broker) for a in args))
               for args in CONFIGS[config]]
    try:
        yield started
    finally:
        for server in started:
            await stop_server(server)


async def fanout(config: str, broker: str, redis: Any, subs: int, messages: int
                 ) -> dict[str, Any]:
    async with servers(config, broker) as started:
        ports = [s.port for s in started]
        clients = []
        for i in range(subs):
            port = ports[i % len(ports)]
            clients.append(await connect(port, f"/ws/chat/bench?user_id=s{i}", b'"joined"'))
        publisher = await connect(ports[0], "/ws/chat/bench?user_id=pub", b'"joined"')
        await settle([*clients, publisher])
        payload = json.dumps({"type": "message", "content": "x" * 64}).encode()
        pids = [pid for s in started for pid in s.pids()]

        async def burst(count: int, paced: bool) -> dict[str, float]:
            for c in clients:
                c.count = 0
            done = asyncio.get_running_loop().create_future()
            target = [count if not paced else 1]
            waiting: set[int] = set(range(subs))

            def on_count(client: Client, index: int) -> None:
                if index in waiting and client.count >= target[0]:
                    waiting.discard(index)
                    if not waiting and not done.done():
                        done.set_result(None)

            for index, c in enumerate(clients):
                c.on_count = lambda client, index=index: on_count(client, index)
            # A node's own figures; with --workers, /metrics lands on either worker: only
            # Redis's own count applies then.
            per_node = "redis" in config and "workers" not in config
            rt0 = await broker_counters(ports[0]) if per_node else {}
            cmds0 = redis_commands(redis) if "redis" in config else 0
            cpu0, own0, redis0 = cpu_seconds(pids), own_cpu(), cpu_seconds([redis.pid])
            t0 = time.perf_counter()
            if paced:
                for i in range(count):
                    target[0] = i + 1
                    waiting.update(range(subs))
                    done = asyncio.get_running_loop().create_future()
                    publisher.send(payload)
                    async with asyncio.timeout(60):
                        await done
            else:
                for _ in range(count):
                    publisher.send(payload)
                async with asyncio.timeout(120):
                    await done
            secs = time.perf_counter() - t0
            server_cpu = cpu_seconds(pids) - cpu0
            result = {"deliveries_per_s": subs * count / secs, "secs": secs,
                      "server_cpu_s": server_cpu, "loadgen_cpu_s": own_cpu() - own0,
                      "redis_cpu_s": cpu_seconds([redis.pid]) - redis0,
                      "deliveries_per_server_cpu_s": subs * count / max(server_cpu, 0.01)}
            if per_node:
                rt1 = await broker_counters(ports[0])
                for name, key in (("broker_round_trips_total", "round_trips_per_message"),
                                  ("broker_commands_total", "ops_per_message"),
                                  ("broker_bus_reads_total", "bus_reads_per_message")):
                    result[key] = (rt1[name] - rt0[name]) / count
            if "redis" in config:
                # Every command Redis executed, those inside the scripts included (Redis 7
                # counts them), the readers' XREADs and the heartbeats too.
                result["redis_commands_per_message"] = (redis_commands(redis) - cmds0) / count
            return result

        await burst(5, paced=False)  # warm-up
        paced = await burst(max(10, messages // 10), paced=True)
        full = await burst(messages, paced=False)
        for c in [*clients, publisher]:
            if c.transport is not None:
                c.transport.abort()
        return {"burst": full, "paced": paced}


async def echo(config: str, broker: str, conns: int, seconds: float) -> dict[str, Any]:
    async with servers(config, broker) as started:
        port = started[0].port
        clients = [await connect(port, f"/ws?user_id=e{i}", b'"welcome"') for i in range(conns)]
        await settle(clients, quiet=0.2)
        pids = [pid for s in started for pid in s.pids()]
        stop = [False]
        total = [0]
        ping = b'{"type":"ping","id":1}'

        def again(client: Client) -> None:
            total[0] += 1
            if not stop[0]:
                client.send(ping)

        for c in clients:
            c.count = 0
            c.on_count = again
        for c in clients:
            c.send(ping)
        await asyncio.sleep(0.5)  # warm-up window
        total[0] = 0
        cpu0, own0 = cpu_seconds(pids), own_cpu()
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)  # the measurement window
        secs = time.perf_counter() - t0
        count = total[0]
        stop[0] = True
        result = {"round_trips_per_s": count / secs, "server_cpu_s": cpu_seconds(pids) - cpu0,
                  "loadgen_cpu_s": own_cpu() - own0}
        for c in clients:
            if c.transport is not None:
                c.transport.abort()
        return result


def median(rounds: list[dict[str, Any]], *path: str) -> float:
    values = []
    for r in rounds:
        value: Any = r
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    results: dict[str, Any] = {"load_before": load_before, "subs": args.subs,
                               "messages": args.messages, "conns": args.conns,
                               "rounds": args.rounds, "fanout": {}, "echo": {}}
    with running_redis() as redis:
        broker = redis.url
        for round_ in range(args.rounds):
            if "fanout" in args.scenarios:
                for config in CONFIGS:
                    result = await fanout(config, broker, redis, args.subs, args.messages)
                    results["fanout"].setdefault(config, []).append(result)
                    print(f"round {round_} fanout {config}: "
                          f"{result['burst']['deliveries_per_s']:,.0f} deliveries/s",
                          flush=True)
            if "echo" in args.scenarios:
                for config in ("1 node, memory", "1 node, redis", "workers 2, redis"):
                    result = await echo(config, broker, args.conns, args.seconds)
                    results["echo"].setdefault(config, []).append(result)
                    print(f"round {round_} echo {config}: "
                          f"{result['round_trips_per_s']:,.0f} round trips/s", flush=True)
    results["load_after"] = os.getloadavg()
    summary: dict[str, Any] = {}
    fan = results["fanout"]
    if fan:
        for config, rounds in fan.items():
            summary[f"fanout {config}"] = round(median(rounds, "burst", "deliveries_per_s"))
            summary[f"fanout per server CPU second, {config}"] = round(
                median(rounds, "burst", "deliveries_per_server_cpu_s"))
            if "redis" in config and "workers" not in config:
                for phase in ("paced", "burst"):
                    for key in ("round_trips_per_message", "ops_per_message",
                                "bus_reads_per_message"):
                        summary[f"{key.replace('_', ' ')}, {phase}, {config}"] = round(
                            median(rounds, phase, key), 3)
            if "redis" in config:
                summary[f"redis commands per message, paced, {config}"] = round(
                    median(rounds, "paced", "redis_commands_per_message"), 2)
        one = median(fan["1 node, redis"], "burst", "deliveries_per_s")
        summary["fanout ratio 2 nodes / 1 node"] = round(
            median(fan["2 nodes, redis"], "burst", "deliveries_per_s") / one, 2)
        summary["fanout ratio workers 2 / 1"] = round(
            median(fan["workers 2, redis"], "burst", "deliveries_per_s") / one, 2)
    if results["echo"]:
        ech = results["echo"]
        for config, rounds in ech.items():
            summary[f"echo {config}"] = round(median(rounds, "round_trips_per_s"))
        summary["echo ratio workers 2 / 1"] = round(
            median(ech["workers 2, redis"], "round_trips_per_s")
            / median(ech["1 node, redis"], "round_trips_per_s"), 2)
    results["summary"] = summary
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, smaller bursts")
    parser.add_argument("--scenarios", default="fanout,echo")
    parser.add_argument("--subs", type=int, default=400)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "cluster.json")
    args = parser.parse_args()
    args.scenarios = args.scenarios.split(",")
    if args.quick:
        args.rounds, args.messages, args.seconds = 1, 300, 2.0
    try:
        import uvloop
        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = runner(main(args))
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["summary"], indent=1))
    print(f"load average before {results['load_before'][0]:.2f}, after "
          f"{results['load_after'][0]:.2f} (2 CPUs); raw figures in {args.json}")


if __name__ == "__main__":
    cli()
