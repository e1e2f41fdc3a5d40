"""Composition root: builds the protocol cores and the adapters from the config and wires them.

The node owns one :class:`~scp.core.stack.SigtranStack` (M3UA + SCCP + TCAP cores), one TC-user
(:class:`~scp.service.dialogue.TcUser`) and one transport adapter (TCP or SCTP). Everything
protocol happens in the cores; this module only carries outputs to where they go: bytes to the
transport, TC indications to the TC-user and its requests back to the stack, log lines to
structlog, and one asyncio timer set to the stack's ``next_deadline()``.

Shutdown (SIGINT/SIGTERM, ARCHITECTURE §3): M3UA takes the ASPs down (ASPIA/ASPDN in client
role, so the peer sees a clean stop), waits briefly for the acknowledgements, then closes every
socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.clock import from_epoch
from scp.adapters.sctp import SctpTransport, sctp_available
from scp.adapters.smpp import make_gateway
from scp.adapters.tcp import TcpTransport
from scp.adapters.transport import AssociationHandler
from scp.config import Config, ConfigError, _host_port
from scp.core.m3ua_asp import AspState, AspStateChanged, CloseAssociation, M3uaLayer, Transmit
from scp.core.sccp import SccpLayer
from scp.core.stack import TC_TYPES, SigtranStack
from scp.core.tcap import TcapLayer
from scp.flows.calls import CallUser, build_call_user
from scp.flows.outbox import OutboxSender, build_outbox, retry_policy
from scp.flows.presence import MapUser, build_map_user, run_alert_originator
from scp.flows.retention import run_retention
from scp.primitives import TcBegin, TcEnd, TcPrimitive, TcUAbort
from scp.service.dialogue import ContinueUser, DialogueUser, Dispatcher
from scp.state.migrate import open_migrated_pool

log = structlog.get_logger("scp.node")

SHUTDOWN_GRACE = 1.0  # s to wait for ASPDN_ACK / queued writes before closing sockets


def build_stack(cfg: Config) -> SigtranStack:
    """The cores exactly as the live node uses them (replay, simulator and bench call this too)."""
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
        ),
    )


class Node(AssociationHandler):
    """One running SCP process: stack + TC-user + transport + timer."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        capture: str | Path | None = None,
        users: Callable[[Node], list[DialogueUser]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.wallclock = wallclock
        self.stack = build_stack(cfg)
        # TC-users, first match wins on TC-BEGIN (TcUsers for the node with its database);
        # none given, the stack alone (tests, benchmarks) answers InitialDP with Continue.
        self.user = Dispatcher(users(self) if users is not None else [ContinueUser()])
        self.transport = self._build_transport()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopped = asyncio.Event()
        self._peers: dict[int, tuple[tuple[str, int], tuple[str, int]]] = {}
        self._capture = SctpPcapWriter.open(str(capture)) if capture else None
        self.log = log.bind(node=cfg.node.name)

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
        )
        if m.transport == "sctp":
            ok, why = sctp_available()
            if not ok:
                raise ConfigError("m3ua.transport", f"sctp is not usable here: {why}")
            return SctpTransport(**kwargs)  # type: ignore[arg-type,return-value]
        return TcpTransport(**kwargs)  # type: ignore[arg-type]

    def wall_now(self) -> dt.datetime:
        """The wall clock (``wallclock``) as an aware UTC datetime: the time of business
        events (missed calls, presence, SMS) that the TC-users write."""
        return from_epoch(self.wallclock())

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
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
        self._guarded("shutdown", lambda: self.stack.shutdown(self.clock()))
        deadline = self.clock() + SHUTDOWN_GRACE
        m3ua = self.stack.m3ua
        while self.clock() < deadline and any(
            m3ua.asp_state(a) is not AspState.DOWN for a in list(self._peers)
        ):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # let the last writes leave the socket buffers
        await self.transport.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        self.log.info("scp node stopped")

    # -- AssociationHandler ----------------------------------------------------------------------

    def association_up(self, assoc_id: int, peer: tuple[str, int], local: tuple[str, int]) -> None:
        self._peers[assoc_id] = (peer, local)
        self.log.info("association up", assoc=assoc_id, peer=f"{peer[0]}:{peer[1]}")
        self._guarded("association up", lambda: self.stack.association_up(assoc_id, self.clock()))

    def association_data(self, assoc_id: int, data: bytes, stream: int) -> None:
        self._capture_write(assoc_id, data, stream, inbound=True)
        self._guarded(
            "message handling",
            lambda: self.stack.receive(assoc_id, data, self.clock(), stream),
            assoc=assoc_id,
            data=data.hex(),
        )

    def association_down(self, assoc_id: int, reason: str) -> None:
        self.log.info("association down", assoc=assoc_id, reason=reason)
        try:
            self._guarded(
                "association down", lambda: self.stack.association_down(assoc_id, self.clock())
            )
        finally:
            self._peers.pop(assoc_id, None)

    # -- TC-user entry points ------------------------------------------------------------------

    def tc_send(self, req: TcPrimitive) -> None:
        """Send a TC request from a TC-user that answers later (after an await)."""
        if isinstance(req, (TcEnd, TcUAbort)):
            self.user.release(req.dialogue_id)
        self._guarded("tc request", lambda: self.stack.tc_request(req, self.clock()))
        if type(req) is TcBegin and self.stack.tcap.dialogue_state(req.dialogue_id) is None:
            # TCAP refused to open it (encode error, resource limit): nobody will ever end it.
            self.user.release(req.dialogue_id)

    def new_dialogue_id(self, user: DialogueUser) -> int:
        """A dialogue ID for a dialogue we open (TC-BEGIN request) owned by ``user``."""
        did = self.stack.tcap.new_dialogue_id()
        self.user.bind(did, user)
        return did

    # -- output routing --------------------------------------------------------------------------

    def _guarded(self, what: str, produce: Callable[[], list[object]], **ctx: object) -> None:
        """Run a core entry point and route its outputs; a bug is logged, never raised into
        asyncio (the cores answer bad input themselves, so this is only a safety net)."""
        try:
            outputs = produce()
        except Exception:
            self.log.exception(f"{what} failed", **ctx)
            self._arm_timer()
            return
        self._process(outputs)

    def _process(self, outputs: list[object]) -> None:
        now = self.clock()
        while outputs:
            pending: list[object] = []
            for o in outputs:
                # One output that fails must not cost the others (e.g. the idle-timer aborts of
                # many dialogues arrive in one list; each must still reach its switch).
                try:
                    t = type(o)
                    if t is Transmit:
                        self._transmit(o)  # type: ignore[arg-type]
                    elif t in TC_TYPES:
                        for req in self.user.handle(o):
                            pending += self.stack.tc_request(req, now)  # type: ignore[arg-type]
                    elif t is CloseAssociation:
                        self.log.warning("closing association", assoc=o.assoc_id, reason=o.reason)  # type: ignore[attr-defined]
                        self.transport.close_association(o.assoc_id, o.reason)  # type: ignore[attr-defined]
                    elif t is AspStateChanged:
                        self.log.info("asp state", assoc=o.assoc_id, old=str(o.old), new=str(o.new))  # type: ignore[attr-defined]
                    else:
                        self._log_output(o)
                except Exception:
                    self.log.exception("output handling failed", output=type(o).__name__)
            outputs = pending
        self._arm_timer()

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

    def _arm_timer(self) -> None:
        deadline = self.stack.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, deadline - self.clock())
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self._process(self.stack.handle_timer(self.clock()))
        except (
            Exception
        ):  # never let one bad timer kill the loop; the cores are tested not to raise
            self.log.exception("timer handling failed")
            self._arm_timer()


class TcUsers:
    """The node's TC-users, first match wins on TC-BEGIN: CAP / INAP call control
    (:mod:`scp.flows.calls`) and MAP presence (:mod:`scp.flows.presence`), on ``pool``.

    Called with the node once it exists (``Node(cfg, users=TcUsers(pool, cfg))``): the users
    send through it and read its clocks. The live node, the in-process SCP of replay and the
    simulator all take their users from here.
    """

    def __init__(self, pool: asyncpg.Pool, cfg: Config) -> None:
        self.pool = pool
        self.cfg = cfg
        self.call: CallUser | None = None
        self.map: MapUser | None = None

    def __call__(self, node: Node) -> list[DialogueUser]:
        self.call = build_call_user(node, self.pool, self.cfg)
        self.map = build_map_user(node, self.pool, self.cfg)
        return [self.call, self.map]

    async def aclose(self) -> None:
        """MAP requests in flight finish, then the call path gives its connections back to the
        pool (before the pool closes)."""
        if self.map is not None:
            await self.map.drain()
        if self.call is not None:
            await self.call.aclose()


def build_users(pool: asyncpg.Pool, cfg: Config) -> TcUsers:
    """The TC-users of a node on ``pool`` (see :class:`TcUsers`)."""
    return TcUsers(pool, cfg)


class Services:
    """The node with its service side: call control, MAP presence, the SMS outbox and gateway.

    Start order: database (migrated) -> node (TC-users wired) -> SMPP gateway -> outbox sender
    and HLR-alert originator. Stop order is the reverse, so nothing in flight is dropped: the
    sender stops claiming, MAP requests in flight finish, the gateway unbinds, then M3UA goes
    down and the pool closes.
    """

    def __init__(self, cfg: Config, pool: asyncpg.Pool, *, capture: str | None = None) -> None:
        self.cfg = cfg
        self.pool = pool
        self.outbox = build_outbox(pool, cfg)
        self.gateway = make_gateway(
            cfg.smpp,
            on_receipt=self.outbox.record_receipt,
            on_mo=self.outbox.record_mo,
            on_foreign_receipt=self.outbox.record_foreign_receipt,
        )
        self.users = build_users(pool, cfg)
        self.node = Node(cfg, capture=capture, users=self.users)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.sender: OutboxSender | None = None

    def wall_now(self) -> dt.datetime:
        """The node's wall clock as the background loops and the database see it."""
        return self.node.wall_now()

    async def start(self) -> None:
        await self.node.start()
        self.gateway.start()
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
            # records past their [retention], in small batches, one node at a time
            asyncio.create_task(
                self._keep_running(
                    "retention",
                    lambda: run_retention(self.pool, self.cfg.retention, self.wall_now, self._stop),
                ),
                name="retention",
            ),
            # MO SMS whose command failed stay stored and unhandled: retried with backoff.
            asyncio.create_task(
                self._keep_running(
                    "mo-retry", lambda: self.outbox.run_mo_retry(self._stop, self.wall_now)
                ),
                name="mo-retry",
            ),
        ]

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


async def run_node(
    cfg: Config,
    *,
    capture: str | None = None,
    on_started: Callable[[Services], object] | None = None,
) -> None:
    """``mcn-scp run``: everything up, serve until SIGINT/SIGTERM, everything down cleanly."""
    pool = await open_migrated_pool()
    try:
        services = Services(cfg, pool, capture=capture)
        await services.start()
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


def main_run(
    cfg: Config,
    *,
    capture: str | None = None,
    on_started: Callable[[Services], object] | None = None,
) -> None:
    """:func:`run_node` until SIGINT/SIGTERM (the process's main loop)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_node(cfg, capture=capture, on_started=on_started))
