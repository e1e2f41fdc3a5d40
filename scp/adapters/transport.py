"""What every M3UA transport adapter (TCP, SCTP) offers the node, and what it calls back.

The adapters only move whole M3UA messages between sockets and the sans-I/O stack: the node
implements :class:`AssociationHandler`; an adapter implements :class:`Transport`. Association
IDs are small integers the adapter allocates, unique for the life of the process.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

_assoc_ids = itertools.count(1)

STABLE_ASSOCIATION = 10.0  # s an association must last before the reconnect backoff starts over
# s between two log lines of one repeated accept-side condition (descriptors exhausted, the
# connection limit reached): a flood of connections must not become a flood of log lines
ACCEPT_LOG_INTERVAL = 60.0


def new_assoc_id() -> int:
    """A process-wide unique association ID (TCP and SCTP share the space)."""
    return next(_assoc_ids)


class RationedLog:
    """Logs a repeated condition at most once per ``interval`` seconds (the event loop's clock),
    each line saying how many occurrences were not logged since the last one."""

    def __init__(self, logger: Any, interval: float = ACCEPT_LOG_INTERVAL) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, event: str, **fields: Any) -> bool:
        """Log ``event`` unless it was logged within the interval; True if it was logged now."""
        now = asyncio.get_running_loop().time()
        last = self._last.get(event)
        if last is not None and now - last[0] < self.interval:
            self._last[event] = (last[0], last[1] + 1)
            return False
        self._last[event] = (now, 0)
        self.logger.warning(event, not_logged_since=last[1] if last else 0, **fields)
        return True


# errno values with which accept() says the process or the system is out of resources
ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_RETRY_DELAY = 1.0  # s before accepting again after the descriptors ran out


class ConnectionLimits:
    """Who may open one more connection to the listener (server role): at most
    ``max_connections`` at once, at most ``per_address`` from one address, and ``per_address``
    places kept for each address of ``[[m3ua.binding]]`` (``bound``), which connections from
    elsewhere cannot take: a host opening connections and never activating an ASP cannot lock
    the configured peers out. Addresses are compared in canonical form
    (:func:`scp.core.m3ua_asp.canonical_address`)."""

    def __init__(self, max_connections: int, per_address: int, bound: frozenset[str]) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.bound = bound
        # places connections from addresses not bound may fill
        self.unbound_places = max(max_connections - per_address * len(bound), 0)
        self._open: dict[str, int] = {}  # address -> connections open from it

    def refuses(self, address: str) -> str | None:
        """Why one more connection from ``address`` is refused (the limit's key), or None."""
        total = sum(self._open.values())
        if total >= self.max_connections:
            return "max_connections"
        if self._open.get(address, 0) >= self.per_address:
            return "max_connections_per_address"
        if address not in self.bound:
            unbound = sum(n for a, n in self._open.items() if a not in self.bound)
            if unbound >= self.unbound_places:
                return "places kept for [[m3ua.binding]] addresses"
        return None

    def admit(self, address: str, peer: str, rationed: RationedLog) -> bool:
        """Count one more connection from ``address`` if the limits allow it; else log the
        refusal (rationed: a flood of connections is not a flood of lines) and say False,
        for the listener to close it at once, never an association."""
        why = self.refuses(address)
        if why is None:
            self.opened(address)
            return True
        rationed.warning(
            f"m3ua connection refused: {why}",
            max_connections=self.max_connections,
            max_connections_per_address=self.per_address,
            peer=peer,
        )
        return False

    def opened(self, address: str) -> None:
        self._open[address] = self._open.get(address, 0) + 1

    def closed(self, address: str) -> None:
        left = self._open.get(address, 0) - 1
        if left > 0:
            self._open[address] = left
        else:
            self._open.pop(address, None)


class AssociationHandler(Protocol):
    """Callbacks from a transport into the node; each must return quickly and never raise."""

    def association_up(
        self, assoc_id: int, peer: tuple[str, int], local: tuple[str, int]
    ) -> None: ...

    def association_data(self, assoc_id: int, data: bytes, stream: int) -> None: ...

    def association_down(self, assoc_id: int, reason: str) -> None: ...


class Transport(Protocol):
    """A started transport: servers listen, clients keep their peers connected."""

    async def start(self) -> None: ...

    def send(self, assoc_id: int, stream: int, data: bytes) -> bool: ...

    def close_association(self, assoc_id: int, reason: str) -> None: ...

    async def stop(self) -> None: ...

    @property
    def listening(self) -> list[tuple[str, int]]: ...


class Backoff:
    """Exponential reconnect backoff: ``min`` doubling up to ``max`` seconds, reset on success."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._next = minimum

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.minimum


async def keep_connected(
    peer: tuple[str, int],
    connect_once: Callable[[], Awaitable[asyncio.Future[None]]],
    *,
    backoff: Backoff,
    stopping: Callable[[], bool],
    log: Any,
    transport: str,
) -> None:
    """Client role: connect to ``peer``, wait for the association to be lost, reconnect.

    ``connect_once`` opens one association and returns a future resolved when it is lost; an
    ``OSError`` means the attempt failed. Both failures and losses wait ``backoff``; the backoff
    only starts over after an association that lasted, so a peer that accepts and drops at once
    (an STP refusing an unknown ASP) is not redialled at the minimum delay forever.
    """
    name = f"{peer[0]}:{peer[1]}"
    loop = asyncio.get_running_loop()
    while not stopping():
        try:
            lost = await connect_once()
        except OSError as e:
            delay = backoff.next_delay()
            log.warning(f"m3ua {transport} connect failed", peer=name, error=str(e), retry_in=delay)
            await asyncio.sleep(delay)
            continue
        log.info(f"m3ua {transport} connected", peer=name)
        since = loop.time()
        await lost
        if loop.time() - since >= STABLE_ASSOCIATION:
            backoff.reset()
        if not stopping():
            delay = backoff.next_delay()
            log.warning(f"m3ua {transport} association lost", peer=name, retry_in=delay)
            await asyncio.sleep(delay)
