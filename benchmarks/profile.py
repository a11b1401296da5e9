"""Profile one server under one benchmark load, with py-spy (sampling; the server runs unmodified).

    python -m benchmarks.profile rawws echo --size 64 --conns 32
    python -m benchmarks.profile rawws fanout --subs 10000 --messages 20
    python -m benchmarks.profile rawws handshake
    python -m benchmarks.profile rawws echo --size 1048576 --conns 1 --flame /tmp/flame.svg

The server and the load generator are pinned as in ``benchmarks/run.py``. Prints the functions
with the most samples: "self" (the line's own time, e.g. a syscall) and "inclusive" (with what it
calls). ``--flame`` also writes a flame graph (SVG) to open in a browser.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .run import SERVERS, LoadGen, Server, _cleanup

HERE = Path(__file__).resolve().parent


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    out = [f"{total} samples", "self:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out.append("inclusive (skipping the event loop's own frames):")
    skip = ("runpy", "asyncio/runners.py", "base_events.py", "events.py:", "_common.py",
            "<module>")
    shown = 0
    for f, n in inclusive.most_common():
        if any(s in f for s in skip):
            continue
        out.append(f"  {n / total:6.1%}  {f}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("op", choices=["echo", "echo_deflate", "fanout", "handshake"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--subs", type=int, default=10000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--paced", action="store_true", help="fan-out: one message at a time")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--flame", type=Path, help="also write a flame graph SVG here")
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    logdir = Path(tempfile.mkdtemp(prefix="rawws-profile-"))
    import os

    cpus = sorted(os.sched_getaffinity(0))
    server_core, load_core = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {load_core})
    server = Server(args.server, server_core, logdir)
    loadgen = LoadGen(load_core, logdir)
    raw = logdir / "profile.txt"
    try:
        if args.op == "fanout":
            cmd = {"op": "fanout", "subs": args.subs, "chat": args.server == "rawws-chat",
                   "phases": [(args.messages, max(1, int(args.seconds)), args.paced)]}
        elif args.op == "handshake":
            cmd = {"op": "handshake", "concurrency": 16, "warmup": 0.5,
                   "duration": args.seconds + 1}
        else:
            cmd = {"op": args.op, "size": args.size, "conns": args.conns, "warmup": 0.5,
                   "duration": args.seconds + 1}
        result: dict[str, object] = {}

        def drive() -> None:
            result.update(loadgen.call(port=server.port, server_pid=server.pid, timeout=600,
                                       **cmd))

        thread = threading.Thread(target=drive)
        thread.start()
        time.sleep(0.7 if args.op != "fanout" else 0.5)
        if args.op == "fanout":  # profile the bursts, not the subscribers connecting
            time.sleep(min(8.0, args.subs / 2000))
        record = [pyspy, "record", "-p", str(server.pid), "-d", str(int(args.seconds)),
                  "-r", str(args.rate), "--nonblocking"]
        subprocess.run([*record, "-f", "raw", "-o", str(raw)], capture_output=True, timeout=120)
        thread.join(600)
        if args.flame:
            print("(flame graph: a second, separate recording)")
            thread = threading.Thread(target=drive)
            thread.start()
            time.sleep(0.7)
            subprocess.run([*record, "-o", str(args.flame)], capture_output=True, timeout=120)
            thread.join(600)
    finally:
        loadgen.stop()
        server.stop()
        _cleanup()
    print(f"{args.server} under {json.dumps(cmd)}")
    print("load generator:", {k: (round(v, 3) if isinstance(v, float) else v)
                              for k, v in result.items() if k != "bursts"})
    print(summarize(raw, args.top) if raw.exists() else "py-spy recorded nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
