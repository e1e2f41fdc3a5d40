"""Composition root: builds the protocol cores and the adapters from the config and wires them.

The node owns one :class:`~scp.core.stack.SigtranStack` (M3UA + SCCP + TCAP cores), run by the
one asyncio driver (:class:`~scp.adapters.driver.CoreDriver`), one TC-user (a
:class:`~scp.service.dialogue.Dispatcher` over the users :class:`TcUsers` wires: call control
and MAP presence; :class:`~scp.service.dialogue.ContinueUser` alone when none is given) and one
transport adapter (TCP or SCTP). Everything protocol happens in the cores; this module only
says where each of the stack's outputs goes: bytes to the transport, TC indications to the
TC-user and its requests back to the stack, log lines to structlog.

Shutdown (SIGINT/SIGTERM, ARCHITECTURE §3): M3UA takes the ASPs down (ASPIA/ASPDN in client
role, so the peer sees a clean stop), waits briefly for the acknowledgements, then closes every
socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import json
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.clock import from_epoch, utcnow
from scp.adapters.driver import CoreDriver
from scp.adapters.http import HttpServer
from scp.adapters.sctp import SctpTransport, sctp_available
from scp.adapters.smpp import make_gateway
from scp.adapters.tcp import TcpTransport
from scp.adapters.transport import AssociationHandler
from scp.adapters.web_child import ChildLink, Handover, WebChild, lower_priority
from scp.adapters.worker_link import WorkerLink
from scp.adapters.worker_metrics import MetricsServer, fetch, private_directory
from scp.config import Config, ConfigError, _host_port
from scp.core.m3ua_asp import (
    AspState,
    AspStateChanged,
    AsStateChanged,
    CloseAssociation,
    Dropped,
    M3uaLayer,
    MtpStatus,
    OpcRefused,
    PeerNotify,
    Transmit,
)
from scp.core.sccp import SccpLayer, SccpLog
from scp.core.stack import SigtranStack, StackOutput
from scp.core.tcap import DialogueState, ForwardToWorker, TcapLayer, TcapLog
from scp.core.worker_link import WorkerLinkError, decode_forward, encode_forward
from scp.flows.calls import CallUser, build_call_user
from scp.flows.outbox import OutboxSender, build_outbox, retry_policy
from scp.flows.presence import MapUser, build_map_user, run_alert_originator
from scp.flows.retention import run_retention, run_voicemail_retention
from scp.flows.selfservice import WebSettings, run_purge
from scp.primitives import TcBegin, TcEnd, TcPrimitive, TcUAbort
from scp.service.dialogue import ContinueUser, DialogueUser, Dispatcher
from scp.service.overload import Measures, OverloadControl
from scp.service.screening import LogRation, Screener
from scp.service.stats import NodeStats
from scp.state.migrate import open_migrated_pool
from scp.web.app import create_app
from scp.web.context import NodeMetrics, NodeSnapshot, WebContext
from scp.web.metrics import process_families, render

log = structlog.get_logger("scp.node")

SHUTDOWN_GRACE = 1.0  # s to wait for ASPDN_ACK / queued writes before closing sockets


def build_stack(cfg: Config, *, siblings: frozenset[int] = frozenset()) -> SigtranStack:
    """The cores exactly as the live node uses them (replay, simulator and bench call this too);
    ``siblings``: the worker IDs of the node's other processes (``mcn-scp run --workers``)."""
    m = cfg.m3ua
    return SigtranStack(
        m3ua=M3uaLayer(
            role=m.role,
            local_pc=m.local_pc,
            routing_context=m.routing_context,
            network_indicator=m.network_indicator,
            traffic_mode=m.traffic_mode,
            asp_identifier=m.asp_identifier,
            beat_interval=m.beat_interval,
            beat_timeout=m.beat_timeout,
            ack_timeout=m.ack_timeout,
            max_pc=m.pcf.max_pc,
            aspup_timeout=m.aspup_timeout,
            pc_bindings=m.pc_bindings(),
        ),
        sccp=SccpLayer(
            local_pc=m.local_pc,
            global_title=cfg.sccp.global_title,
            local_ssns=(cfg.sccp.ssn.cap, cfg.sccp.ssn.map, cfg.sccp.ssn.sc, cfg.sccp.ssn.inap),
            ni=m.network_indicator,
            default_dpc=cfg.sccp.default_dpc or None,
            max_udt_data=cfg.sccp.max_udt_data,
            reassembly_timeout=cfg.sccp.reassembly_timeout,
            pcf=m.pcf,
        ),
        tcap=TcapLayer(
            worker_id=cfg.node.worker_id,
            idle_timeout=cfg.tcap.idle_timeout,
            invoke_timeout=cfg.tcap.invoke_timeout,
            max_dialogues=cfg.tcap.max_dialogues,
            max_dialogues_per_peer=cfg.tcap.max_dialogues_per_peer,
            max_dialogues_per_association=cfg.tcap.max_dialogues_per_association,
            siblings=siblings,
        ),
    )


@dataclass(frozen=True)
class WorkerSeat:
    """Where a worker of ``mcn-scp run --workers N`` sits: the directory of the node's
    worker sockets and the worker IDs of its siblings."""

    directory: str
    siblings: frozenset[int]


def worker_config(cfg: Config, index: int) -> Config:
    """The config of worker ``index`` (0-based) of the node ``cfg`` describes: its own worker ID
    (``[node] worker_id`` + index), its own ASP Identifier if one is set (``[m3ua]
    asp_identifier`` + index: RFC 4666 §3.8.1, unique per ASP) and, past the first, no web
    listener (one HTTP application per node; the others would fight for its port)."""
    node = replace(cfg.node, worker_id=cfg.node.worker_id + index, workers=1)
    aid = cfg.m3ua.asp_identifier
    m3ua = cfg.m3ua if aid is None else replace(cfg.m3ua, asp_identifier=aid + index)
    web = cfg.web if index == 0 else replace(cfg.web, listen="")
    return replace(cfg, node=node, m3ua=m3ua, web=web)


def worker_seat(cfg: Config, directory: str, index: int) -> WorkerSeat:
    """Worker ``index``'s seat among the ``[node] workers`` of the node ``cfg`` describes."""
    ids = range(cfg.node.worker_id, cfg.node.worker_id + cfg.node.workers)
    return WorkerSeat(directory, frozenset(i for i in ids if i != cfg.node.worker_id + index))


class Node(AssociationHandler):
    """One running SCP process: stack (run by its driver) + TC-user + transport."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        capture: str | Path | None = None,
        users: Callable[[Node], list[DialogueUser]] | None = None,
        stats: NodeStats | None = None,
        workers: WorkerSeat | None = None,
    ) -> None:
        self.cfg = cfg
        # the TC boundary is counted here for /metrics (the TC-users count in the same object)
        self.stats = stats if stats is not None else getattr(users, "stats", None) or NodeStats()
        self.clock = clock
        self.wallclock = wallclock
        self.stack = build_stack(cfg, siblings=workers.siblings if workers else frozenset())
        # the channel to the sibling workers (`mcn-scp run --workers N`), None when alone
        self.worker_link = (
            WorkerLink(workers.directory, cfg.node.worker_id, self._forwarded)
            if workers is not None
            else None
        )
        # TC-users, first match wins on TC-BEGIN (TcUsers for the node with its database);
        # none given, the stack alone (tests, benchmarks) answers InitialDP with Continue.
        self.screener = Screener(
            cfg.screening,
            stats=self.stats.screening,
            map_ssns=(cfg.sccp.ssn.map, cfg.sccp.ssn.sc),  # the MAP user's (v1 BEGINs)
        )
        # DATA refused by [[m3ua.binding]]: one log line per peer address per interval
        self._opc_refusals = LogRation(cfg.screening.log_interval)
        self.overload = OverloadControl(cfg.overload)
        self.user = Dispatcher(
            users(self) if users is not None else [ContinueUser()], screen=self._screen
        )
        self.transport = self._build_transport()
        self._stopped = asyncio.Event()
        self._peers: dict[int, tuple[tuple[str, int], tuple[str, int]]] = {}
        self._capture = SctpPcapWriter.open(str(capture)) if capture else None
        self.log = log.bind(node=cfg.node.name)
        if workers is not None:  # which of the node's processes says it
            self.log = self.log.bind(worker=cfg.node.worker_id)
        self.driver: CoreDriver[StackOutput] = CoreDriver(
            self.stack, self._output, clock=clock, logger=self.log
        )

    def _build_transport(self) -> TcpTransport:
        m = self.cfg.m3ua
        listen = _host_port(m.listen, "m3ua.listen") if m.role == "server" else None
        peers = tuple(_host_port(p, f"m3ua.peers[{i}]") for i, p in enumerate(m.peers))
        kwargs = dict(
            handler=self,
            role=m.role,
            listen=listen,
            peers=peers,
            reconnect_min=m.reconnect_min,
            reconnect_max=m.reconnect_max,
            max_connections=m.max_connections,
            max_connections_per_address=m.max_connections_per_address,
            bound_addresses=m.bound_addresses(),
            reuse_port=self.worker_link is not None,
        )
        if m.transport == "sctp":
            ok, why = sctp_available()
            if not ok:
                raise ConfigError("m3ua.transport", f"sctp is not usable here: {why}")
            return SctpTransport(**kwargs)  # type: ignore[arg-type,return-value]
        return TcpTransport(**kwargs)  # type: ignore[arg-type]

    @property
    def association_ids(self) -> list[int]:
        """The associations up now."""
        return list(self._peers)

    def _outgoing(self, req: TcPrimitive, now: float) -> TcPrimitive:
        """A TC request on its way to TCAP: counted, and the answer to an InitialDP given a
        CallGap while the node is overloaded (``[overload]``, scp/service/overload.py)."""
        sig = self.stats.signalling
        did = req.dialogue_id
        ac = sig.ac_of(did)
        if not sig.request(req, now) or not self.cfg.overload.enabled:
            return req
        changed = self.overload.update(
            Measures(sig.open_dialogues, sig.initial_dp_latency_avg, self.overload.outbox_age)
        )
        if changed is not None:
            self.log.warning(
                "overload: sending CallGap" if changed else "overload over: CallGap stopped",
                dialogues=sig.open_dialogues,
                answer_latency=round(sig.initial_dp_latency_avg, 4),
                outbox_age=self.overload.outbox_age,
            )
        return self.overload.call_gap(
            req,
            ac=ac,
            service_key=self.cfg.service.terminating_service_key,
            switch=self.stack.tcap.peer_pc(did),
            now=now,
        )

    def _opc_refused(self, o: OpcRefused) -> None:
        """DATA from a peer with an OPC bound to other addresses ([[m3ua.binding]]): counted
        with the screening refusals, logged at most once per peer address per interval."""
        self.stats.screening.refused["m3ua", "DATA", "opc_binding"] += 1
        suppressed = self._opc_refusals.due(str(o.peer), self.clock())
        if suppressed is not None:
            self.log.warning(
                "m3ua DATA refused: OPC bound to other peers",
                assoc=o.assoc_id,
                peer=o.peer,
                opc=o.opc,
                not_logged_since=suppressed,
            )

    def _screen(self, begin: TcBegin) -> TcPrimitive | None:
        """SS7 screening of a TC-BEGIN (``[screening]``): the refusal to send, or None."""
        tcap = self.stack.tcap
        did = begin.dialogue_id
        s = self.screener.check(
            begin, opc=tcap.peer_pc(did), now=self.clock(), assoc=tcap.peer_association(did)
        )
        if s is None:
            return None
        if s.log:
            self.log.warning(
                "screening refused",
                source=s.source,
                protocol=s.refusal.protocol,
                operation=s.refusal.operation,
                reason=s.refusal.reason,
                not_logged_since=s.suppressed,
            )
        return s.answer

    def wall_now(self) -> dt.datetime:
        """The wall clock (``wallclock``) as an aware UTC datetime: the time of business
        events (missed calls, presence, SMS) that the TC-users write."""
        return from_epoch(self.wallclock())

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.worker_link is not None:
            self.worker_link.start()  # before the associations: a sibling may forward at once
        await self.transport.start()
        self.log.info(
            "scp node up",
            role=self.cfg.m3ua.role,
            transport=self.cfg.m3ua.transport,
            listen=[f"{h}:{p}" for h, p in self.transport.listening],
            peers=list(self.cfg.m3ua.peers),
            local_pc=self.cfg.m3ua.local_pc,
            routing_context=self.cfg.m3ua.routing_context,
            gt=self.cfg.sccp.global_title,
            event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
        )

    async def serve_forever(self, *, install_signals: bool = True, stop: bool = True) -> None:
        """Run until SIGINT/SIGTERM (or :meth:`request_stop`); then stop the node if ``stop``."""
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._stopped.wait()
        finally:
            if install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        if stop:
            await self.stop()

    def request_stop(self) -> None:
        self.log.info("shutdown requested")
        self._stopped.set()

    async def stop(self) -> None:
        """Open dialogues aborted toward their peers (a switch mid-call applies its default
        call handling at once instead of waiting for its own timers), then ASP down toward every
        peer with a short grace for the acknowledgements, then the sockets closed."""
        for did in self.stack.tcap.open_dialogues():
            self.tc_send(TcUAbort(did))
        self.driver.feed(self.stack.shutdown, "shutdown")
        deadline = self.clock() + SHUTDOWN_GRACE
        m3ua = self.stack.m3ua
        while self.clock() < deadline and any(
            m3ua.asp_state(a) is not AspState.DOWN for a in list(self._peers)
        ):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # let the last writes leave the socket buffers
        await self.transport.stop()
        if self.worker_link is not None:
            self.worker_link.stop()
        self.driver.close()
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        self.log.info("scp node stopped")

    # -- AssociationHandler ----------------------------------------------------------------------

    def association_up(self, assoc_id: int, peer: tuple[str, int], local: tuple[str, int]) -> None:
        self._peers[assoc_id] = (peer, local)
        self.log.info("association up", assoc=assoc_id, peer=f"{peer[0]}:{peer[1]}")
        stack = self.stack
        host = peer[0]
        self.driver.feed(lambda now: stack.association_up(assoc_id, now, host), "association up")

    def association_data(self, assoc_id: int, data: bytes, stream: int) -> None:
        if self._capture is not None:
            self._capture_write(assoc_id, data, stream, inbound=True)
        stack = self.stack
        self.driver.feed(
            lambda now: stack.receive(assoc_id, data, now, stream),
            "message handling",
            assoc=assoc_id,
            data=data,
        )

    def association_down(self, assoc_id: int, reason: str) -> None:
        self.log.info("association down", assoc=assoc_id, reason=reason)
        try:
            stack = self.stack
            self.driver.feed(lambda now: stack.association_down(assoc_id, now), "association down")
        finally:
            self._peers.pop(assoc_id, None)

    # -- TC-user entry points ------------------------------------------------------------------

    def tc_send(self, req: TcPrimitive) -> None:
        """Send a TC request from a TC-user that answers later (after an await)."""
        if isinstance(req, (TcEnd, TcUAbort)):
            self.user.release(req.dialogue_id)
        req = self._outgoing(req, self.clock())
        stack = self.stack
        self.driver.feed(lambda now: stack.tc_request(req, now), "tc request")
        if (
            type(req) is TcBegin
            and self.stack.tcap.dialogue_state(req.dialogue_id) is DialogueState.IDLE
        ):
            # TCAP refused to open it (encode error, resource limit): nobody will ever end it.
            self.user.release(req.dialogue_id)

    def new_dialogue_id(self, user: DialogueUser) -> int:
        """A dialogue ID for a dialogue we open (TC-BEGIN request) owned by ``user``."""
        did = self.stack.tcap.new_dialogue_id()
        self.user.bind(did, user)
        return did

    # -- output routing --------------------------------------------------------------------------

    def _output(self, o: StackOutput) -> None:
        """Where each output of the stack goes (the driver hands them over in order)."""
        match o:
            case Transmit():
                self._transmit(o)
            case CloseAssociation():
                self.log.warning("closing association", assoc=o.assoc_id, reason=o.reason)
                self.transport.close_association(o.assoc_id, o.reason)
            case AspStateChanged():
                self.log.info("asp state", assoc=o.assoc_id, old=str(o.old), new=str(o.new))
            case ForwardToWorker():
                self._forward(o)
            case OpcRefused():
                self._opc_refused(o)
            case AsStateChanged() | Dropped() | MtpStatus() | PeerNotify() | SccpLog() | TcapLog():
                self._log_output(o)
            case _:  # what remains is a TC indication: mypy checks handle() takes exactly that
                stack = self.stack
                now = self.clock()
                self.stats.signalling.indication(o, now)
                for req in self.user.handle(o):
                    req = self._outgoing(req, now)
                    self.driver.feed(partial(_tc_request, stack, req), "tc request")

    def _forward(self, o: ForwardToWorker) -> None:
        """A message for a sibling worker's transaction goes to that worker (ARCHITECTURE §5)."""
        link = self.worker_link
        if link is None or not link.send(o.worker_id, encode_forward(o.ind, self.cfg.m3ua.pcf)):
            self.log.warning("message for another worker dropped", owner=o.worker_id)

    def _forwarded(self, frame: bytes) -> None:
        """A sibling handed us a message for one of our transactions: into our TCAP."""
        try:
            ind = decode_forward(frame, self.cfg.m3ua.pcf)
        except WorkerLinkError as e:
            self.log.warning("bad frame from a sibling worker dropped", error=str(e))
            return
        stack = self.stack
        self.driver.feed(
            lambda now: stack.receive_forwarded(ind, now), "forwarded message", data=ind.data
        )

    def _transmit(self, o: Transmit) -> None:
        if not self.transport.send(o.assoc_id, o.stream, o.data):
            self.log.warning("transmit on a closed association dropped", assoc=o.assoc_id)
            return
        self._capture_write(o.assoc_id, o.data, o.stream, inbound=False)

    def _capture_write(self, assoc_id: int, data: bytes, stream: int, *, inbound: bool) -> None:
        if self._capture is None:
            return
        peer, local = self._peers.get(assoc_id, (("0.0.0.0", 0), ("0.0.0.0", 0)))
        src, dst = (peer, local) if inbound else (local, peer)
        try:
            self._capture.write(data, ts=self.wallclock(), src=src, dst=dst, stream=stream)
        except (OSError, ValueError) as e:  # a full disk must not stop the signalling
            self.log.warning("capture write failed", error=str(e))

    def _log_output(self, o: object) -> None:
        fields: dict[str, object] = {}
        for k in getattr(o, "__dataclass_fields__", {}):
            v = getattr(o, k)
            # "event" is structlog's own key (SccpLog/TcapLog carry one): keep both.
            fields["what" if k == "event" else k] = v.hex() if isinstance(v, bytes) else v
        self.log.info(type(o).__name__, **fields)


def _tc_request(stack: SigtranStack, req: TcPrimitive, now: float) -> list[StackOutput]:
    return stack.tc_request(req, now)


class TcUsers:
    """The node's TC-users, first match wins on TC-BEGIN: CAP / INAP call control
    (:mod:`scp.flows.calls`) and MAP presence (:mod:`scp.flows.presence`), on ``pool``.

    Called with the node once it exists (``Node(cfg, users=TcUsers(pool, cfg))``): the users
    send through it and read its clocks. The live node, the in-process SCP of replay and the
    simulator all take their users from here. ``stats`` is the node's one
    :class:`~scp.service.stats.NodeStats`: the users count in it, the metrics export it.
    """

    def __init__(self, pool: asyncpg.Pool, cfg: Config, *, stats: NodeStats | None = None) -> None:
        self.pool = pool
        self.cfg = cfg
        self.stats = stats if stats is not None else NodeStats()
        self.call: CallUser | None = None
        self.map: MapUser | None = None

    def __call__(self, node: Node) -> list[DialogueUser]:
        self.call = build_call_user(node, self.pool, self.cfg, stats=self.stats.calls)
        self.map = build_map_user(node, self.pool, self.cfg)
        return [self.call, self.map]

    @property
    def busy(self) -> bool:
        """A TC-user is still working on something it was given (replay waits for it)."""
        return any(u is not None and u.busy for u in (self.call, self.map))

    async def aclose(self) -> None:
        """MAP requests in flight finish, then the call path gives its connections back to the
        pool (before the pool closes)."""
        if self.map is not None:
            await self.map.drain()
        if self.call is not None:
            await self.call.aclose()


def build_users(pool: asyncpg.Pool, cfg: Config, *, stats: NodeStats | None = None) -> TcUsers:
    """The TC-users of a node on ``pool``, counting in ``stats`` (see :class:`TcUsers`)."""
    return TcUsers(pool, cfg, stats=stats)


class Services:
    """The node with its service side: call control, MAP presence, the SMS outbox and gateway.

    Start order: database (migrated) -> node (TC-users wired) -> SMPP gateway -> the
    node-local link -> the web child (``[web] listen``) -> outbox sender and HLR-alert
    originator. Stop order is the reverse, so nothing in flight is dropped: the web child
    stops, the sender stops claiming, MAP requests in flight finish, the gateway unbinds, then
    M3UA goes down and the pool closes.

    The web application runs in a child process (:mod:`scp.adapters.web_child`), never on
    this process's loop; it reads the node's readiness and metrics over the node-local link
    (:mod:`scp.adapters.worker_metrics`), which every process of a ``--workers`` node serves
    and, for its child, a node of one process too. ``dsn`` is the database the child opens
    (None: it resolves it as every command does, ``$MCN_DATABASE_URL`` or the embedded server).
    """

    def __init__(
        self,
        cfg: Config,
        pool: asyncpg.Pool,
        *,
        capture: str | None = None,
        workers: WorkerSeat | None = None,
        dsn: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.pool = pool
        self.dsn = dsn
        self.outbox = build_outbox(pool, cfg)
        self.gateway = make_gateway(
            cfg.smpp,
            on_receipt=self.outbox.record_receipt,
            on_mo=self.outbox.record_mo,
            on_foreign_receipt=self.outbox.record_foreign_receipt,
        )
        self.users = build_users(pool, cfg)
        self.node = Node(cfg, capture=capture, users=self.users, workers=workers)
        self.seat = workers
        # the node-local link: each process of the node answers the web child on it (under
        # --workers in the parent's worker directory, alone in a private one of its own)
        self._own_directory: str | None = None
        self.link_directory = workers.directory if workers is not None else None
        self.metrics_server: MetricsServer | None = None
        self.web: WebChild | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.sender: OutboxSender | None = None

    def wall_now(self) -> dt.datetime:
        """The node's wall clock as the background loops and the database see it."""
        return self.node.wall_now()

    async def start(self) -> None:
        if open_lists := self.cfg.screening.open_lists():
            # the live node only: replay and the simulator build nodes too, and stay quiet
            self.node.log.warning(
                "screening allows every sender", sections=open_lists, see="README, SS7 screening"
            )
        await self.node.start()
        self.gateway.start()
        if self.cfg.web.listen and self.link_directory is None:
            self.link_directory = self._own_directory = private_directory("node")
        if self.link_directory is not None:
            self.metrics_server = MetricsServer(
                self.link_directory, self.cfg.node.worker_id, self._own_metrics, self._readiness
            )
            await self.metrics_server.start()
        if self.cfg.web.listen:
            await self._start_web(self.link_directory)
        self.sender = OutboxSender(
            outbox=self.outbox,
            gateway=self.gateway,
            clock=self.wall_now,
            window=self.cfg.smpp.window,
            policy=retry_policy(self.cfg),
        )
        map_user = self.users.map
        assert map_user is not None  # built with the node
        self._tasks = [
            asyncio.create_task(
                self._keep_running("outbox-sender", self.sender.run), name="outbox-sender"
            ),
            asyncio.create_task(
                self._keep_running(
                    "hlr-alert-originator",
                    lambda: run_alert_originator(
                        map_user,
                        self.pool,
                        self.cfg,
                        clock=self.wall_now,
                        ready=lambda: self.node.stack.m3ua.is_active,
                        stop=self._stop,
                    ),
                ),
                name="hlr-alert-originator",
            ),
            asyncio.create_task(
                self._keep_running("overload-outbox-age", self._watch_outbox_age),
                name="overload-outbox-age",
            ),
            # voice messages past [voicemail] retention_days, spent Idempotency-Keys
            asyncio.create_task(
                self._keep_running(
                    "voicemail-retention",
                    lambda: run_voicemail_retention(self.pool, self.cfg, self.wall_now, self._stop),
                ),
                name="voicemail-retention",
            ),
            # records past their [retention], in small batches, one node at a time
            asyncio.create_task(
                self._keep_running(
                    "retention",
                    lambda: run_retention(self.pool, self.cfg.retention, self.wall_now, self._stop),
                ),
                name="retention",
            ),
            # the web's expired sessions and codes, old login attempts (at [retention] interval)
            asyncio.create_task(
                self._keep_running(
                    "web-purge",
                    lambda: run_purge(
                        self.pool,
                        WebSettings.from_config(self.cfg),
                        self.wall_now,
                        self._stop,
                        self.cfg.retention.interval,
                    ),
                ),
                name="web-purge",
            ),
            # MO SMS whose command failed stay stored and unhandled: retried with backoff.
            asyncio.create_task(
                self._keep_running(
                    "mo-retry", lambda: self.outbox.run_mo_retry(self._stop, self.wall_now)
                ),
                name="mo-retry",
            ),
        ]

    async def metrics_snapshot(self) -> NodeSnapshot:
        """What ``/metrics`` exports, read now: the counters the parts keep, the cores' state
        and the outbox backlog (one query on the claim index)."""
        m3ua = self.node.stack.m3ua
        depth, oldest = await self.outbox.backlog(self.wall_now())
        core = getattr(self.gateway, "core", None)  # the console sink has no SMPP session
        sender = self.sender
        return NodeSnapshot(
            stats=self.users.stats,
            asp_states={
                a: m3ua.asp_state(a).name.lower() for a in sorted(self.node.association_ids)
            },
            as_state=m3ua.as_state.name.lower(),
            sccp_returns=dict(self.node.stack.sccp.returns),
            smpp=dict(core.stats) if core is not None else {},
            smpp_window_in_use=core.inflight if core is not None else 0,
            smpp_window=self.cfg.smpp.window,
            sms_submitted=sender.submitted if sender is not None else 0,
            sms_failed=sender.failed if sender is not None else 0,
            sms_retried=sender.retried if sender is not None else 0,
            outbox_depth=depth,
            outbox_oldest_age=oldest,
            overloaded=self.node.overload.overloaded,
            call_gaps_sent=self.node.overload.gaps_sent,
        )

    async def _start_web(self, directory: str | None) -> None:
        """The web child on ``[web] listen`` (:mod:`scp.adapters.web_child`), linked to this
        node: one per node, started by the process that has the listen address (worker 0)."""
        assert directory is not None
        me = self.cfg.node.worker_id
        siblings = sorted(self.seat.siblings) if self.seat is not None else []
        host, port = _host_port(self.cfg.web.listen, "web.listen")
        self.web = WebChild(
            web_child_command(),
            Handover(
                config=self.cfg,
                dsn=self.dsn,
                directory=directory,
                workers=(me, *siblings),
                per_worker=self.seat is not None,
            ),
            host=host,
            port=port,
            logger=self.node.log,
        )
        await self.web.start()

    async def _own_metrics(self) -> bytes:
        """This process's families, as the web child reads them for ``/metrics``."""
        return render(process_families(self.pool, await self.metrics_snapshot()))

    async def _readiness(self) -> bytes:
        """This process's readiness checks, as the web child reads them for ``/readyz``."""
        checks = {"m3ua": await self._m3ua_ready(), "smsc": await self._smsc_ready()}
        return json.dumps(checks).encode()

    async def _watch_outbox_age(self) -> None:
        """``[overload] max_outbox_age``: the outbox age read every ``check_interval``."""
        cfg = self.cfg.overload
        if not cfg.max_outbox_age:
            return
        while not self._stop.is_set():
            _depth, self.node.overload.outbox_age = await self.outbox.backlog(self.wall_now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), cfg.check_interval)

    async def _m3ua_ready(self) -> tuple[bool, str]:
        active = self.node.stack.m3ua.is_active
        return active, "application server active" if active else "no active ASP"

    async def _smsc_ready(self) -> tuple[bool, str]:
        if self.cfg.smpp.backend == "console":
            return True, "console sink"
        bound = self.gateway.ready
        return bound, "bound" if bound else "not bound"

    async def _keep_running(self, name: str, run: Callable[[], Any]) -> None:
        """A background loop that must not die silently: restarted with backoff if it fails."""
        delay = 1.0
        while not self._stop.is_set():
            try:
                await run()
                return  # it ended because it was told to stop
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task failed, restarting", task=name, retry_in=delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 60.0)

    async def stop(self) -> None:
        if self.web is not None:  # no new web work once the node is going down
            await self.web.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self._own_directory is not None:
            shutil.rmtree(self._own_directory, ignore_errors=True)
        if self.sender is not None:
            self.sender.stop()
        self._stop.set()
        if self.users.map is not None:
            await self.users.map.drain()
        for t in self._tasks:
            try:
                await asyncio.wait_for(t, 10)
            except (TimeoutError, asyncio.CancelledError):
                t.cancel()
            except Exception:  # a failed background task must not block the shutdown
                log.exception("background task failed", task=t.get_name())
        await self.gateway.stop()
        await self.node.stop()
        # The call path gives its connections back before the pool closes.
        await self.users.aclose()


def freeze_loaded() -> int:
    """Move what is loaded by now out of the garbage collector's reach; the objects frozen.

    What a process has loaded once it is up lives as long as it, above all the codecs' compiled
    ASN.1 (pycrate: a quarter of a million objects). Out of the collector's reach, a full
    collection no longer walks it: about 120 ms of stalled signalling on this build machine
    each time the objects a long-running node accumulates trigger one. The node calls it once
    up; so do the simulated switch and the floor of bench/calls.py, where such a walk in the
    driver was the 40-70 ms p99 at 500/s the bench used to print."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def run_node(
    cfg: Config,
    *,
    capture: str | None = None,
    on_started: Callable[[Services], object] | None = None,
    workers: WorkerSeat | None = None,
) -> None:
    """``mcn-scp run``: everything up, serve until SIGINT/SIGTERM, everything down cleanly;
    ``workers``: this process is one worker of several (``mcn-scp run --workers N``)."""
    pool = await open_migrated_pool(options=cfg.database)
    try:
        services = Services(cfg, pool, capture=capture, workers=workers)
        await services.start()
        log.info("long-lived objects frozen", objects=freeze_loaded())
        try:
            extra: asyncio.Task[object] | None = None
            if on_started is not None:
                res = on_started(services)
                if asyncio.iscoroutine(res):
                    extra = asyncio.create_task(res, name="on-started")
            await services.node.serve_forever(stop=False)
            if extra is not None and not extra.done():
                extra.cancel()
        finally:
            await services.stop()
    finally:
        await pool.close()


def run_in_loop(cfg: Config, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to the end on the event loop ``[node] event_loop`` names."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if cfg.node.event_loop == "uvloop":
        import uvloop  # deferred: the asyncio setting runs without it

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def main_run(
    cfg: Config,
    *,
    capture: str | None = None,
    on_started: Callable[[Services], object] | None = None,
    workers: WorkerSeat | None = None,
) -> None:
    """:func:`run_node` until SIGINT/SIGTERM (the process's main loop)."""
    with contextlib.suppress(KeyboardInterrupt):
        run_in_loop(cfg, run_node(cfg, capture=capture, on_started=on_started, workers=workers))


async def run_stop_hooks(ctx: WebContext | None) -> None:
    """The web parts' clean-up once the server stopped taking requests (never fatal)."""
    for hook in ctx.stop_hooks if ctx is not None else ():
        try:
            await hook()
        except Exception:
            log.exception("web stop hook failed")


def build_http_server(
    cfg: Config, ctx: WebContext, *, sock: socket.socket | None = None
) -> HttpServer:
    """The one HTTP application (:mod:`scp.web`) on ``[web] listen`` (on ``sock``, the node's
    listening socket, in its web child)."""
    host, port = _host_port(cfg.web.listen, "web.listen")
    return HttpServer(
        create_app(ctx),
        host=host,
        port=port,
        tls_cert=cfg.web.tls_cert,
        tls_key=cfg.web.tls_key,
        trusted_proxies=cfg.web.trusted_proxies,
        max_connections=cfg.web.max_connections,
        sock=sock,
    )


def web_child_command() -> list[str]:
    """The web child of ``mcn-scp run``: this same ``mcn-scp`` in its ``web`` role (its link to
    the node, ``--node-link FD``, is added by :class:`~scp.adapters.web_child.WebChild`)."""
    return [sys.executable, "-m", "scp", "web"]


@dataclass(frozen=True)
class NodeSide:
    """What the web child reads from its node over the node-local link
    (:mod:`scp.adapters.worker_metrics`) at each request: the readiness of the process that
    started it, and the metrics of every process of the node."""

    directory: str
    workers: tuple[int, ...]
    per_worker: bool

    async def ready(self) -> Mapping[str, tuple[bool, str]]:
        """The node's checks; a node that does not answer is not ready, and says so."""
        raw = await fetch(self.directory, self.workers[0], "ready")
        if raw is None:
            return {"node": (False, "the node does not answer on its link")}
        try:
            return {str(k): (bool(ok), str(why)) for k, (ok, why) in json.loads(raw).items()}
        except (ValueError, TypeError, AttributeError):
            return {"node": (False, "the node's answer on its link is not readable")}

    async def metrics(self) -> NodeMetrics:
        """Every node process's metrics, read now (all at once, each within its timeout)."""
        texts = await asyncio.gather(*(fetch(self.directory, i) for i in self.workers))
        return NodeMetrics(dict(zip(self.workers, texts, strict=True)), self.per_worker)


async def run_web(
    cfg: Config,
    *,
    on_started: Callable[[HttpServer], object] | None = None,
    link: ChildLink | None = None,
) -> None:
    """``mcn-scp web``: the HTTP application alone on the shared database, no signalling, until
    SIGINT/SIGTERM. Any number of these may run beside the nodes.

    With ``link``, the web child of ``mcn-scp run`` (:mod:`scp.adapters.web_child`): on the
    node's listening socket, its CPU priority lowered by ``[web] nice``, ``/readyz`` and
    ``/metrics`` speaking for the node too; it stops when the node's end of the link closes.
    The node runs the web's expired-session purge: the child does not run it twice."""
    if not cfg.web.listen:
        raise ConfigError("web.listen", "is empty: nothing to serve")
    h = link.handover if link is not None else None
    if h is not None:
        log.info("web child of the node", nice=lower_priority(cfg.web.nice), workers=h.workers)
    pool = await open_migrated_pool(h.dsn if h is not None else None, options=cfg.database)
    try:
        ctx = WebContext(cfg=cfg, pool=pool, wall_now=utcnow, role="web")
        sock = None
        if h is not None:
            side = NodeSide(h.directory, h.workers, h.per_worker)
            ctx.role, ctx.node_ready, ctx.node_metrics = "node", side.ready, side.metrics
            sock = socket.socket(fileno=h.listen_fd)
        server = build_http_server(cfg, ctx, sock=sock)
        await server.start()
        stopped = asyncio.Event()
        purge: asyncio.Task[None] | None = None
        watch: asyncio.Task[None] | None = None
        if link is not None:
            await link.open()
            link.serving()
            watch = asyncio.create_task(_until_gone(link, stopped), name="node-link")
        else:
            purge = asyncio.create_task(
                run_purge(
                    pool, WebSettings.from_config(cfg), utcnow, stopped, cfg.retention.interval
                ),
                name="web-purge",
            )
        try:
            if on_started is not None:
                on_started(server)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopped.set)
            try:
                await stopped.wait()
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            log.info("shutdown requested")
        finally:
            stopped.set()
            await server.stop()
            await run_stop_hooks(ctx)
            if purge is not None:
                await purge
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            if link is not None:
                link.close()
    finally:
        await pool.close()
    log.info("web stopped")


async def _until_gone(link: ChildLink, stopped: asyncio.Event) -> None:
    """Stop the web child once its node is gone (its end of the link closed)."""
    await link.node_gone()
    if not stopped.is_set():
        log.warning("the node is gone: web child stopping")
        stopped.set()


def main_web(cfg: Config, *, link: ChildLink | None = None) -> None:
    """:func:`run_web` as the process's main loop."""
    with contextlib.suppress(KeyboardInterrupt):
        run_in_loop(cfg, run_web(cfg, link=link))
