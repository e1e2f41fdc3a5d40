"""What every part of the web application shares (:class:`WebContext`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from scp.config import Config

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
    # run once the server stopped taking requests (a part's own clean-up: jobs it runs)
    stop_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
