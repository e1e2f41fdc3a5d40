"""SMPP 3.4 ESME gateway to the SMSC: the asyncio adapter around the sans-I/O session.

The protocol (bind, window, enquire_link, throttling, receipts, MO reassembly, when each
deliver_sm is answered) is :class:`scp.core.smpp_esme.EsmeSession`; this module gives it what
needs I/O and nothing more: a TCP connection (read by the event loop, the session's bytes
written a batch at a time by a thread of the link's own: :class:`_Link` says why), the driver
every core runs on (:class:`scp.adapters.driver.CoreDriver`:
the clock, ``loop.time()``, and one timer at the session's ``next_deadline()``), reconnects
with backoff (``reconnect_min`` doubling to ``reconnect_max`` while the SMSC is unreachable or
refuses the bind; at once after a bound link is lost), and the handlers the session's events
are for.

* ``await submit(sms)`` returns the SMSC message_id of the first segment, or raises the errors
  of the gateway port (:mod:`scp.service.outbox`): SmppPermanentError (the message itself),
  SmppTemporaryError, SmppLinkError (no link, or lost with the submit in flight: the SMSC may or
  may not have accepted it, the at-most-one-duplicate window).
* ``on_receipt(message_id, stat, at)``, ``on_foreign_receipt(owner, destination, message_id,
  stat, at)`` (the receipt of a message we did not submit: a subscriber's own SMS the SMSC
  forwards, 短信回执; in a receipt the source_addr is the original recipient, SMPP 3.4 §2.11) and
  ``on_mo(source, destination, text, at)`` match OutboxPort.record_receipt / record_mo.

Nothing lost on the receive side (SMPP 3.4 §4.6.2, §2.5 responses in any order, §5.1.3
ESME_RX_T_APPN 0x64 "temporary application error": the SMSC delivers again later): a handler
returning an awaitable (the outbox's receipt / MO commit) has its deliver_sm answered only when
that awaitable completed, ESME_ROK, or ESME_RX_T_APPN if it raised; the session answers
ESME_RX_T_APPN itself after ``deliver_timeout`` s. Handlers run one after the other in arrival
order; one not started yet when its deliver_sm was answered by the timeout or lost its link is
skipped, so a stalled database costs redeliveries, not duplicates. A handler already running
when its timeout fires may still commit: that deliver_sm is then stored twice (the
at-most-one-duplicate window of the receive side; keep ``deliver_timeout`` above the worst
database stall and below the SMSC's response timeout).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import queue
import select
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Protocol, assert_never, cast

import structlog

from scp.adapters.driver import CoreDriver
from scp.codecs.errors import CodecError
from scp.codecs.sms import encode_sms
from scp.core.smpp_esme import (
    BindFailed,
    Bound,
    ConnectionMustClose,
    DeliverTimedOut,
    Dropped,
    EsmeConfig,
    EsmeOutput,
    EsmeSession,
    FailureKind,
    MessageFailed,
    MessageSubmitted,
    MoReceived,
    ReceiptReceived,
    Throttled,
    Unbound,
    UnsendableMessage,
)
from scp.service.outbox import SmppError, SmppLinkError, SmppPermanentError, SmppTemporaryError

if TYPE_CHECKING:
    from scp.config import SmppConfig

log = structlog.get_logger("scp.smpp")

__all__ = [
    "ConsoleSink",
    "SmppGateway",
    "SmppGatewayConfig",
    "SmsLike",
    "make_gateway",
]

_ERRORS: dict[FailureKind, type[SmppError]] = {
    FailureKind.PERMANENT: SmppPermanentError,
    FailureKind.TEMPORARY: SmppTemporaryError,
    FailureKind.LINK: SmppLinkError,
}


class SmsLike(Protocol):
    """What the gateway needs of an outbox row (scp.service.outbox.OutboundSms has it)."""

    @property
    def id(self) -> int: ...
    @property
    def destination(self) -> str: ...
    @property
    def text(self) -> str: ...


ReceiptHandler = Callable[[str, str, datetime], Awaitable[None] | None]
# (owner, destination, message_id, stat, at) for a receipt of a message we did not submit
ForeignReceiptHandler = Callable[[str, str, str, str, datetime], Awaitable[None] | None]
MoHandler = Callable[[str, str, str, datetime], Awaitable[None] | None]
Tap = Callable[[str, bytes], None]
_Calls = list[tuple[Callable[..., Any], tuple[Any, ...]]]


@dataclass(frozen=True)
class SmppGatewayConfig(EsmeConfig):
    """The session's settings plus where the SMSC is; ``from_config`` takes the [smpp] table."""

    host: str = "127.0.0.1"
    port: int = 2775
    connect_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0

    @classmethod
    def from_config(cls, cfg: SmppConfig, **overrides: Any) -> SmppGatewayConfig:
        return cls(
            host=cfg.host,
            port=cfg.port,
            system_id=cfg.system_id,
            password=cfg.password,
            source_addr=cfg.source_addr,
            window=cfg.window,
            **overrides,
        )


class _Link:
    """The TCP connection to the SMSC: read by the event loop, written by a thread of its own.

    Why a thread: on loopback or a LAN a ``send()`` of one batch of PDUs costs the sender
    about a hundred microseconds of kernel time (the peer's TCP receive path runs in it). On
    the event loop that time is taken from the outbox's database work, turn by turn; in a
    writer thread it overlaps it, since the thread holds no GIL while in the kernel.
    ``bench/sms.py``: durable SMS/s went from 3,300-4,200 to 5,000-6,500 (``durable_vs_bare``
    0.50-0.53 to 0.80-0.85, interleaved runs). The session, its timers and its events stay on
    the loop: the thread only takes bytes from a queue and sends them, in order.

    ``write(data)`` queues bytes (never blocks); ``close()`` closes after what was queued
    went out (like ``asyncio.Transport.close``). Either end failing, the peer's close or
    ours, ends in one ``gateway._disconnected(exc)`` on the loop; the socket is closed once
    both the loop has stopped reading it and the thread has stopped writing it.
    """

    _POLL = 0.5  # s a writer blocked on a full send buffer waits before looking at _abort

    def __init__(
        self, gateway: SmppGateway, sock: socket.socket, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._gateway = gateway
        self._sock = sock
        self._loop = loop
        # the writer's queue: bytes in order, then _END; a SimpleQueue (C, no lock of ours)
        # because every batch the session writes goes through it
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._closing = False  # no more writes; the thread ends once the queue is sent
        self._abort = False  # the link is gone: the thread ends without sending the rest
        self._writing = True
        self._lost_called = False  # the read side saw the end: the loop no longer reads
        loop.add_reader(sock.fileno(), self._readable)
        self._thread = threading.Thread(target=self._write_loop, name="smpp-writer", daemon=True)
        self._thread.start()

    # -- the loop's side ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self._closing:
            self._out.put(data)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._out.put(_END)

    def is_closing(self) -> bool:
        return self._closing

    def _readable(self) -> None:
        try:
            data = self._sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._lost(e)
            return
        if not data:
            self._lost(None)
            return
        self._gateway._received(data)

    def _lost(self, exc: Exception | None) -> None:
        """The connection ended (read side): stop reading, stop the writer, tell the gateway."""
        if self._lost_called:
            return
        self._lost_called = True
        self._loop.remove_reader(self._sock.fileno())
        self._abort = True
        if not self._closing:
            self._closing = True
            self._out.put(_END)
        with contextlib.suppress(OSError):  # wakes a writer blocked on a full buffer
            self._sock.shutdown(socket.SHUT_RDWR)
        self._release()
        self._gateway._disconnected(exc)

    def _writer_ended(self, exc: Exception | None) -> None:
        self._writing = False
        if not self._lost_called:
            # the writer failed, or sent the rest after close(): the read side sees the end
            # through shutdown; a failure's reason goes to the gateway with it
            if exc is not None and self._gateway._close_reason is None:
                self._gateway._close_reason = str(exc) or type(exc).__name__
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        self._release()

    def _release(self) -> None:
        if self._lost_called and not self._writing and self._sock.fileno() >= 0:
            self._sock.close()

    # -- the writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        exc: Exception | None = None
        try:
            end = False
            while not end:
                chunks = [self._out.get()]  # what was queued meanwhile goes in the same send
                with contextlib.suppress(queue.Empty):
                    while chunks[-1] is not _END:
                        chunks.append(self._out.get_nowait())
                if chunks[-1] is _END:
                    chunks.pop()
                    end = True
                if self._abort:
                    break
                if chunks:
                    self._send_all(b"".join(cast(list[bytes], chunks)))
        except Exception as e:  # the connection broke under a send
            exc = e
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody to tell
                self._loop.call_soon_threadsafe(self._writer_ended, exc)

    def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        poller: select.poll | None = None
        while view:
            if self._abort:
                return
            try:
                view = view[self._sock.send(view) :]
            except (BlockingIOError, InterruptedError):
                if poller is None:  # the peer reads slowly: wait for room
                    poller = select.poll()
                    poller.register(self._sock.fileno(), select.POLLOUT)
                poller.poll(self._POLL * 1000)


_RECV_SIZE = 65536
_END = None  # in the writer's queue: what came before is all there is


class SmppGateway:
    """ESME transceiver: ``start()``, ``await submit(sms) -> message_id``, ``await stop()``.

    ``tap(direction, pdu)`` sees every PDU ("out" / "in"), for captures. ``stats`` counts what
    the session and the connection did; ``max_inflight`` is the most submit_sm outstanding.
    """

    def __init__(
        self,
        config: SmppGatewayConfig,
        *,
        on_receipt: ReceiptHandler | None = None,
        on_mo: MoHandler | None = None,
        tap: Tap | None = None,
        on_foreign_receipt: ForeignReceiptHandler | None = None,
    ) -> None:
        self.config = config
        self.core = EsmeSession(config=config, deliver_mo=on_mo is not None, tap=tap)
        self.stats = self.core.stats
        self._on_receipt = on_receipt
        self._on_foreign_receipt = on_foreign_receipt
        self._on_mo = on_mo
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: _Link | None = None
        self._link_done: asyncio.Future[str] | None = None
        self._close_reason: str | None = None
        self._futures: dict[int, asyncio.Future[str]] = {}
        self._stopping = False
        self._wake_stop = asyncio.Event()
        self._must_close: str | None = None  # ConnectionMustClose, carried out after the write
        self._driver: CoreDriver[EsmeOutput] = CoreDriver(
            self.core, self._on_output, clock=self._time, pull=self._events, after=self._flush
        )
        self._tasks: set[asyncio.Future[Any]] = set()
        self._awaiting: collections.deque[Awaitable[Any]] = collections.deque()
        self._drainer: asyncio.Future[None] | None = None

    # -- API ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while bound to the SMSC for submitting."""
        return self.core.can_submit

    @property
    def max_inflight(self) -> int:
        return self.core.max_inflight

    def start(self) -> None:
        """Connect and keep connected; call from the event loop that will await submits."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="smpp-gateway")

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until bound (tests, start-up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.ready:
            if loop.time() > deadline:
                raise SmppLinkError(f"not bound to {self.config.host}:{self.config.port}")
            await asyncio.sleep(0.01)

    async def submit(self, sms: SmsLike) -> str:
        """Send one SMS (all its segments); return the SMSC message_id of the first segment.
        Raises SmppPermanentError, SmppTemporaryError or SmppLinkError."""
        if self._stopping or self._loop is None:
            raise SmppLinkError("gateway not running")
        try:
            ref = self.core.submit(
                sms.destination, sms.text, concat_ref=sms.id & 0xFF, now=self._loop.time()
            )
        except UnsendableMessage as e:
            raise SmppPermanentError(str(e)) from None
        fut: asyncio.Future[str] = self._loop.create_future()
        self._futures[ref] = fut
        self._driver.drain_soon()  # one write for this iteration's submits
        try:
            return await fut
        except asyncio.CancelledError:
            # queued segments are not sent; in-flight ones are already out
            self._futures.pop(ref, None)
            self.core.cancel(ref)
            raise

    async def stop(self, timeout: float = 5.0) -> None:
        """Unbind, close, and fail what is still queued with SmppLinkError. A stopped gateway
        is not restarted: build a new one."""
        d = self._drainer
        if d is not None and self._task is not None:
            # handlers still committing: their deliver_sm_resp go out before the unbind
            with contextlib.suppress(Exception):
                await asyncio.wait({d}, timeout=timeout / 2)
        self._stopping = True
        self._wake_stop.set()
        link = self._link_done
        if self._transport is not None and self._loop is not None and link is not None:
            self._driver.feed(self.core.unbind)  # §4.2; answers still arriving are handled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(link), timeout / 2)
        if self._transport is not None:
            self._transport.close()
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait({task}, timeout=timeout / 2)
            if not task.done():
                task.cancel()  # still connecting
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        core = self.core
        self._driver.feed(lambda now: core.fail_queued("gateway stopped"))
        self._driver.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the connection -------------------------------------------------------------------------

    async def _run(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        backoff = cfg.reconnect_min
        while not self._stopping:
            binds = self.stats["binds"]
            self._link_done = loop.create_future()
            try:
                sock = await asyncio.wait_for(
                    _connect(loop, cfg.host, cfg.port), cfg.connect_timeout
                )
            except (OSError, TimeoutError) as e:
                self._link_done = None
                error = str(e) or type(e).__name__
            else:
                self._connected(_Link(self, sock, loop))
                error = await self._link_done
            if self._stopping:
                break
            if self.stats["binds"] > binds:
                # it was bound: the SMSC went away or broke the session; reconnect at once
                self.stats["link_lost"] += 1
                log.warning("smpp.link_lost", error=error)
                backoff = cfg.reconnect_min
                continue
            self.stats["connect_failures"] += 1
            log.warning(
                "smpp.bind_failed", host=cfg.host, port=cfg.port, error=error, retry_in=backoff
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_stop.wait(), backoff)
            backoff = min(backoff * 2, cfg.reconnect_max)

    def _connected(self, transport: _Link) -> None:
        self._transport = transport
        self._close_reason = None
        self._driver.feed(self.core.connection_made)

    def _received(self, data: bytes) -> None:
        core = self.core
        self._driver.feed(lambda now: core.receive_data(data, now))

    def _disconnected(self, exc: Exception | None) -> None:
        self._transport = None
        reason = self._close_reason or (str(exc) if exc else "SMSC closed the connection")
        cause = "gateway stopped" if self._stopping else "link lost"
        core = self.core
        self._driver.feed(lambda now: core.connection_lost(now, cause))
        link = self._link_done
        if link is not None and not link.done():
            link.set_result(reason)

    # -- driving the session --------------------------------------------------------------------

    def _time(self) -> float:
        """The session's clock: the loop's (its timer runs on the same one)."""
        loop = self._loop  # None: stopped without having started
        return loop.time() if loop is not None else asyncio.get_running_loop().time()

    def _events(self) -> Iterator[EsmeOutput]:
        core = self.core
        while (ev := core.next_event()) is not None:
            yield ev

    def _flush(self) -> None:
        """After the events: the session's bytes in one write, then the close it asked for
        (after what was written: an answer or unbind_resp goes out first)."""
        data = self.core.data_to_send()
        close, self._must_close = self._must_close, None
        transport = self._transport
        if transport is not None:
            if data:
                transport.write(data)
            if close is not None:
                self._close_reason = close
                transport.close()

    def _on_output(self, ev: EsmeOutput) -> None:
        match ev:
            case ConnectionMustClose(reason=reason):
                self._must_close = reason
            case MessageSubmitted(ref=ref, message_ids=ids):
                fut = self._futures.pop(ref, None)
                if fut is not None and not fut.done():
                    fut.set_result(ids[0])
            case MessageFailed(ref=ref, kind=kind, reason=reason, status=status):
                fut = self._futures.pop(ref, None)
                if fut is not None and not fut.done():
                    fut.set_exception(_ERRORS[kind](reason, status))
            case ReceiptReceived():
                self._receipt(ev)
            case MoReceived(tokens=tokens, source_addr=src, destination_addr=dst, text=text):
                assert self._on_mo is not None  # the session drops MO when there is no handler
                self._dispatch_acked(
                    tokens, [(self._on_mo, (src, dst, text, self._wall(ev.received_at)))]
                )
            case Bound(state=state, smsc_system_id=smsc):
                log.info(
                    "smpp.bound",
                    host=self.config.host,
                    port=self.config.port,
                    system_id=self.config.system_id,
                    state=str(state),
                    smsc=smsc,
                )
            case BindFailed(status=status, reason=reason):
                log.warning("smpp.bind_refused", status=hex(status), reason=reason)
            case Throttled(status=status, pause=pause):
                log.info("smpp.throttled", status=hex(status), pause=pause)
            case DeliverTimedOut(sequence=seq):
                log.warning("smpp.deliver_sm_timeout", sequence=seq)
            case Unbound(by_peer=by_peer):
                log.info("smpp.unbound", by_peer=by_peer)
            case Dropped(reason=reason, detail=detail):
                log.warning("smpp.dropped", reason=reason, detail=detail)
            case _:
                assert_never(ev)

    def _wall(self, at: float) -> datetime:
        """The wall-clock time of the session's ``now`` value ``at``."""
        assert self._loop is not None
        return datetime.now(UTC) - timedelta(seconds=max(0.0, self._loop.time() - at))

    def _receipt(self, ev: ReceiptReceived) -> None:
        at = ev.done_date or self._wall(ev.received_at)
        if not ev.tokens:
            # a multipart set given up on (age, overflow): reported with what arrived
            log.info(
                "smpp.receipt_set_incomplete",
                message_id=ev.message_id,
                got=ev.segments_reported,
                total=ev.segments,
            )
            if self._on_receipt is not None:
                self._dispatch(self._on_receipt, ev.message_id, ev.stat, at)
            return
        calls: _Calls = []
        if self._on_receipt is not None:
            calls.append((self._on_receipt, (ev.message_id, ev.stat, at)))
        if not ev.matched and self._on_foreign_receipt is not None:
            calls.append(
                (
                    self._on_foreign_receipt,
                    (ev.destination_addr, ev.source_addr, ev.message_id, ev.stat, at),
                )
            )
        self._dispatch_acked(ev.tokens, calls)

    # -- handlers, in arrival order -------------------------------------------------------------

    def _dispatch(self, cb: Callable[..., Any], *args: Any) -> None:
        """Run a handler whose outcome answers nothing; an awaitable joins the queue."""
        try:
            r = cb(*args)
        except Exception:
            log.exception("smpp.callback_failed", callback=getattr(cb, "__name__", repr(cb)))
            return
        if inspect.isawaitable(r):
            self._enqueue_awaitable(r)

    def _enqueue_awaitable(self, r: Awaitable[Any]) -> None:
        """Awaitables are awaited one after the other by one task (receipts of a burst share
        it instead of one task each)."""
        self._awaiting.append(r)
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain_awaiting())
            self._tasks.add(self._drainer)
            self._drainer.add_done_callback(self._task_done)

    def _dispatch_acked(self, tokens: tuple[int, ...], calls: _Calls) -> None:
        """Run the handlers of one deliver_sm (or of every part of a concatenated MO); when
        what they return has completed, answer the deliver_sm."""
        aws: list[Awaitable[Any]] = []
        failed = False
        for cb, args in calls:
            try:
                r = cb(*args)
            except Exception:
                log.exception("smpp.callback_failed", callback=getattr(cb, "__name__", repr(cb)))
                failed = True
                continue
            if inspect.isawaitable(r):
                aws.append(r)
        if not aws:
            self._answer(tokens, not failed)
            return
        self._enqueue_awaitable(self._settle_deliver(aws, tokens, failed))

    async def _settle_deliver(
        self, aws: list[Awaitable[Any]], tokens: tuple[int, ...], failed: bool
    ) -> None:
        ok = False
        try:
            for aw in aws:
                if (
                    not any(self.core.deliver_pending(t) for t in tokens)
                    and inspect.iscoroutine(aw)
                    and inspect.getcoroutinestate(aw) == inspect.CORO_CREATED
                ):
                    # its answer went out (RX_T_APPN) or its link is gone: running it now
                    # would store what the SMSC is about to deliver again
                    aw.close()
                    self.stats["deliver_sm_skipped"] += 1
                    failed = True
                    continue
                try:
                    await aw
                except Exception:
                    log.exception("smpp.callback_failed")
                    failed = True
            ok = not failed
        finally:
            self._answer(tokens, ok)

    def _answer(self, tokens: tuple[int, ...], ok: bool) -> None:
        if self._loop is not None:
            self.core.answer_deliver(tokens, ok, self._loop.time())
            self._driver.drain_soon()

    async def _drain_awaiting(self) -> None:
        try:
            while self._awaiting:
                aw = self._awaiting.popleft()
                try:
                    await aw
                except Exception:
                    log.exception("smpp.callback_failed")
        finally:
            self._drainer = None

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("smpp.callback_failed", error=repr(task.exception()))


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to ``host:port`` (each address in turn), with
    TCP_NODELAY: the session already writes a batch at a time, Nagle would only add delay."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {host}:{port}")
    for family, type_, proto, _name, addr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, addr)
        except OSError as e:
            sock.close()
            error = e
            continue
        except BaseException:  # cancelled (the connect timeout, a stop)
            sock.close()
            raise
        return sock
    raise error


# ---------------------------------------------------------------------------------------------


class ConsoleSink:
    """The ``console`` backend: prints each SMS instead of sending it (``make run`` default)."""

    def __init__(
        self,
        *,
        source_addr: str = "12599",
        stream: IO[str] | None = None,
        on_receipt: ReceiptHandler | None = None,
        on_mo: MoHandler | None = None,
    ) -> None:
        self.source_addr = source_addr
        self._stream = stream
        self._on_receipt = on_receipt  # never called: nothing is delivered
        self._on_mo = on_mo
        self._n = 0
        self.sent: list[tuple[str, str, str]] = []

    @property
    def ready(self) -> bool:
        return True

    def start(self) -> None:
        pass

    async def wait_ready(self, timeout: float = 10.0) -> None:
        pass

    async def submit(self, sms: SmsLike) -> str:
        try:
            encoded = encode_sms(sms.text, concat_ref=sms.id & 0xFF)
        except CodecError as e:
            raise SmppPermanentError(f"cannot encode: {e}") from None
        self._n += 1
        mid = f"console-{self._n}"
        stream = self._stream if self._stream is not None else sys.stdout
        print(
            f"SMS {mid} {self.source_addr} -> {sms.destination} "
            f"[{encoded.data_coding.name}, {len(encoded.segments)} segment(s)]: {sms.text}",
            file=stream,
            flush=True,
        )
        self.sent.append((mid, sms.destination, sms.text))
        return mid

    async def stop(self, timeout: float = 5.0) -> None:
        pass


def make_gateway(
    cfg: SmppConfig,
    *,
    on_receipt: ReceiptHandler | None = None,
    on_mo: MoHandler | None = None,
    on_foreign_receipt: ForeignReceiptHandler | None = None,
) -> SmppGateway | ConsoleSink:
    """The backend [smpp].backend names."""
    if cfg.backend == "console":
        return ConsoleSink(source_addr=cfg.source_addr, on_receipt=on_receipt, on_mo=on_mo)
    return SmppGateway(
        SmppGatewayConfig.from_config(cfg),
        on_receipt=on_receipt,
        on_mo=on_mo,
        on_foreign_receipt=on_foreign_receipt,
    )
