"""What every part of the web application shares (:class:`WebContext`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

from scp.config import Config
from scp.service.stats import NodeStats


@dataclass(frozen=True)
class NodeSnapshot:
    """What a node exports at ``/metrics`` (:mod:`scp.web.metrics`), read at scrape time."""

    stats: NodeStats
    # association -> ASP state (RFC 4666 §4.3.1); the AS state of our routing context
    asp_states: Mapping[int, str]
    as_state: str
    sccp_returns: Mapping[str, int]
    # the SMPP session's counters (submit_sm, throttled, ...) and window
    smpp: Mapping[str, int]
    smpp_window_in_use: int
    smpp_window: int
    # the outbox sender: SMS submitted, failed (given up / refused), retried
    sms_submitted: int
    sms_failed: int
    sms_retried: int
    outbox_depth: int
    outbox_oldest_age: float
    # [overload]: whether the node is shedding load now, and the CallGaps it sent
    overloaded: bool = False
    call_gaps_sent: int = 0


@dataclass(frozen=True)
class WorkerMetrics:
    """The node's worker processes at scrape time (``mcn-scp run --workers N``): this one's
    worker ID and each sibling's own ``/metrics`` text, None for a sibling that did not answer."""

    worker_id: int
    siblings: Mapping[int, bytes | None]


# A readiness check: name -> callable answering (ready, detail). The node adds its own (M3UA
# AS active, SMSC bound); a web-only process has the database check alone.
ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]


@dataclass
class WebContext:
    """What every part of the web application may use: the config, the database pool and the
    wall clock (the one the node's flows use), plus readiness checks and shared state."""

    cfg: Config
    pool: asyncpg.Pool
    wall_now: Callable[[], dt.datetime]
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)
    # "web" when run alone by `mcn-scp web`, "node" inside `mcn-scp run`
    role: str = "node"
    # the node's counters and state for /metrics, read at each scrape (None: a web-only process)
    node_metrics: Callable[[], Awaitable[NodeSnapshot]] | None = None
    # the sibling workers' metrics, read at each scrape (None: the node runs one process)
    worker_metrics: Callable[[], Awaitable[WorkerMetrics]] | None = None
    # run once the server stopped taking requests (a part's own clean-up: jobs it runs)
    stop_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
