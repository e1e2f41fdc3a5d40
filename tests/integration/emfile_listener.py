"""A child process for test_m3ua_probes: the M3UA/TCP listener of the node
(:class:`scp.adapters.tcp.TcpTransport`) on the event loop named in argv[1] (``asyncio`` or
``uvloop``), with so few file descriptors left that accept() fails with EMFILE. Prints, one
per line: ``port N``, ``up N`` (associations so far), ``log EVENT NOT_LOGGED_SINCE`` (each
line the transport logs); exits when stdin closes."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from typing import Any

import structlog
import uvloop

from scp.adapters.tcp import TcpTransport

HEADROOM = 8  # descriptors left once listening: a few connections, then EMFILE


def say(line: str) -> None:
    print(line, flush=True)


class Handler:
    def __init__(self) -> None:
        self.up = 0

    def association_up(self, assoc_id: int, peer: tuple[str, int], local: tuple[str, int]) -> None:
        self.up += 1
        say(f"up {self.up}")

    def association_data(self, assoc_id: int, data: bytes, stream: int) -> None:
        pass

    def association_down(self, assoc_id: int, reason: str) -> None:
        pass


class Lines:
    def warning(self, event: str, **fields: Any) -> None:
        say(f"log {event} {fields.get('not_logged_since')}")


async def main() -> None:
    loop = asyncio.get_running_loop()
    t = TcpTransport(
        handler=Handler(),
        role="server",
        listen=("127.0.0.1", 0),
        max_connections=1000,
        max_connections_per_address=1000,
    )
    t.rationed.logger = Lines()
    await t.start()
    used = len(os.listdir("/proc/self/fd"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + HEADROOM, hard))
    say(f"port {t.listening[0][1]}")
    done = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: done.set() if not os.read(0, 64) else None)
    await done.wait()
    loop.remove_reader(sys.stdin.fileno())
    await t.stop()


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if sys.argv[1] == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())
