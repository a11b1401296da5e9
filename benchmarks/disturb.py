"""When a measurement window was disturbed by the machine rather than by the server under test.

The machine is shared: other tenants take CPU time from the pinned processes, and when the CPUs
are starved the loopback backlog overflows, so a dropped segment costs a TCP retransmission
timeout (>= 200 ms). Both show in what the load generator records for each window
(``server_wait``, ``loadgen_wait``: share of the window spent runnable but not running;
``stalls``: loopback drops plus retransmission timeouts, machine-wide). A third kind shows as both
processes asleep through a window with work in flight. A disturbed window is measured again (up
to ``RETRIES`` more times) and the least disturbed attempt is kept.
"""

from __future__ import annotations

from typing import Any

RETRIES = 2
STARVED = 0.7  # more than 70 % of the window waiting for a CPU
IDLE = 0.05  # both sides running or runnable less than 5 % of the window: nothing was delivered


def disturbance(result: dict[str, Any]) -> float:
    """Lower is better; a kernel stall outweighs any amount of waiting."""
    if "error" in result:
        return float("inf")
    return (10.0 * (result.get("stalls", 0) > 0 or stalled_idle(result))
            + max(0.0, result.get("server_wait", 0.0)) + max(0.0, result.get("loadgen_wait", 0.0)))


def disturbed(result: dict[str, Any]) -> bool:
    return "error" not in result and (
        result.get("stalls", 0) > 0
        or result.get("server_wait", 0.0) > STARVED
        or result.get("loadgen_wait", 0.0) > STARVED
        or stalled_idle(result)
    )


def stalled_idle(result: dict[str, Any]) -> bool:
    """Server and load generator both asleep through the window: the bytes between them were
    not delivered. Seen here when softirq work is pushed to ksoftirqd, itself starved."""
    server = result.get("server_cpu", -1.0) + max(0.0, result.get("server_wait", 0.0))
    loadgen = result.get("loadgen_cpu", 0.0) + result.get("loadgen_wait", 0.0)
    return 0.0 <= server < IDLE and loadgen < IDLE
