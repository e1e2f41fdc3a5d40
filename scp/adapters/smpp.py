"""SMPP 3.4 ESME gateway to the SMSC: smpplib's PDU codec in a thread of its own, an asyncio API.

Specs: SMPP 3.4 (SMPP Developers Forum, 1999): §2.2-2.3 sessions and bind_transceiver, §2.5
sequence numbers and windowing ("asynchronous" operation with outstanding requests), §4.1
bind_transceiver, §4.4 submit_sm, §4.6 deliver_sm, §4.11 enquire_link, §4.2 unbind, §4.3
generic_nack, §5.1.3 command_status, §5.2.12 esm_class (0x04 MC delivery receipt, 0x40 UDHI),
§5.2.17 registered_delivery, §5.3.2.12 receipted_message_id, §5.3.2.35 message_state,
Appendix B (delivery receipt text ``id:... sub:... dlvrd:... submit date:... done date:...
stat:... err:... text:...``). Text encoding and concatenation: :mod:`scp.codecs.sms`.

submit_sm and deliver_sm, two of the three PDUs of every notification, are built and read by a
fast path that gives smpplib's own result (:mod:`scp.codecs.smpp_pdu`, checked against smpplib
in the tests) and leaves anything unusual to smpplib (counted in ``stats``
``deliver_sm_smpplib``); smpplib's generic codec cost more than the rest of an SMS's handling.
The third, submit_sm_resp, is a header and a message_id, read by ``_parse_submit_sm_resp``.

Why a thread: smpplib is blocking; one thread owns the socket and does every read and write, so
PDUs never interleave. asyncio callers hand it work through a deque and a wake-up socketpair; it
hands results back with ``loop.call_soon_threadsafe``.

Behaviour (what an SMSC operator expects from an ESME):
- bind_transceiver, then enquire_link after ``enquire_link_interval`` s of silence; a request
  unanswered for ``response_timeout`` s drops the link.
- At most ``window`` submit_sm outstanding, matched to their responses by sequence_number.
- ESME_RTHROTTLED (0x58) and ESME_RMSGQFUL (0x14): the segment goes back to the head of the
  queue and every submit pauses, doubling from ``throttle_min`` to ``throttle_max`` s while
  the SMSC keeps refusing; the first accepted submit resets it. The caller never sees these.
- Other errors: permanent ones (invalid address, bad data...) raise SmppPermanentError; the rest
  raise SmppTemporaryError; a lost link fails what was in flight with SmppLinkError (the SMSC may
  or may not have accepted it: the at-most-one-duplicate window) and queued work waits for the
  reconnect, which backs off from ``reconnect_min`` to ``reconnect_max`` s.
- registered_delivery=1; receipts (deliver_sm with esm_class 0x04) are matched by
  receipted_message_id TLV, else the ``id:`` of the receipt text, also across the decimal/hex
  mismatch some SMSCs have. A multipart SMS is reported under the id of its first segment once
  every segment has a receipt, with the worst status.
- Mobile-originated deliver_sm: decoded text (concatenated parts reassembled) to ``on_mo``.

Nothing lost on the receive side (§4.6.2 deliver_sm_resp, §2.5 responses in any order, §5.1.3
ESME_RX_T_APPN 0x64 "temporary application error": the SMSC delivers again later):
- A deliver_sm whose handler returns an awaitable (the outbox's receipt / MO commit) is answered
  only when that awaitable has completed: the gateway thread hands the PDU to the event loop and
  keeps serving (submits go on); the loop posts ``(token, status)`` back through the wake-up
  socketpair and the thread sends deliver_sm_resp ESME_ROK, or ESME_RX_T_APPN if the handler
  raised or did not finish within ``deliver_timeout`` s. A link lost meanwhile drops the pending
  answers (the SMSC redelivers what it never saw answered). Handlers still run one after the
  other in arrival order on the loop; one not started yet when its deliver_sm was answered by
  the timeout or lost its link is skipped, so a stalled database costs redeliveries, not
  duplicates. A handler already running when its timeout fires may still commit: that
  deliver_sm is then stored twice (the at-most-one-duplicate window of the receive side; keep
  ``deliver_timeout`` above the worst database stall and below the SMSC's response timeout).
- Concatenated MO: every part is held unanswered until the whole message is stored, then all
  parts get the answer of that one store (the simpler of the two correct choices: nothing of an
  unanswered part needs to survive a crash; the SMSC redelivers it). Incomplete messages are
  dropped after ``deliver_timeout`` (their parts are answered ESME_RX_T_APPN by the timeout).
  An SMSC that never has more than one deliver_sm outstanding cannot complete a concatenated MO
  this way; such SMSCs normally deliver MO reassembled or in message_payload.
- Receipts of a multipart SMS: the receipts of all but the last segment are answered at once and
  kept in memory (like the segment-id map they are matched with); the receipt completing the
  set is answered after the aggregate commits, and if that fails the set is restored so the
  redelivery completes it again. The aggregation is bounded: at most ``receipt_agg_max`` open
  sets, each at most ``receipt_agg_age`` s old; an overflowing or expired set is settled with
  the worst status of the receipts that arrived.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

import smpplib.smpp
import structlog

from scp.codecs.errors import CodecError
from scp.codecs.smpp_pdu import DELIVER_SM, decode_deliver_sm, encode_submit_sm
from scp.codecs.sms import (
    ConcatInfo,
    EncodedSms,
    SmsSegment,
    decode_short_message,
    encode_sms,
)

if TYPE_CHECKING:
    from scp.config import SmppConfig

log = structlog.get_logger("scp.smpp")

__all__ = [
    "ConsoleSink",
    "SmppError",
    "SmppGateway",
    "SmppGatewayConfig",
    "SmppLinkError",
    "SmppPermanentError",
    "SmppTemporaryError",
    "SmsLike",
    "make_gateway",
    "parse_receipt",
]

# SMPP 3.4 §5.1.3 command_status values the gateway acts on.
ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64  # temporary application error: the SMSC retries the deliver_sm later
THROTTLE_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# Errors about the message itself: sending it again cannot succeed.
PERMANENT_STATUSES = frozenset({
    0x01,  # ESME_RINVMSGLEN
    0x02,  # ESME_RINVCMDLEN
    0x03,  # ESME_RINVCMDID
    0x0A,  # ESME_RINVSRCADR
    0x0B,  # ESME_RINVDSTADR
    0x0C,  # ESME_RINVMSGID
    0x33,  # ESME_RINVNUMDESTS
    0x34,  # ESME_RINVDLNAME
    0x40,  # ESME_RINVDESTFLAG
    0x42,  # ESME_RINVSUBREP
    0x43,  # ESME_RINVESMCLASS
    0x48,  # ESME_RINVSRCTON
    0x49,  # ESME_RINVSRCNPI
    0x50,  # ESME_RINVDSTTON
    0x51,  # ESME_RINVDSTNPI
    0x53,  # ESME_RINVSYSTYP
    0x61,  # ESME_RINVSCHED
    0x62,  # ESME_RINVEXPIRY
    0x63,  # ESME_RINVDFTMSGID
    0x65,  # ESME_RX_P_APPN (permanent application error)
    0x66,  # ESME_RX_R_APPN (rejected by the application)
    0xC0, 0xC1, 0xC2, 0xC3, 0xC4,  # optional parameter errors
})

ESM_CLASS_TYPE_MASK = 0x3C  # §5.2.12 bits 5-2: message type
ESM_CLASS_RECEIPT = 0x04  # MC delivery receipt
ESM_CLASS_INTERMEDIATE = 0x20  # intermediate delivery notification

# §5.3.2.35 message_state -> the Appendix B stat word
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                  6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
_STAT_RANK = {"DELIVRD": 0, "ACCEPTD": 1, "ENROUTE": 1, "UNKNOWN": 2, "EXPIRED": 3,
              "DELETED": 3, "UNDELIV": 4, "REJECTD": 4}

_HEADER = struct.Struct(">IIII")
_MAX_PDU = 64 * 1024


class SmppError(Exception):
    """A submit did not reach the SMSC."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason if status is None else f"{reason} (command_status 0x{status:02X})")
        self.status = status


class SmppTemporaryError(SmppError):
    """The SMSC refused for now; the same SMS may succeed later (counts as an attempt)."""


class SmppLinkError(SmppTemporaryError):
    """No bound link (outage, lost connection, no response): not the message's fault."""


class SmppPermanentError(SmppError):
    """The SMSC refused the message itself; sending it again cannot succeed."""


class SmsLike(Protocol):
    """What the gateway needs of an outbox row (scp.service.outbox.OutboundSms has it)."""

    @property
    def id(self) -> int: ...
    @property
    def destination(self) -> str: ...
    @property
    def text(self) -> str: ...


ReceiptHandler = Callable[[str, str, datetime], Awaitable[None] | None]
# (owner, destination, message_id, stat, at) for a receipt of a message we did not submit: the
# SMSC forwarding the receipt of a subscriber's own SMS (短信回执). In a receipt deliver_sm the
# source_addr is the original recipient and destination_addr the original sender (SMPP 3.4 §2.11).
ForeignReceiptHandler = Callable[[str, str, str, str, datetime], Awaitable[None] | None]
MoHandler = Callable[[str, str, str, datetime], Awaitable[None] | None]
Tap = Callable[[str, bytes], None]


@dataclass(frozen=True)
class SmppGatewayConfig:
    """Connection and policy settings; ``from_config`` takes the [smpp] table."""

    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "mcn"
    password: str = "secret"
    source_addr: str = "12599"
    window: int = 10
    system_type: str = ""
    source_addr_ton: int = 3  # network specific (short code); §5.2.5
    source_addr_npi: int = 0
    dest_addr_ton: int = 1  # international; §5.2.5
    dest_addr_npi: int = 1  # E.164; §5.2.6
    registered_delivery: int = 1
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    connect_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    throttle_min: float = 0.1
    throttle_max: float = 5.0
    submit_timeout: float = 60.0  # a segment still queued (never sent) after this fails
    deliver_timeout: float = 20.0  # a deliver_sm whose handler has not committed: RX_T_APPN
    receipt_agg_max: int = 10_000  # open multipart receipt sets
    receipt_agg_age: float = 600.0  # s a multipart receipt set waits for its other segments

    @classmethod
    def from_config(cls, cfg: SmppConfig, **overrides: Any) -> SmppGatewayConfig:
        return cls(host=cfg.host, port=cfg.port, system_id=cfg.system_id,
                   password=cfg.password, source_addr=cfg.source_addr, window=cfg.window,
                   **overrides)


_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err):(\S*)", re.I)
_RECEIPT_TEXT = re.compile(r"text:(.*)$", re.I | re.S)


def parse_receipt(text: str) -> dict[str, str]:
    """Appendix B receipt text -> {"id","sub","dlvrd","submit date","done date","stat","err",
    "text"}; keys absent from the text are absent. Never raises."""
    out: dict[str, str] = {}
    head, _, _ = text.partition(" text:")  # the free text may itself contain "id:"
    for k, v in _RECEIPT_FIELD.findall(head):
        out.setdefault(k.lower(), v)
    m = _RECEIPT_TEXT.search(text)
    if m:
        out["text"] = m.group(1)
    return out


def _done_date(value: str | None, fallback: datetime) -> datetime:
    """Appendix B ``done date`` YYMMDDhhmm (UTC assumed: the SMSC's zone is not sent)."""
    if value and len(value) >= 10 and value[:10].isdigit():
        v = value
        with contextlib.suppress(ValueError):
            return datetime(2000 + int(v[0:2]), int(v[2:4]), int(v[4:6]), int(v[6:8]),
                            int(v[8:10]), tzinfo=UTC)
    return fallback


# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Submit:
    """One SMS in the gateway: its segments and the asyncio future its caller awaits."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[str]
    encoded: EncodedSms
    destination: str
    queued_at: float
    message_ids: list[str | None] = field(default_factory=list)
    remaining: int = 0
    done: bool = False


@dataclass(eq=False)
class _ReceiptSet:
    """The receipts of a multipart SMS so far (stat words), until every segment reported."""

    total: int
    stats: list[str]
    first: float  # monotonic time of the first receipt
    at: datetime


def _worst(stats: list[str]) -> str:
    return max(stats, key=lambda s: _STAT_RANK.get(s, 2))


@dataclass(eq=False)
class _Segment:
    submit: _Submit
    index: int


def _run_batch(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    for fn, args in calls:
        fn(*args)


def _resolve(fut: asyncio.Future[str], value: str | None, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        assert value is not None
        fut.set_result(value)


class SmppGateway:
    """ESME transceiver: ``start()``, ``await submit(sms) -> message_id``, ``await stop()``.

    ``on_receipt(message_id, stat, at)`` and ``on_mo(source, destination, text, at)`` run on
    the event loop that called ``start()`` (awaitables are awaited one after the other, in
    arrival order); their signatures match OutboxPort.record_receipt / record_mo. The
    deliver_sm is answered ESME_ROK when the awaitable completed, ESME_RX_T_APPN when it raised
    or took longer than ``deliver_timeout``: a handler returns (or resolves) only once what it
    stores is committed. ``tap(direction, pdu)`` sees every
    PDU ("out" / "in") on the gateway thread, for captures.
    """

    def __init__(self, config: SmppGatewayConfig, *, on_receipt: ReceiptHandler | None = None,
                 on_mo: MoHandler | None = None, tap: Tap | None = None,
                 on_foreign_receipt: ForeignReceiptHandler | None = None) -> None:
        self.config = config
        self._on_receipt = on_receipt
        self._on_foreign_receipt = on_foreign_receipt
        self._on_mo = on_mo
        self._tap = tap
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._incoming: collections.deque[_Segment] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._wake_sent = False
        self._to_loop: list[tuple[asyncio.AbstractEventLoop, Callable[..., Any], tuple[Any, ...]]] = []
        self._bound = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._awaiting: collections.deque[Awaitable[Any]] = collections.deque()
        self._drainer: asyncio.Future[None] | None = None
        # thread-only state
        self._sock: socket.socket | None = None
        self._client = _SeqClient()
        self._pending: collections.deque[_Segment] = collections.deque()
        self._inflight: dict[int, tuple[_Segment, float]] = {}
        self._paused_until = 0.0
        self._throttle_delay = 0.0
        self._last_rx = 0.0
        self._enquire_sent: float | None = None
        self._rxbuf = bytearray()
        self._receipt_map: collections.OrderedDict[str, tuple[str, int]] = collections.OrderedDict()
        # primary id -> the receipts of its segments so far (insertion order: oldest first)
        self._receipt_agg: collections.OrderedDict[str, _ReceiptSet] = collections.OrderedDict()
        # (source, ref, total) -> (first arrival, {seq: (text, token)})
        self._mo_parts: collections.OrderedDict[
            tuple[str, int, int], tuple[float, dict[int, tuple[str, int]]]] = (
            collections.OrderedDict())
        # deliver_sm awaiting their handler: token -> (sequence_number, deadline, on failure)
        self._deferred: dict[int, tuple[int, float, Callable[[], None] | None]] = {}
        self._next_token = 0
        # every token <= this is answered already (timeout) or died with its link: a handler of
        # such a deliver_sm that has not started yet is skipped (the SMSC delivers it again)
        self._dead_upto = 0
        self._acks: list[tuple[int, int]] = []  # (token, status) posted by the loop
        self.stats = collections.Counter[str]()
        self.max_inflight = 0

    # -- asyncio side -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while bound to the SMSC."""
        return self._bound

    def start(self) -> None:
        """Start the gateway thread; call from the event loop that will await submits."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="smpp-gateway", daemon=True)
        self._thread.start()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until bound (tests, start-up)."""
        deadline = time.monotonic() + timeout
        while not self._bound:
            if time.monotonic() > deadline:
                raise SmppLinkError(f"not bound to {self.config.host}:{self.config.port}")
            await asyncio.sleep(0.01)

    async def submit(self, sms: SmsLike) -> str:
        """Send one SMS (all its segments); return the SMSC message_id of the first segment.
        Raises SmppPermanentError, SmppTemporaryError or SmppLinkError."""
        if self._stopping or self._thread is None:
            raise SmppLinkError("gateway not running")
        dest = sms.destination
        # §5.2.9 destination_addr: C-Octet String of at most 21 octets with its NUL
        if not (0 < len(dest) <= 20 and dest.isascii() and dest.isprintable()):
            raise SmppPermanentError(f"destination_addr {dest!r} is not 1-20 ASCII characters")
        try:
            encoded = encode_sms(sms.text, concat_ref=sms.id & 0xFF)
        except CodecError as e:
            raise SmppPermanentError(f"cannot encode: {e}") from None
        loop = asyncio.get_running_loop()
        sub = _Submit(loop, loop.create_future(), encoded, sms.destination, time.monotonic())
        n = len(encoded.segments)
        sub.message_ids = [None] * n
        sub.remaining = n
        with self._lock:
            self._incoming.extend(_Segment(sub, i) for i in range(n))
        self._wake()
        try:
            return await sub.future
        except asyncio.CancelledError:
            sub.done = True  # queued segments are skipped; in-flight ones are already out
            raise

    async def stop(self, timeout: float = 5.0) -> None:
        """Unbind, close and join the thread; what is still queued fails with SmppLinkError.
        A stopped gateway is not restarted: build a new one."""
        d = self._drainer
        if d is not None and self._thread is not None:
            # handlers still committing: their deliver_sm_resp go out before the unbind
            with contextlib.suppress(Exception):
                await asyncio.wait({d}, timeout=timeout / 2)
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")  # unconditionally: the thread may be in select()
        t = self._thread
        if t is not None:
            await asyncio.get_running_loop().run_in_executor(None, t.join, timeout)
        self._thread = None
        for s in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _wake(self) -> None:
        # one wake-up byte per batch: the thread clears the flag before it takes the queue
        if self._wake_sent:
            return
        self._wake_sent = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the event loop; sent in one batch by :meth:`_flush`."""
        if self._loop is not None:
            self._to_loop.append((self._loop, fn, args))

    def _flush(self) -> None:
        """Hand everything queued for the loop over in one call_soon_threadsafe per loop: one
        self-pipe write per batch of PDUs, not per SMS."""
        if not self._to_loop:
            return
        batch, self._to_loop = self._to_loop, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Callable[..., Any], tuple[Any, ...]]]] = {}
        for loop, fn, args in batch:
            by_loop.setdefault(loop, []).append((fn, args))
        for loop, calls in by_loop.items():
            if loop.is_closed():
                continue
            with contextlib.suppress(RuntimeError):  # loop closed while we were finishing
                loop.call_soon_threadsafe(_run_batch, calls)

    def _dispatch(self, cb: Callable[..., Any], *args: Any) -> None:
        """Run a user callback on the loop. Coroutines are awaited in arrival order by one
        task at a time (receipts of a burst share a task instead of one task each)."""
        try:
            r = cb(*args)
        except Exception:
            log.exception("smpp.callback_failed", callback=getattr(cb, "__name__", repr(cb)))
            return
        if inspect.isawaitable(r):
            self._enqueue_awaitable(r)

    def _enqueue_awaitable(self, r: Awaitable[Any]) -> None:
        self._awaiting.append(r)
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain_awaiting())
            self._tasks.add(self._drainer)
            self._drainer.add_done_callback(self._task_done)

    def _dispatch_acked(self, tokens: list[int],
                        calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
        """Run the handlers of one deliver_sm (or of every part of a concatenated MO) on the
        loop; when what they return has completed, post the deliver_sm_resp status back."""
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
            self._post_ack(tokens, ESME_RX_T_APPN if failed else ESME_ROK)
            return
        self._enqueue_awaitable(self._settle_deliver(aws, tokens, failed))

    async def _settle_deliver(self, aws: list[Awaitable[Any]], tokens: list[int],
                              failed: bool) -> None:
        status = ESME_RX_T_APPN
        try:
            for aw in aws:
                if (max(tokens) <= self._dead_upto and inspect.iscoroutine(aw)
                        and inspect.getcoroutinestate(aw) == inspect.CORO_CREATED):
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
            status = ESME_RX_T_APPN if failed else ESME_ROK
        finally:
            self._post_ack(tokens, status)

    def _post_ack(self, tokens: list[int], status: int) -> None:
        """Loop -> gateway thread: answer these deliver_sm with ``status``."""
        with self._lock:
            self._acks.extend((t, status) for t in tokens)
        self._wake()

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

    # -- gateway thread -----------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.config.reconnect_min
        while not self._stopping:
            try:
                self._connect_and_bind()
            except (OSError, SmppError) as e:
                self.stats["connect_failures"] += 1
                self._drop_link("bind failed")
                log.warning("smpp.bind_failed", host=self.config.host, port=self.config.port,
                            error=str(e), retry_in=backoff)
                self._expire_queued(time.monotonic())
                self._flush()
                self._sleep(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max)
                continue
            backoff = self.config.reconnect_min
            try:
                self._serve()
            except (OSError, SmppError) as e:
                log.warning("smpp.link_lost", error=str(e))
                self.stats["link_lost"] += 1
            except Exception:
                # a bug must cost a reconnect, not the gateway
                log.exception("smpp.gateway_error")
                self.stats["link_lost"] += 1
            finally:
                self._drop_link("link lost" if not self._stopping else "gateway stopped")
                self._flush()
        # stopped: everything still waiting fails
        self._take_incoming()
        while self._pending:
            seg = self._pending.popleft()
            self._fail(seg.submit, SmppLinkError("gateway stopped"))
        self._flush()

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once for stop()."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self._wake_r], [], [], min(left, 1.0))
            if r:
                self._drain_wake()
                self._expire_queued(time.monotonic())
                self._flush()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    def _connect_and_bind(self) -> None:
        cfg = self.config
        sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._rxbuf.clear()
        pdu = smpplib.smpp.make_pdu(
            "bind_transceiver", client=self._client, system_id=cfg.system_id,
            password=cfg.password, system_type=cfg.system_type, interface_version=0x34)
        self._send([pdu.generate()])
        deadline = time.monotonic() + cfg.response_timeout
        while True:
            resp = self._read_one(deadline)
            if resp is None:
                raise SmppLinkError("no bind_transceiver_resp")
            cmd = getattr(resp, "command", None)
            if cmd == "bind_transceiver_resp":
                if resp.status != ESME_ROK:
                    sock.close()
                    self._sock = None
                    raise SmppLinkError("bind_transceiver refused", resp.status)
                break
            if cmd == "generic_nack":
                raise SmppLinkError("bind_transceiver nacked", resp.status)
        sock.settimeout(None)
        sock.setblocking(False)
        now = time.monotonic()
        self._last_rx = now
        self._enquire_sent = None
        self._bound = True
        self.stats["binds"] += 1
        log.info("smpp.bound", host=cfg.host, port=cfg.port, system_id=cfg.system_id)

    def _read_one(self, deadline: float) -> Any:
        """Blocking read of one PDU before ``deadline`` (bind phase only)."""
        assert self._sock is not None
        while True:
            pdu = self._parse_buffered()
            if pdu is not None:
                return pdu
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise SmppLinkError("SMSC closed the connection")
            self._rxbuf += data

    def _parse_buffered(self) -> Any:
        """One whole PDU from the receive buffer, parsed by smpplib; None if incomplete."""
        buf = self._rxbuf
        if len(buf) < 16:
            return None
        length, command_id, _status, seq = _HEADER.unpack_from(buf)
        if length < 16 or length > _MAX_PDU:
            raise SmppLinkError(f"bad command_length {length}")
        if len(buf) < length:
            return None
        raw = bytes(buf[:length])
        del buf[:length]
        if self._tap is not None:
            self._tap("in", raw)
        if command_id == 0x80000004:  # submit_sm_resp: the hot path
            return _parse_submit_sm_resp(raw, _status, seq)
        if command_id == DELIVER_SM:  # receipts: the other hot path (smpplib if it declines)
            fast = decode_deliver_sm(raw)
            if fast is not None:
                return fast
            self.stats["deliver_sm_smpplib"] += 1  # e.g. an SMSC adding network_error_code
        try:
            # a request would take a number from the submit_sm counter; it has its own
            pdu = smpplib.smpp.parse_pdu(raw, client=_FixedSequence(seq),
                                         allow_unknown_opt_params=True)
        except Exception as e:  # smpplib raises assorted exceptions on bad PDUs
            log.warning("smpp.bad_pdu", command_id=hex(command_id), error=repr(e))
            pdu = None
        if pdu is None:
            return _Unparsed(command_id, seq)
        return pdu

    def _send(self, chunks: list[bytes]) -> None:
        assert self._sock is not None
        data = b"".join(chunks)
        if self._tap is not None:
            for c in chunks:
                self._tap("out", c)
        # the socket is non-blocking while bound; sendall on it would raise on a full buffer
        view = memoryview(data)
        while view:
            try:
                n = self._sock.send(view)
            except BlockingIOError:
                select.select([], [self._sock], [], self.config.response_timeout)
                continue
            view = view[n:]

    def _take_incoming(self) -> None:
        self._wake_sent = False
        with self._lock:
            if self._incoming:
                self._pending.extend(self._incoming)
                self._incoming.clear()

    def _serve(self) -> None:
        cfg = self.config
        assert self._sock is not None
        sock = self._sock
        while not self._stopping:
            now = time.monotonic()
            self._take_incoming()
            self._expire_queued(now)
            answers: list[bytes] = []
            self._take_acks(answers)
            self._expire_receive_side(now, answers)
            if answers:
                self._send(answers)
            if now >= self._paused_until:
                self._fill_window(now)
            # timers: enquire_link on silence, response timeouts
            if self._enquire_sent is None and now - self._last_rx >= cfg.enquire_link_interval:
                pdu = smpplib.smpp.make_pdu("enquire_link", client=self._client)
                self._enquire_sent = now
                self._send([pdu.generate()])
            if self._enquire_sent is not None and now - self._enquire_sent > cfg.response_timeout:
                raise SmppLinkError("enquire_link unanswered")
            oldest = min((t for _, t in self._inflight.values()), default=None)
            if oldest is not None and now - oldest > cfg.response_timeout:
                raise SmppLinkError("submit_sm_resp not received in time")
            timeout = cfg.enquire_link_interval - (now - self._last_rx)
            if self._paused_until > now and self._pending:
                timeout = min(timeout, self._paused_until - now)
            if oldest is not None:
                timeout = min(timeout, cfg.response_timeout - (now - oldest))
            timeout = max(0.0, min(timeout, 1.0))
            r, _, _ = select.select([sock, self._wake_r], [], [], timeout)
            if self._wake_r in r:
                self._drain_wake()
            if sock in r:
                try:
                    data = sock.recv(262144)
                except BlockingIOError:
                    data = None
                if data is not None:
                    if not data:
                        raise SmppLinkError("SMSC closed the connection")
                    self._rxbuf += data
                    self._last_rx = time.monotonic()
                    out: list[bytes] = []
                    while (pdu := self._parse_buffered()) is not None:
                        try:
                            self._handle(pdu, out)
                        except SmppError:
                            raise
                        except Exception:  # a PDU smpplib parsed oddly must not end the thread
                            log.exception("smpp.pdu_handling_failed",
                                          command=getattr(pdu, "command", None))
                    if out:
                        self._send(out)
            self._flush()
        if self._stopping:
            out = []
            self._take_acks(out)
            if out:
                self._send(out)
            self._unbind()

    def _fill_window(self, now: float) -> None:
        out: list[bytes] = []
        while self._pending and len(self._inflight) < self.config.window:
            seg = self._pending.popleft()
            if seg.submit.done:
                continue
            s = seg.submit.encoded.segments[seg.index]
            try:
                seq, raw = build_submit_sm(self.config, self._client, seg.submit.destination, s)
            except Exception as e:  # whatever smpplib refuses is the message's fault
                self._fail(seg.submit, SmppPermanentError(f"cannot build submit_sm: {e}"))
                continue
            self._inflight[seq] = (seg, now)
            out.append(raw)
        if out:
            self.stats["submit_sm"] += len(out)
            self.max_inflight = max(self.max_inflight, len(self._inflight))
            self._send(out)

    def _handle(self, pdu: Any, out: list[bytes]) -> None:
        if isinstance(pdu, _Unparsed):
            if not pdu.command_id & 0x80000000:
                # §4.3: a request we cannot parse gets generic_nack
                nack = _answer("generic_nack", pdu.sequence, 0x03)
                out.append(nack)
            return
        cmd = pdu.command
        if cmd == "submit_sm_resp" or (cmd == "generic_nack" and pdu.sequence in self._inflight):
            self._on_submit_resp(pdu)
        elif cmd == "deliver_sm":
            status = self._on_deliver(pdu)
            if status is not None:  # else answered when its handler has committed
                out.append(_answer("deliver_sm_resp", pdu.sequence, status))
        elif cmd == "enquire_link":
            resp = _answer("enquire_link_resp", pdu.sequence)
            out.append(resp)
        elif cmd == "enquire_link_resp":
            self._enquire_sent = None
        elif cmd == "unbind":
            resp = _answer("unbind_resp", pdu.sequence)
            self._send([*out, resp])
            out.clear()
            raise SmppLinkError("SMSC unbound")
        elif cmd in ("data_sm", "alert_notification"):
            if cmd == "data_sm":
                resp = _answer("data_sm_resp", pdu.sequence, 0x03)
                out.append(resp)
        elif not pdu.command.endswith("_resp") and cmd != "generic_nack":
            nack = _answer("generic_nack", pdu.sequence, 0x03)
            out.append(nack)

    def _on_submit_resp(self, pdu: Any) -> None:
        entry = self._inflight.pop(pdu.sequence, None)
        if entry is None:
            self.stats["stray_resp"] += 1
            return
        seg, _sent = entry
        sub = seg.submit
        status = int(pdu.status)
        if status == ESME_ROK:
            self._throttle_delay = 0.0
            mid = pdu.message_id
            sub.message_ids[seg.index] = mid
            sub.remaining -= 1
            if sub.remaining == 0 and not sub.done:
                sub.done = True
                ids = [m or "" for m in sub.message_ids]
                self._remember(ids)
                self.stats["sms_submitted"] += 1
                self._call_soon_loop(sub, ids[0], None)
            return
        if status in THROTTLE_STATUSES:
            # §5.1.3: the SMSC is overloaded; the same segment goes again after a pause
            self.stats["throttled"] += 1
            self._throttle_delay = min(max(self._throttle_delay * 2, self.config.throttle_min),
                                       self.config.throttle_max)
            self._paused_until = time.monotonic() + self._throttle_delay
            self._pending.appendleft(seg)
            log.info("smpp.throttled", status=hex(status), pause=self._throttle_delay)
            return
        err: SmppError
        if status in PERMANENT_STATUSES:
            err = SmppPermanentError("submit_sm refused", status)
        else:
            err = SmppTemporaryError("submit_sm failed", status)
        self.stats["submit_errors"] += 1
        self._fail(sub, err)

    def _call_soon_loop(self, sub: _Submit, value: str | None, error: BaseException | None) -> None:
        self._to_loop.append((sub.loop, _resolve, (sub.future, value, error)))

    def _fail(self, sub: _Submit, error: SmppError) -> None:
        if sub.done:
            return
        sub.done = True
        self._call_soon_loop(sub, None, error)

    def _expire_queued(self, now: float) -> None:
        """Fail segments that waited too long for a link (outage): the outbox retries later."""
        self._take_incoming()
        limit = self.config.submit_timeout
        if not self._pending:
            return
        keep: collections.deque[_Segment] = collections.deque()
        for seg in self._pending:
            if seg.submit.done:
                continue
            if now - seg.submit.queued_at > limit:
                self._fail(seg.submit, SmppLinkError("no SMSC link within submit_timeout"))
            else:
                keep.append(seg)
        self._pending = keep

    def _drop_link(self, reason: str) -> None:
        self._bound = False
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        inflight = list(self._inflight.values())
        self._inflight.clear()
        for seg, _ in inflight:
            # accepted or not, we cannot know: the outbox decides (at-most-one-duplicate window)
            self._fail(seg.submit, SmppLinkError(f"{reason} with submit_sm outstanding"))
        self._enquire_sent = None
        self._paused_until = 0.0
        self._throttle_delay = 0.0
        # unanswered deliver_sm die with the link: the SMSC delivers them again
        self._deferred.clear()
        self._dead_upto = self._next_token

    def _unbind(self) -> None:
        """§4.2: unbind and wait briefly for unbind_resp (answers still arriving are handled)."""
        if self._sock is None:
            return
        try:
            pdu = smpplib.smpp.make_pdu("unbind", client=self._client)
            self._send([pdu.generate()])
            self._sock.setblocking(True)
            deadline = time.monotonic() + 2.0
            while True:
                resp = self._read_one(deadline)
                if resp is None or getattr(resp, "command", None) == "unbind_resp":
                    break
                out: list[bytes] = []
                with contextlib.suppress(SmppLinkError):
                    self._handle(resp, out)
        except (OSError, SmppError):
            pass

    # -- receipts and MO ----------------------------------------------------------------------

    def _remember(self, ids: list[str]) -> None:
        """Map every segment id to the first one, so receipts of a multipart SMS aggregate."""
        primary = ids[0]
        for m in ids:
            self._receipt_map[m] = (primary, len(ids))
        while len(self._receipt_map) > 500_000:
            self._receipt_map.popitem(last=False)

    def _lookup(self, mid: str) -> tuple[str, int] | None:
        hit = self._receipt_map.get(mid)
        if hit is not None:
            return hit
        # SMPP 3.4 leaves the receipt id format open: some SMSCs answer hex and report decimal
        with contextlib.suppress(ValueError):
            if mid.isdigit():
                hit = self._receipt_map.get(format(int(mid), "x")) or self._receipt_map.get(
                    format(int(mid), "X"))
            else:
                hit = self._receipt_map.get(str(int(mid, 16)))
        return hit

    # -- deliver_sm answered after the commit -------------------------------------------------

    def _defer(self, sequence: int, restore: Callable[[], None] | None = None) -> int:
        """Register a deliver_sm answered later; its token."""
        self._next_token += 1
        token = self._next_token
        self._deferred[token] = (sequence, time.monotonic() + self.config.deliver_timeout,
                                 restore)
        return token

    def _defer_calls(self, sequence: int, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]],
                     restore: Callable[[], None] | None = None) -> int | None:
        """Hand the handlers of one deliver_sm to the loop; None (answered later), or ESME_ROK
        at once when there is nothing to run."""
        if not calls:
            return ESME_ROK
        token = self._defer(sequence, restore)
        self._call_soon(self._dispatch_acked, [token], calls)
        return None

    def _take_acks(self, out: list[bytes]) -> None:
        """deliver_sm_resp for every deliver_sm whose handler has finished (§2.5: responses may
        go in any order; the SMSC matches them by sequence_number)."""
        with self._lock:
            if not self._acks:
                return
            acks, self._acks = self._acks, []
        for token, status in acks:
            entry = self._deferred.pop(token, None)
            if entry is None:
                continue  # timed out already, or the link it came on is gone
            seq, _deadline, restore = entry
            out.append(_answer("deliver_sm_resp", seq, status))
            if status == ESME_ROK:
                self.stats["deliver_sm_ok"] += 1
            else:
                self.stats["deliver_sm_temp_error"] += 1
                if restore is not None:
                    restore()

    def _expire_receive_side(self, now: float, out: list[bytes]) -> None:
        """Timers of the receive side: deliver_sm unanswered for ``deliver_timeout`` get
        ESME_RX_T_APPN; incomplete MO and receipt sets past their age are dropped / settled."""
        while self._deferred:
            token, (seq, deadline, restore) = next(iter(self._deferred.items()))
            if deadline > now:
                break
            del self._deferred[token]
            self._dead_upto = max(self._dead_upto, token)  # deadlines grow with the token
            out.append(_answer("deliver_sm_resp", seq, ESME_RX_T_APPN))
            self.stats["deliver_sm_timeout"] += 1
            log.warning("smpp.deliver_sm_timeout", sequence=seq)
            if restore is not None:
                restore()
        while self._mo_parts:
            key, (first, _parts) = next(iter(self._mo_parts.items()))
            if now - first <= self.config.deliver_timeout:
                break
            # its parts were answered ESME_RX_T_APPN by their own timeout: the SMSC retries
            del self._mo_parts[key]
            self.stats["mo_incomplete"] += 1
        while self._receipt_agg:
            primary, rs = next(iter(self._receipt_agg.items()))
            if now - rs.first <= self.config.receipt_agg_age:
                break
            self._settle_receipt_set(primary)

    def _settle_receipt_set(self, primary: str) -> None:
        """Report an incomplete multipart receipt set with what arrived (expiry or overflow)."""
        rs = self._receipt_agg.pop(primary)
        self.stats["receipt_sets_expired"] += 1
        log.info("smpp.receipt_set_incomplete", message_id=primary, got=len(rs.stats),
                 total=rs.total)
        if self._on_receipt is not None:
            self._call_soon(self._dispatch, self._on_receipt, primary, _worst(rs.stats), rs.at)

    def _restore_receipt_set(self, primary: str, rs: _ReceiptSet, prior: list[str]) -> None:
        """The aggregate's commit failed: keep what arrived so the redelivery completes it."""
        cur = self._receipt_agg.get(primary)
        if cur is None:
            self._receipt_agg[primary] = _ReceiptSet(rs.total, list(prior), rs.first, rs.at)
            self._bound_receipt_sets()
        else:
            cur.stats[:0] = prior

    def _bound_receipt_sets(self) -> None:
        while len(self._receipt_agg) > max(self.config.receipt_agg_max, 1):
            self._settle_receipt_set(next(iter(self._receipt_agg)))

    def _on_deliver(self, pdu: Any) -> int | None:
        """Handle one deliver_sm: its command_status now, or None if it is answered when its
        handler has committed (:meth:`_take_acks`)."""
        esm = int(pdu.esm_class or 0)
        raw = pdu.short_message or b""
        if isinstance(raw, str):
            raw = raw.encode("latin-1", "replace")
        if not raw and getattr(pdu, "message_payload", None):
            raw = pdu.message_payload
            if isinstance(raw, str):
                raw = raw.encode("latin-1", "replace")
        now = datetime.now(UTC)
        seq = int(pdu.sequence)
        mtype = esm & ESM_CLASS_TYPE_MASK
        if mtype in (ESM_CLASS_RECEIPT, ESM_CLASS_INTERMEDIATE):
            self.stats["receipts"] += 1
            fields = parse_receipt(raw.decode("latin-1"))
            rid = pdu.receipted_message_id
            if isinstance(rid, bytes):
                rid = rid.decode("ascii", "replace")
            mid = (rid or fields.get("id") or "").strip()
            stat = fields.get("stat") or MESSAGE_STATES.get(int(pdu.message_state or 0), "UNKNOWN")
            stat = stat.upper()
            at = _done_date(fields.get("done date"), now)
            if not mid:
                log.warning("smpp.receipt_without_id", text=raw[:80])
                return ESME_ROK
            if mtype == ESM_CLASS_INTERMEDIATE:
                return ESME_ROK  # not final: nothing to record
            hit = self._lookup(mid)
            primary, total = hit if hit is not None else (mid, 1)
            restore: Callable[[], None] | None = None
            if total > 1:
                rs = self._receipt_agg.get(primary)
                if rs is None:
                    rs = _ReceiptSet(total, [], time.monotonic(), at)
                    self._receipt_agg[primary] = rs
                    self._bound_receipt_sets()
                rs.stats.append(stat)
                if len(rs.stats) < total:
                    return ESME_ROK  # kept in memory; the last segment's receipt commits all
                self._receipt_agg.pop(primary, None)
                stat = _worst(rs.stats)
                prior = rs.stats[:-1]

                def restore(primary: str = primary, rs: _ReceiptSet = rs,
                            prior: list[str] = prior) -> None:
                    self._restore_receipt_set(primary, rs, prior)
            calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
            if self._on_receipt is not None:
                calls.append((self._on_receipt, (primary, stat, at)))
            if hit is None and self._on_foreign_receipt is not None:
                owner = _addr(pdu.destination_addr)
                dst = _addr(pdu.source_addr)
                calls.append((self._on_foreign_receipt, (owner, dst, mid, stat, at)))
            return self._defer_calls(seq, calls, restore)
        # mobile originated
        try:
            msg = decode_short_message(bytes(raw), int(pdu.data_coding or 0), esm)
        except CodecError as e:
            log.warning("smpp.mo_undecodable", error=str(e))
            return ESME_ROK  # accept: refusing would make the SMSC redeliver a message we can't read
        source = _addr(pdu.source_addr)
        dest = _addr(pdu.destination_addr)
        self.stats["mo"] += 1
        if self._on_mo is None:
            return ESME_ROK
        text = msg.text
        if msg.concat is not None and msg.concat.total > 1:
            token = self._defer(seq)
            done = self._reassemble(source, msg.concat, text, token)
            if done is None:
                return None  # answered with the whole message's store
            text, tokens = done
            self._call_soon(self._dispatch_acked, tokens, [(self._on_mo, (source, dest, text, now))])
            return None
        return self._defer_calls(seq, [(self._on_mo, (source, dest, text, now))])

    def _reassemble(self, source: str, c: ConcatInfo, text: str,
                    token: int) -> tuple[str, list[int]] | None:
        """Collect the parts of a concatenated MO; when complete, its text and the tokens of
        every part (answered together once the whole message is stored)."""
        key = (source, c.ref, c.total)
        entry = self._mo_parts.get(key)
        if entry is None:
            entry = (time.monotonic(), {})
            self._mo_parts[key] = entry
        parts = entry[1]
        old = parts.get(c.seq)
        if old is not None:
            self._deferred.pop(old[1], None)  # a redelivered part: answer the new one
        parts[c.seq] = (text, token)
        while len(self._mo_parts) > 10_000:
            # the oldest incomplete message goes: its parts get RX_T_APPN at their timeout
            self._mo_parts.popitem(last=False)
        if len(parts) < c.total:
            return None
        del self._mo_parts[key]
        order = sorted(parts)
        return "".join(parts[i][0] for i in order), [parts[i][1] for i in order]


def build_submit_sm(config: SmppGatewayConfig, client: _SeqClient, destination: str,
                    segment: SmsSegment) -> tuple[int, bytes]:
    """submit_sm (§4.4.1) for one segment: (sequence_number, PDU). The octets smpplib would
    generate (scp.codecs.smpp_pdu, checked against smpplib in the tests); smpplib itself for
    anything outside the fast path's simple case."""
    seq = client.next_sequence()
    raw = encode_submit_sm(
        seq, source_addr_ton=config.source_addr_ton, source_addr_npi=config.source_addr_npi,
        source_addr=config.source_addr, dest_addr_ton=config.dest_addr_ton,
        dest_addr_npi=config.dest_addr_npi, destination_addr=destination,
        esm_class=segment.esm_class, data_coding=int(segment.data_coding),
        registered_delivery=config.registered_delivery, short_message=segment.short_message)
    if raw is not None:
        return seq, raw
    pdu = smpplib.smpp.make_pdu(
        "submit_sm", client=_FixedSequence(seq),
        source_addr_ton=config.source_addr_ton, source_addr_npi=config.source_addr_npi,
        source_addr=config.source_addr,
        dest_addr_ton=config.dest_addr_ton, dest_addr_npi=config.dest_addr_npi,
        destination_addr=destination,
        esm_class=segment.esm_class, data_coding=int(segment.data_coding),
        registered_delivery=config.registered_delivery,
        short_message=segment.short_message)
    return int(pdu.sequence), pdu.generate()


# Responses we answer with are a header and at most an empty message_id (§4.6.2, §4.11.2,
# §4.3.1, §4.2.2, §4.7.2): packed here rather than built through smpplib's generic machinery.
_RESPONSE_IDS = {
    "generic_nack": (0x80000000, b""),
    "unbind_resp": (0x80000006, b""),
    "deliver_sm_resp": (0x80000005, b"\0"),
    "enquire_link_resp": (0x80000015, b""),
    "data_sm_resp": (0x80000103, b"\0"),
}


def _answer(command: str, sequence: int, status: int = ESME_ROK) -> bytes:
    """A response PDU echoing the request's sequence_number (§2.5) with ``status``."""
    command_id, body = _RESPONSE_IDS[command]
    return _HEADER.pack(16 + len(body), command_id, status, sequence) + body


@dataclass(frozen=True)
class _SubmitSmResp:
    """submit_sm_resp (§4.4.2), parsed here: it is most of what the SMSC sends."""

    sequence: int
    status: int
    message_id: str
    command: str = "submit_sm_resp"


def _parse_submit_sm_resp(raw: bytes, status: int, sequence: int) -> _SubmitSmResp:
    end = raw.find(b"\0", 16)
    mid = raw[16:end if end >= 0 else len(raw)].decode("ascii", "replace")
    return _SubmitSmResp(sequence, status, mid)


def _addr(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    return str(v or "")


class _Unparsed:
    """A PDU smpplib could not parse: enough to answer it."""

    def __init__(self, command_id: int, sequence: int) -> None:
        self.command_id = command_id
        self.sequence = sequence


class _FixedSequence:
    """A client for smpplib's PDU factory that hands out one sequence number already taken."""

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence

    def next_sequence(self) -> int:
        return self.sequence


class _SeqClient:
    """What smpplib's PDU factory needs of a client: sequence numbers (§5.1.4, 1..0x7FFFFFFF)."""

    def __init__(self) -> None:
        self._seq = 0

    @property
    def sequence(self) -> int:
        return self._seq

    def next_sequence(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0x7FFFFFFF else 1
        return self._seq


# ---------------------------------------------------------------------------------------------


class ConsoleSink:
    """The ``console`` backend: prints each SMS instead of sending it (``make run`` default)."""

    def __init__(self, *, source_addr: str = "12599", stream: IO[str] | None = None,
                 on_receipt: ReceiptHandler | None = None, on_mo: MoHandler | None = None) -> None:
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
        print(f"SMS {mid} {self.source_addr} -> {sms.destination} "
              f"[{encoded.data_coding.name}, {len(encoded.segments)} segment(s)]: {sms.text}",
              file=stream, flush=True)
        self.sent.append((mid, sms.destination, sms.text))
        return mid

    async def stop(self, timeout: float = 5.0) -> None:
        pass


def make_gateway(cfg: SmppConfig, *, on_receipt: ReceiptHandler | None = None,
                 on_mo: MoHandler | None = None,
                 on_foreign_receipt: ForeignReceiptHandler | None = None) -> SmppGateway | ConsoleSink:
    """The backend [smpp].backend names."""
    if cfg.backend == "console":
        return ConsoleSink(source_addr=cfg.source_addr, on_receipt=on_receipt, on_mo=on_mo)
    return SmppGateway(SmppGatewayConfig.from_config(cfg), on_receipt=on_receipt, on_mo=on_mo,
                       on_foreign_receipt=on_foreign_receipt)
