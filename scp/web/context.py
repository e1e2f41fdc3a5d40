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
    """What a node process exports at ``/metrics`` (:mod:`scp.web.metrics`), read at scrape
    time and handed to the web child as text (:mod:`scp.adapters.worker_metrics`)."""

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
class NodeMetrics:
    """The metrics of the node a web child serves for (``mcn-scp run``), read at scrape time
    over the node-local link: each node process's exposition text by worker ID, None for one
    that did not answer; ``per_worker``: the node runs ``--workers N`` processes, so each
    one's samples are labelled with its worker ID."""

    texts: Mapping[int, bytes | None]
    per_worker: bool = False


# A readiness check: name -> callable answering (ready, detail). A web-only process has the
# database check alone; the node's web child adds the node's own (M3UA AS active, SMSC bound).
ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]
# Several checks answered at once, name -> (ready, detail): the node's, over its link
ReadyChecks = Callable[[], Awaitable[Mapping[str, tuple[bool, str]]]]


@dataclass
class WebContext:
    """What every part of the web application may use: the config, the database pool and the
    wall clock, plus readiness checks and shared state."""

    cfg: Config
    pool: asyncpg.Pool
    wall_now: Callable[[], dt.datetime]
    ready_checks: dict[str, ReadyCheck] = field(default_factory=dict)
    # "web" when run alone by `mcn-scp web`, "node" as the web child of `mcn-scp run`
    role: str = "node"
    # the node's checks (M3UA, SMSC), asked at each /readyz (None: a web-only process)
    node_ready: ReadyChecks | None = None
    # the node's processes' metrics, read at each scrape (None: a web-only process)
    node_metrics: Callable[[], Awaitable[NodeMetrics]] | None = None
    # run once the server stopped taking requests (a part's own clean-up: jobs it runs)
    stop_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
