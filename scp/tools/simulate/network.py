"""Switch / HLR / VLR / media-server simulator: drives an SCP through the missed-call call flows.

For labs and load (ARCHITECTURE §3 ``mcn-scp simulate``, §4 call flows). One M3UA ASP (RFC 4666
§4.3, client role) carries every network element the SCP talks to, each on its own SCCP
subsystem (3GPP TS 23.003 §8.1): the gsmSSF/MSC and the gsmSRF on 146 (CAP, TS 29.078), the HLR
on 6 and the VLR on 7 (MAP, TS 29.002). The simulator runs the same cores as the SCP (SigtranStack
in client role) and reacts to what the SCP asks, as a switch would:

* InitialDP (TS 29.078 §6.1.2.1, TAA = termAttemptAuthorized) opens each call;
  RequestReportBCSMEvent arms detection points and the switch reports the one the scenario
  meets: tBusy with busyCause 17 (user busy) or 20 (subscriber absent), or tNoAnswer.
* ConnectToResource / EstablishTemporaryConnection put the caller on an SRF: PlayAnnouncement
  is answered with SpecializedResourceReport when asked, PromptAndCollectUserInformation with
  the scenario's digits (ReceivedInformation); after ETC the media server opens its own dialogue
  with AssistRequestInstructions(correlationID).
* As HLR: SendRoutingInfoForSM (§12.3) answers absentSubscriberSM until the subscriber is
  present, then the IMSI; ReportSM-DeliveryStatus (§12.4) is acknowledged; AnyTimeInterrogation
  answers the subscriber state. Presence is announced with AlertServiceCentre (§12.5) or, as the
  VLR, NoteMM-Event (§8.11.2).

Scenarios (:data:`SCENARIOS`): busy, not-reachable-then-present, no-answer, one per caller-menu
choice (menu-sms, menu-voicemail, menu-other-number, menu-operator), selfcare-pin, present-vlr.
``--calls N --concurrency C`` runs the busy call flow N times, C at once, and reports rates and
answer latencies.

Each scenario declares what it is about (:data:`EXPECTATIONS`: the missed-call reason, the
caller's menu choice and what it makes the SCP send and write, the presence report, the SMS)
and :func:`judge` gives the verdict: ok only when all of it was seen, "not checked" naming
what could not be seen from here (the rows with ``--target``; the caller menu in connect mode,
which the IVR runs), "contradicted" naming what went otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scp.codecs import cap as cap_codec
from scp.codecs import map as map_codec
from scp.codecs import ops
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    RedirectingNumber,
)
from scp.config import Config, parse_config
from scp.primitives import (
    ApplicationContext,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcUAbort,
)

__all__ = [
    "SCENARIOS",
    "EXPECTATIONS",
    "MENU_CHOICES",
    "Expectation",
    "Records",
    "Verdict",
    "judge",
    "provision_for_scenarios",
    "Numbers",
    "CallResult",
    "LoadReport",
    "SimPeer",
    "Simulator",
    "run_scenario",
    "run_load",
    "connect_tcp",
    "connect_in_process",
]

CAP_V2: ApplicationContext = (0, 4, 0, 0, 1, 0, 50, 1)
CAP_V2_ASSIST: ApplicationContext = (0, 4, 0, 0, 1, 0, 51, 1)
MAP_SHORT_MSG_ALERT_V2: ApplicationContext = (0, 4, 0, 0, 1, 0, 23, 2)
MAP_MM_EVENT_REPORTING_V3: ApplicationContext = (0, 4, 0, 0, 1, 0, 42, 3)

SSN_MSC = 146  # gsmSSF and gsmSRF (TS 23.003 §8.1: CAP)
SSN_HLR = 6
SSN_VLR = 7

OP_IDP, OP_CONNECT, OP_RELEASE, OP_RRBE, OP_ERB = 0, 20, 22, 23, 24
OP_CONTINUE, OP_CTR, OP_ETC, OP_DFC, OP_ARI = 31, 19, 17, 18, 16
OP_PA, OP_PACUI, OP_SRR = 47, 48, 49
OP_SRI_SM, OP_RSMDS, OP_ASC, OP_NOTE_MM, OP_ATI = 45, 47, 64, 89, 71
ERR_ABSENT_SUBSCRIBER_SM = 6

CAUSE_USER_BUSY = 17
CAUSE_ABSENT = 20

SCENARIOS: dict[str, str] = {
    "busy": "subscriber busy (tBusy, busyCause 17); the caller takes menu choice 1",
    "not-reachable-then-present": "subscriber absent (busyCause 20), caller asks for an SMS; "
    "then the HLR sends AlertServiceCentre",
    "present-vlr": "subscriber absent, then the VLR reports IMSI attach (NoteMM-Event)",
    "no-answer": "subscriber does not answer (tNoAnswer); caller takes choice 1",
    "menu-sms": "caller menu choice 1: SMS me when reachable",
    "menu-voicemail": "caller menu choice 2: leave a voice message",
    "menu-other-number": "caller menu choice 3: call another number",
    "menu-operator": "caller menu choice 0: operator",
    "selfcare-pin": "the subscriber calls the self-service number and enters the PIN",
}

PEER_CONFIG = """
[node]
name = "sim"
worker_id = 9
[m3ua]
role = "client"
peers = ["127.0.0.1:1"]
routing_context = {rc}
local_pc = {pc}
pc_format = "{pcf}"
network_indicator = {ni}
beat_interval = 0
[sccp]
global_title = "8613900000"
default_dpc = {dpc}
[sccp.ssn]
cap = 146
map = 6
sc = 7
inap = 241
"""


@dataclass(frozen=True, slots=True)
class Numbers:
    """The numbers a scenario uses (E.164 international digits)."""

    subscriber: str = "8613800138000"
    caller: str = "8613900139000"
    other: str = "8613700137000"
    imsi: str = "460001234567890"
    pin: str = "246813"
    selfcare: str = "12599"
    msc: str = "8613900000"


@dataclass
class CallResult:
    """What one simulated scenario saw: the SCP's operations in order and the outcome."""

    scenario: str
    ok: bool = False
    outcome: str = ""
    received: list[str] = field(default_factory=list)
    first_answer: float | None = None  # s from InitialDP to the SCP's first answer
    duration: float = 0.0
    map_outcome: str | None = None
    verdict: Verdict | None = None  # run_scenario: did what the scenario is about happen

    @property
    def status(self) -> str:
        """ok / not checked / contradicted (a call without a verdict: ok or contradicted)."""
        if self.verdict is not None:
            return self.verdict.status
        return "ok" if self.ok else "contradicted"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "call",
            "scenario": self.scenario,
            "ok": self.status == "ok",
            "verdict": self.status,
            "outcome": self.outcome,
            "received": self.received,
            "duration_ms": round(self.duration * 1000, 3),
        }
        if self.first_answer is not None:
            d["first_answer_ms"] = round(self.first_answer * 1000, 3)
        if self.map_outcome is not None:
            d["map"] = self.map_outcome
        v = self.verdict
        if v is not None:
            d.update(
                checked=list(v.checked),
                contradicted=list(v.missing),
                not_checked=list(v.not_checked),
                not_exercised=list(v.not_exercised),
            )
        return d


# ---------------------------------------------------------------------------------------------
# The peer: a client-role stack with per-dialogue indication queues
# ---------------------------------------------------------------------------------------------


class SimPeer:
    """The simulator's SIGTRAN side: one client-role stack, bytes in and out through callbacks.

    ``send_bytes`` carries M3UA messages to the SCP; :meth:`receive` takes the SCP's. TC
    indications go to the queue of their dialogue; a TC-BEGIN from the SCP (the SCP asking the
    HLR) goes to ``on_begin``.
    """

    def __init__(
        self,
        *,
        scp_pc: int = 100,
        local_pc: int = 200,
        routing_context: int = 1,
        network_indicator: int = 2,
        scp_ssn: Any = None,
        send_bytes: Callable[[bytes], None] | None = None,
        pc_format: str = "itu",
    ) -> None:
        from scp.app import build_stack

        self.cfg: Config = parse_config(
            PEER_CONFIG.format(
                rc=routing_context, pc=local_pc, ni=network_indicator, dpc=scp_pc, pcf=pc_format
            )
        )
        self.stack = build_stack(self.cfg)
        self.scp_pc = scp_pc
        self.local_pc = local_pc
        self.scp_ssn = scp_ssn
        self.send_bytes = send_bytes
        self.queues: dict[int, asyncio.Queue[object]] = {}
        self.on_begin: Callable[[TcBegin], None] | None = None
        self.active = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self.assoc_id = 1

    # -- transport side --------------------------------------------------------------------------

    def connected(self) -> None:
        self._process(self.stack.association_up(self.assoc_id, time.monotonic()))

    def receive(self, data: bytes) -> None:
        self._process(self.stack.receive(self.assoc_id, data, time.monotonic()))

    def disconnected(self) -> None:
        self._process(self.stack.association_down(self.assoc_id, time.monotonic()))
        self.active.clear()

    def _process(self, outputs: list[object]) -> None:
        from scp.core.m3ua_asp import Transmit
        from scp.core.stack import TC_TYPES

        for o in outputs:
            t = type(o)
            if t is Transmit:
                if self.send_bytes is not None:
                    self.send_bytes(o.data)  # type: ignore[attr-defined]
            elif t in TC_TYPES:
                did = o.dialogue_id  # type: ignore[attr-defined]
                q = self.queues.get(did)
                if q is not None:
                    q.put_nowait(o)
                elif t is TcBegin and self.on_begin is not None:
                    self.queues[did] = asyncio.Queue()
                    self.on_begin(o)  # type: ignore[arg-type]
        if self.stack.m3ua.is_active:
            self.active.set()
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        d = self.stack.next_deadline()
        if d is not None:
            self._timer = asyncio.get_running_loop().call_later(
                max(0.0, d - time.monotonic()), self._on_timer
            )

    def _on_timer(self) -> None:
        self._timer = None
        self._process(self.stack.handle_timer(time.monotonic()))

    # -- TC-user side ----------------------------------------------------------------------------

    def address(self, ssn: int) -> SccpAddress:
        return SccpAddress(ri=RoutingIndicator.SSN, pc=self.local_pc, ssn=ssn)

    def scp_address(self, ssn: int) -> SccpAddress:
        return SccpAddress(ri=RoutingIndicator.SSN, pc=self.scp_pc, ssn=ssn)

    def begin(
        self,
        *,
        called_ssn: int,
        calling_ssn: int,
        ac: ApplicationContext,
        components: tuple[Any, ...],
    ) -> int:
        did = self.stack.tcap.new_dialogue_id()
        self.queues[did] = asyncio.Queue()
        self._process(
            self.stack.tc_request(
                TcBegin(
                    dialogue_id=did,
                    called=self.scp_address(called_ssn),
                    calling=self.address(calling_ssn),
                    application_context=ac,
                    components=components,
                ),
                time.monotonic(),
            )
        )
        return did

    def request(self, prim: Any) -> None:
        if isinstance(prim, (TcEnd, TcUAbort)):
            self.queues.pop(prim.dialogue_id, None)
        self._process(self.stack.tc_request(prim, time.monotonic()))

    async def next(self, did: int, timeout: float) -> object | None:
        q = self.queues.get(did)
        if q is None:
            return None
        try:
            return await asyncio.wait_for(q.get(), timeout)
        except TimeoutError:
            return None

    def forget(self, did: int) -> None:
        self.queues.pop(did, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# ---------------------------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------------------------


class _TcpPeer(asyncio.Protocol):
    def __init__(self, peer: SimPeer, wire: Callable[[bytes, bool], None] | None) -> None:
        from scp.core.m3ua_framing import M3uaStreamReader

        self.peer = peer
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.wire = wire
        self.closed = asyncio.Event()
        peer.send_bytes = self._send

    def _send(self, data: bytes) -> None:
        if self.wire is not None:
            self.wire(data, True)
        if self.transport is not None:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer.connected()

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.reader.feed(data)
        except Exception:  # noqa: BLE001 - framing lost: drop the association
            if self.transport is not None:
                self.transport.close()
            return
        for m in msgs:
            if self.wire is not None:
                self.wire(m, False)
            self.peer.receive(m)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.peer.disconnected()
        self.closed.set()


class Connection:
    """A connected simulator: the peer plus how to close it."""

    def __init__(self, peer: SimPeer, closer: Callable[[], Any]) -> None:
        self.peer = peer
        self._closer = closer

    async def close(self) -> None:
        self.peer.close()
        r = self._closer()
        if asyncio.iscoroutine(r):
            await r


def _wire_writer(capture: Any) -> Callable[[bytes, bool], None] | None:
    if capture is None:
        return None
    sim, scp = ("10.0.0.2", 2906), ("10.0.0.1", 2905)

    def wire(data: bytes, outgoing: bool) -> None:
        capture.write(
            data, ts=time.time(), src=sim if outgoing else scp, dst=scp if outgoing else sim
        )

    return wire


async def connect_tcp(
    host: str,
    port: int,
    *,
    scp_pc: int = 100,
    routing_context: int = 1,
    network_indicator: int = 2,
    local_pc: int = 200,
    capture: Any = None,
    timeout: float = 5.0,
    pc_format: str = "itu",
) -> Connection:
    """The simulator as an M3UA ASP over TCP toward a running SCP; waits for ASP-ACTIVE.
    ``pc_format`` is the SCP's ``[m3ua] pc_format``: SCCP addresses carry point codes."""
    peer = SimPeer(
        scp_pc=scp_pc,
        local_pc=local_pc,
        routing_context=routing_context,
        network_indicator=network_indicator,
        pc_format=pc_format,
    )
    proto = _TcpPeer(peer, _wire_writer(capture))
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: proto, host, port), timeout
        )
        await asyncio.wait_for(peer.active.wait(), timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"cannot reach an active M3UA SCP at {host}:{port}: {exc}") from None

    async def close() -> None:
        peer._process(peer.stack.shutdown(time.monotonic()))
        await asyncio.sleep(0.05)
        transport.close()
        await asyncio.sleep(0)

    return Connection(peer, close)


async def connect_in_process(
    cfg: Config, *, pool: Any = None, users: Any = None, capture: Any = None
) -> tuple[Connection, Any]:
    """The simulator wired to an in-process SCP (same cores and TC-users as ``mcn-scp run``).

    Returns the connection and the :class:`~scp.replay.InProcessScp`. Bytes cross on the next
    loop iteration in both directions, as they would over a socket.
    """
    from scp.replay import InProcessScp

    loop = asyncio.get_running_loop()
    wire = _wire_writer(capture)
    peer = SimPeer(
        scp_pc=cfg.m3ua.local_pc,
        routing_context=cfg.m3ua.routing_context,
        network_indicator=cfg.m3ua.network_indicator,
        pc_format=cfg.m3ua.pc_format,
    )

    def to_peer(data: bytes) -> None:
        if wire is not None:
            wire(data, False)
        loop.call_soon(peer.receive, data)

    scp = InProcessScp(cfg, pool=pool, users=users, on_send=to_peer)
    scp.node.association_up(scp.assoc_id, scp.PEER, scp.LOCAL)

    def to_scp(data: bytes) -> None:
        if wire is not None:
            wire(data, True)
        loop.call_soon(scp.feed, data)

    peer.send_bytes = to_scp
    peer.connected()
    await asyncio.wait_for(peer.active.wait(), 5.0)

    async def close() -> None:
        await scp.stop()

    return Connection(peer, close), scp


# ---------------------------------------------------------------------------------------------
# The network elements' behaviour
# ---------------------------------------------------------------------------------------------


def _name(protocol: str, code: Any) -> str:
    table = cap_codec.OPCODES if protocol == "cap" else map_codec.OPCODES
    return table.get(code, str(code)) if isinstance(code, int) else str(code)


class Simulator:
    """The switch, SRF, HLR and VLR behaviour over one :class:`SimPeer`.

    ``cfg`` is the SCP's configuration (its SSNs, service keys, GT); ``timeout`` bounds each
    wait for the SCP.
    """

    def __init__(
        self,
        peer: SimPeer,
        cfg: Config,
        *,
        numbers: Numbers | None = None,
        timeout: float = 5.0,
        cap_ac: ApplicationContext = CAP_V2,
    ) -> None:
        self.peer = peer
        self.cfg = cfg
        self.numbers = numbers or Numbers()
        self.timeout = timeout
        self.cap_ac = cap_ac
        self.present: set[str] = set()
        self.hlr_log: list[str] = []
        self._next_iid = 0
        peer.on_begin = self._on_begin

    # -- HLR / VLR answering the SCP's MAP dialogues ----------------------------------------------

    def _on_begin(self, b: TcBegin) -> None:
        asyncio.get_running_loop().create_task(self._serve_map(b))

    async def _serve_map(self, b: TcBegin) -> None:
        ac = b.application_context
        answers: list[Any] = []
        for c in b.components:
            if type(c) is not Invoke:
                continue
            try:
                arg = map_codec.decode_arg(c.opcode, c.parameter, ac=ac)
            except DecodeError:
                arg = None
            self.hlr_log.append(_name("map", c.opcode))
            msisdn = getattr(getattr(arg, "msisdn", None), "digits", None)
            res: Any
            if c.opcode == OP_SRI_SM:
                if msisdn in self.present:
                    res = ops.RoutingInfoForSM(
                        imsi=self.numbers.imsi, network_node_number=AddressString(self.numbers.msc)
                    )
                    answers.append(
                        ReturnResult(
                            c.invoke_id, c.opcode, map_codec.encode_result(c.opcode, res, ac=ac)
                        )
                    )
                else:
                    err = ops.OperationError(ERR_ABSENT_SUBSCRIBER_SM, "absentSubscriberSM", None)
                    code, param = map_codec.encode_error(err, ac=ac)
                    answers.append(ReturnError(c.invoke_id, code, param))
            elif c.opcode == OP_ATI:
                state = "assumedIdle" if msisdn in self.present else "netDetNotReachable"
                res = ops.AnyTimeInterrogationResult(
                    subscriber_state=state,
                    not_reachable_reason=None if state == "assumedIdle" else 1,
                )
                try:
                    param = map_codec.encode_result(c.opcode, res, ac=ac)
                except EncodeError:
                    param = None
                answers.append(ReturnResult(c.invoke_id, c.opcode, param))
            else:
                # ReportSM-DeliveryStatus and anything else: acknowledged, no parameter.
                answers.append(ReturnResult(c.invoke_id, c.opcode, None))
        self.peer.request(
            TcEnd(dialogue_id=b.dialogue_id, application_context=ac, components=tuple(answers))
        )

    async def alert_service_centre(self, msisdn: str) -> str:
        """HLR -> SCP AlertServiceCentre (v2, op 64) to our SC address; the outcome in words."""
        self.present.add(msisdn)
        arg = ops.AlertServiceCentre(
            msisdn=AddressString(msisdn),
            service_centre_address=AddressString(self.cfg.sccp.global_title),
        )
        code, param = map_codec.encode_arg(arg, ac=MAP_SHORT_MSG_ALERT_V2)
        did = self.peer.begin(
            called_ssn=self.cfg.sccp.ssn.sc,
            calling_ssn=SSN_HLR,
            ac=MAP_SHORT_MSG_ALERT_V2,
            components=(Invoke(1, code, param, op_class=1),),
        )
        return await self._map_outcome(did, "alertServiceCentre")

    async def note_mm_event(self, msisdn: str, event_met: int = 2) -> str:
        """VLR -> SCP NoteMM-Event (op 89, M-CSI); 2 = IMSI attach."""
        self.present.add(msisdn)
        arg = ops.NoteMMEvent(
            service_key=self.cfg.service.terminating_service_key,
            event_met=event_met,
            imsi=self.numbers.imsi,
            msisdn=AddressString(msisdn),
        )
        code, param = map_codec.encode_arg(arg, ac=MAP_MM_EVENT_REPORTING_V3)
        did = self.peer.begin(
            called_ssn=self.cfg.sccp.ssn.map,
            calling_ssn=SSN_VLR,
            ac=MAP_MM_EVENT_REPORTING_V3,
            components=(Invoke(1, code, param, op_class=1),),
        )
        return await self._map_outcome(did, "noteMM-Event")

    async def _map_outcome(self, did: int, what: str) -> str:
        while True:
            ind = await self.peer.next(did, self.timeout)
            if ind is None:
                self.peer.forget(did)
                return f"{what}: no answer"
            if isinstance(ind, (TcEnd, TcContinue)):
                kinds = [type(c).__name__ for c in ind.components]
                if isinstance(ind, TcContinue):
                    self.peer.request(TcEnd(dialogue_id=did))
                if any(k in ("ReturnError", "Reject") for k in kinds):
                    return f"{what}: {','.join(kinds)}"
                return f"{what}: acknowledged"
            if isinstance(ind, (TcUAbort, TcPAbort)):
                self.peer.forget(did)
                return f"{what}: aborted ({type(ind).__name__})"
            if isinstance(ind, TcNotice):
                self.peer.forget(did)
                return f"{what}: returned by SCCP ({ind.reason})"

    # -- the switch and its SRF -------------------------------------------------------------------

    async def call(
        self, scenario: str, *, caller: str | None = None, digits: list[str] | None = None
    ) -> CallResult:
        """One call: InitialDP, then react to the SCP until the dialogue ends."""
        n = self.numbers
        res = CallResult(scenario)
        t0 = time.monotonic()
        selfcare = scenario == "selfcare-pin"
        if selfcare:
            sk, called, calling = self.cfg.service.selfcare_service_key, n.selfcare, n.subscriber
        else:
            sk, called, calling = (
                self.cfg.service.terminating_service_key,
                n.subscriber,
                caller or n.caller,
            )
        script = list(digits if digits is not None else _DIGITS.get(scenario, ["1"]))
        event = 14 if scenario == "no-answer" else 13
        cause = (
            CAUSE_ABSENT
            if scenario in ("not-reachable-then-present", "present-vlr")
            else CAUSE_USER_BUSY
        )
        idp = ops.InitialDP(
            service_key=sk,
            called_party_number=CalledPartyNumber(called),
            calling_party_number=CallingPartyNumber(calling),
            event_type_bcsm=12,
            imsi=n.imsi if not selfcare else None,
            called_party_bcd_number=None,
        )
        code, param = cap_codec.encode_arg(idp, ac=self.cap_ac)
        did = self.peer.begin(
            called_ssn=self.cfg.sccp.ssn.cap,
            calling_ssn=SSN_MSC,
            ac=self.cap_ac,
            components=(Invoke(1, code, param, op_class=2),),
        )
        state = _CallState(did=did, armed=set(), event=event, cause=cause, script=script)
        try:
            await self._drive(state, res, t0)
        except (DecodeError, EncodeError) as exc:
            res.outcome = f"codec error: {exc}"
        res.duration = time.monotonic() - t0
        return res

    async def _drive(self, st: _CallState, res: CallResult, t0: float) -> None:
        reported = False
        dids = {st.did}
        assist_task: asyncio.Task[None] | None = None
        while True:
            ind = await self.peer.next(st.did, self.timeout)
            if res.first_answer is None and ind is not None:
                res.first_answer = time.monotonic() - t0
            if ind is None:
                res.outcome = res.outcome or "timeout waiting for the SCP"
                self.peer.request(TcUAbort(dialogue_id=st.did))
                break
            if isinstance(ind, (TcUAbort, TcPAbort)):
                res.outcome = f"aborted by the SCP side ({type(ind).__name__})"
                break
            if isinstance(ind, TcNotice):
                res.outcome = f"returned by SCCP (cause {ind.reason})"
                self.peer.forget(st.did)
                break
            if isinstance(ind, TcComponentEvent):
                continue
            comps = getattr(ind, "components", ())
            reply: list[Any] = []
            final = None
            for c in comps:
                if type(c) is Reject:
                    res.received.append(f"reject/{c.problem_code}")
                    final = final or "rejected by the SCP"
                    continue
                if type(c) is ReturnError:
                    res.received.append(f"error/{c.error_code}")
                    continue
                if type(c) is not Invoke:
                    continue
                res.received.append(_name("cap", c.opcode))
                op = cap_codec.decode_arg(c.opcode, c.parameter, ac=self.cap_ac)
                if c.opcode == OP_RRBE:
                    st.armed |= {e.event_type_bcsm for e in op.bcsm_events}  # type: ignore[attr-defined]
                elif c.opcode == OP_CONNECT:
                    dra = op.destination_routing_address  # type: ignore[attr-defined]
                    final = f"connect {dra[0].digits if dra else '?'}"
                elif c.opcode == OP_RELEASE:
                    final = f"release cause {op.cause.value}"  # type: ignore[attr-defined]
                elif c.opcode == OP_CONTINUE:
                    final = final or "continue"
                elif c.opcode == OP_CTR:
                    st.on_srf = True
                elif c.opcode == OP_PA:
                    if op.request_announcement_complete:  # type: ignore[attr-defined]
                        reply.append(self._srr())
                elif c.opcode == OP_PACUI:
                    reply.append(self._digits_result(c, st))
                elif c.opcode == OP_ETC:
                    corr = op.correlation_id  # type: ignore[attr-defined]
                    assist_task = asyncio.get_running_loop().create_task(
                        self._assist(corr, st, res)
                    )
                elif c.opcode == OP_DFC:
                    st.on_srf = False
            if isinstance(ind, TcEnd):
                res.outcome = final or res.outcome or "ended by the SCP"
                break
            # The SCP left the dialogue open after instructing the call: report the DP the
            # scenario meets (once), or finish the call as the switch would.
            if final in ("continue",) and not reported and st.event in st.armed and not st.on_srf:
                reported = True
                reply.append(self._erb(st.event, st.cause))
                final = None
            if reply:
                self.peer.request(TcContinue(dialogue_id=st.did, components=tuple(reply)))
                continue
            if final is not None and not final.startswith("continue"):
                # Connect/Release: the call goes on in the switch; EDP-Rs left armed end it.
                res.outcome = final
                self.peer.request(
                    TcEnd(
                        dialogue_id=st.did,
                        components=(self._erb(17, None, notify=True),) if 17 in st.armed else (),
                    )
                )
                break
            if final == "continue" and reported:
                res.outcome = "continue after the event"
                self.peer.request(TcEnd(dialogue_id=st.did))
                break
        if assist_task is not None:
            try:
                await asyncio.wait_for(assist_task, self.timeout)
            except TimeoutError:
                assist_task.cancel()
        del dids
        res.ok = not res.outcome.startswith(("timeout", "aborted", "rejected", "returned", "codec"))

    def _erb(self, event: int, cause: int | None, *, notify: bool = False) -> Invoke:
        info = None
        if event == 13:
            info = ops.EventSpecificInfo(
                "tBusySpecificInfo", cause=Cause(cause or CAUSE_USER_BUSY, location=4)
            )
        elif event == 14:
            info = ops.EventSpecificInfo("tNoAnswerSpecificInfo")
        elif event == 17:
            info = ops.EventSpecificInfo("tDisconnectSpecificInfo", cause=Cause(16, location=4))
        erb = ops.EventReportBCSM(
            event_type_bcsm=event,
            event_specific_information=info,
            leg_id=ops.LegID(2 if event != 17 else 1),
            message_type=1 if notify else 0,
        )
        code, param = cap_codec.encode_arg(erb, ac=self.cap_ac)
        return Invoke(self._iid(), code, param, op_class=4)

    def _srr(self) -> Invoke:
        code, param = cap_codec.encode_arg(ops.SpecializedResourceReport(), ac=self.cap_ac)
        return Invoke(self._iid(), code, param, op_class=4)

    def _digits_result(self, c: Invoke, st: _CallState) -> ReturnResult:
        st.prompts += 1
        d = st.script.pop(0) if st.script else "0"
        ri = ops.ReceivedInformation(GenericDigits(d))
        return ReturnResult(
            c.invoke_id, c.opcode, cap_codec.encode_result(c.opcode, ri, ac=self.cap_ac)
        )

    def _iid(self) -> int:
        # Our invoke IDs in the call dialogue; 1 is the InitialDP (Q.773 §3.2: -128..127).
        self._next_iid = (self._next_iid + 1) % 120
        return 2 + self._next_iid

    async def _assist(self, corr: Any, st: _CallState, res: CallResult) -> None:
        """The media server's own dialogue after EstablishTemporaryConnection (ARI first)."""
        # iPSSPCapabilities is mandatory in CAP (TS 29.078 §6.1.2.1 ARI): basic IP, no voice.
        ari = ops.AssistRequestInstructions(
            correlation_id=corr or GenericDigits("1"), ip_ssp_capabilities=b"\x01"
        )
        code, param = cap_codec.encode_arg(ari, ac=CAP_V2_ASSIST)
        did = self.peer.begin(
            called_ssn=self.cfg.sccp.ssn.cap,
            calling_ssn=SSN_MSC,
            ac=CAP_V2_ASSIST,
            components=(Invoke(1, code, param, op_class=2),),
        )
        while True:
            ind = await self.peer.next(did, self.timeout)
            if ind is None or isinstance(ind, (TcUAbort, TcPAbort, TcNotice)):
                self.peer.forget(did)
                return
            reply: list[Any] = []
            for c in getattr(ind, "components", ()):
                if type(c) is not Invoke:
                    continue
                res.received.append("srf:" + _name("cap", c.opcode))
                op = cap_codec.decode_arg(c.opcode, c.parameter, ac=CAP_V2_ASSIST)
                if c.opcode == OP_PA and op.request_announcement_complete:  # type: ignore[attr-defined]
                    reply.append(self._srr())
                elif c.opcode == OP_PACUI:
                    reply.append(self._digits_result(c, st))
            if isinstance(ind, TcEnd):
                return
            if reply:
                self.peer.request(TcContinue(dialogue_id=did, components=tuple(reply)))


@dataclass
class _CallState:
    did: int
    armed: set[int]
    event: int
    cause: int
    script: list[str]
    on_srf: bool = False
    prompts: int = 0


# ---------------------------------------------------------------------------------------------
# What each scenario is about, and the verdict
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """What one caller-menu digit makes the SCP do (ARCHITECTURE §4): operations, rows, route."""

    what: str
    ops: tuple[str, ...]  # sent by the SCP after the choice, in this order
    records: tuple[str, ...]  # rows written for the call: callback, voicemail, cdr:<service>
    route: str | None  # where the caller is connected: a [ivr] key, "other", or None (release)


MENU_CHOICES: dict[str, MenuChoice] = {
    "1": MenuChoice(
        "SMS when reachable",
        ("playAnnouncement", "releaseCall"),
        ("callback", "cdr:callback"),
        None,
    ),
    "2": MenuChoice(
        "voice message",
        ("disconnectForwardConnection", "connect"),
        ("voicemail",),
        "voicemail_deposit",
    ),
    "3": MenuChoice(
        "another number",
        ("promptAndCollectUserInformation", "applyCharging", "connect"),
        ("cdr:other-number",),
        "other",
    ),
    "0": MenuChoice("operator", ("disconnectForwardConnection", "connect"), (), "operator"),
}


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a scenario is about; its verdict checks each part (operations, rows, SMS)."""

    digits: tuple[str, ...]  # keyed at the SCP's prompts, in order
    missed: str | None = None  # the missed-call reason the SCP must record
    presence: str | None = None  # the MAP presence report the SCP must acknowledge and store
    menu_is_the_point: bool = False  # menu-*: the caller's choice is what the scenario checks
    selfcare: bool = False


EXPECTATIONS: dict[str, Expectation] = {
    "busy": Expectation(("1",), missed="busy"),
    "not-reachable-then-present": Expectation(
        ("1",), missed="not-reachable", presence="alertServiceCentre"
    ),
    "present-vlr": Expectation(("1",), missed="not-reachable", presence="noteMM-Event"),
    "no-answer": Expectation(("1",), missed="no-answer"),
    "menu-sms": Expectation(("1",), missed="busy", menu_is_the_point=True),
    "menu-voicemail": Expectation(("2",), missed="busy", menu_is_the_point=True),
    "menu-other-number": Expectation(("3", Numbers().other), missed="busy", menu_is_the_point=True),
    "menu-operator": Expectation(("0",), missed="busy", menu_is_the_point=True),
    "selfcare-pin": Expectation((Numbers().pin, "1"), selfcare=True),
}
_DIGITS: dict[str, list[str]] = {name: list(e.digits) for name, e in EXPECTATIONS.items()}

# The operations that put a missed call's caller in front of the menu, per [ivr] mode.
_TO_IVR = {
    "connect": ("requestReportBCSMEvent", "connect"),
    "ctr": ("requestReportBCSMEvent", "connectToResource", "promptAndCollectUserInformation"),
    "etc": (
        "requestReportBCSMEvent",
        "establishTemporaryConnection",
        "promptAndCollectUserInformation",
    ),
}


@dataclass(frozen=True, slots=True)
class Records:
    """What the SCP wrote while a scenario ran (rows since it began, for its numbers)."""

    subscriber_known: bool
    missed: tuple[str, ...] = ()  # reasons of missed_call rows caller -> subscriber
    callbacks: int = 0
    voicemails: int = 0
    cdr_services: tuple[str, ...] = ()
    sms_to: tuple[str, ...] = ()
    presence: str | None = None  # source of a presence row written (present)
    pin_failed: int | None = None  # the subscriber's failed PIN attempts afterwards


_RECORD_TABLES = ("missed_call", "callback_request", "voicemail", "cdr", "sms_outbox")


async def records_floor(pool: Any, numbers: Numbers) -> dict[str, Any]:
    """Where each table stands before a scenario (highest ids, the presence row's time)."""
    out: dict[str, Any] = {}
    for t in _RECORD_TABLES:
        out[t] = int(await pool.fetchval(f"SELECT coalesce(max(id), 0) FROM {t}"))  # noqa: S608
    out["presence"] = await pool.fetchval(
        "SELECT event_at FROM presence WHERE msisdn = $1", numbers.subscriber
    )
    return out


async def records_since(pool: Any, floor: dict[str, Any], numbers: Numbers) -> Records:
    """The rows a scenario's call wrote: read-only, past ``floor``, for its two numbers."""
    sub, caller = numbers.subscriber, numbers.caller
    known = await pool.fetchrow("SELECT pin_failed_attempts FROM subscriber WHERE msisdn = $1", sub)
    missed = await pool.fetch(
        "SELECT reason FROM missed_call WHERE id > $1 AND callee = $2 AND caller = $3 ORDER BY id",
        floor["missed_call"],
        sub,
        caller,
    )
    callbacks = await pool.fetchval(
        "SELECT count(*) FROM callback_request WHERE id > $1 AND callee = $2 AND caller = $3",
        floor["callback_request"],
        sub,
        caller,
    )
    voicemails = await pool.fetchval(
        "SELECT count(*) FROM voicemail WHERE id > $1 AND callee = $2", floor["voicemail"], sub
    )
    cdrs = await pool.fetch(
        "SELECT service FROM cdr WHERE id > $1 AND msisdn IN ($2, $3) ORDER BY id",
        floor["cdr"],
        sub,
        caller,
    )
    sms = await pool.fetch(
        "SELECT destination FROM sms_outbox WHERE id > $1 AND destination IN ($2, $3) ORDER BY id",
        floor["sms_outbox"],
        sub,
        caller,
    )
    presence = await pool.fetchrow(
        "SELECT source, event_at, present FROM presence WHERE msisdn = $1", sub
    )
    written = (
        presence is not None and presence["present"] and presence["event_at"] != floor["presence"]
    )
    return Records(
        subscriber_known=known is not None,
        missed=tuple(r["reason"] for r in missed),
        callbacks=int(callbacks),
        voicemails=int(voicemails),
        cdr_services=tuple(r["service"] or "" for r in cdrs),
        sms_to=tuple(r["destination"] for r in sms),
        presence=presence["source"] if written else None,
        pin_failed=int(known["pin_failed_attempts"]) if known is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether what a scenario is about happened: ``ok``, ``not checked`` or ``contradicted``.

    ``checked`` lists what was seen as expected, ``missing`` what contradicts the scenario,
    ``not_checked`` what could not be seen from here (and why), ``not_exercised`` side parts
    the configuration leaves to another element (the caller menu on the IVR in connect mode).
    """

    checked: tuple[str, ...]
    missing: tuple[str, ...]
    not_checked: tuple[str, ...]
    not_exercised: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.missing:
            return "contradicted"
        return "not checked" if self.not_checked else "ok"


def _in_order(sent: list[str], want: tuple[str, ...]) -> bool:
    """``want`` appears in ``sent`` in this order (other operations may come between)."""
    it = iter(op.removeprefix("srf:") for op in sent)
    return all(any(op == w for op in it) for w in want)


def judge(
    scenario: str,
    res: CallResult,
    cfg: Config,
    numbers: Numbers,
    records: Records | None,
    *,
    why_unseen: str = "no database to look at",
) -> Verdict:
    """The verdict of one scenario run: its :data:`EXPECTATIONS` against what was seen.

    ``records`` None: the rows and SMS could not be looked at (``why_unseen`` says why).
    """
    exp = EXPECTATIONS[scenario]
    checked: list[str] = []
    missing: list[str] = []
    unseen: list[str] = []
    skipped: list[str] = []

    def check(ok: bool, what: str, otherwise: str) -> None:
        (checked if ok else missing).append(what if ok else otherwise)

    def rows(ok: bool, what: str, otherwise: str) -> None:
        if records is None:
            unseen.append(f"{what} ({why_unseen})")
        else:
            check(ok, what, otherwise)

    sent = res.received
    if records is not None and not records.subscriber_known:
        missing.append(
            f"{numbers.subscriber} is not a provisioned subscriber "
            "(mcn-scp subscriber add, or run without --live-db)"
        )
    mode = cfg.ivr.mode
    if exp.selfcare:
        srf = "connectToResource" if "connectToResource" in sent else "establishTemporaryConnection"
        check(
            _in_order(
                sent,
                (
                    srf,
                    "promptAndCollectUserInformation",
                    "promptAndCollectUserInformation",
                    "playAnnouncement",
                ),
            ),
            "PIN prompted, then the menu, then the missed calls announced",
            f"PIN, menu and missed-calls announcement not all sent (SCP sent: {_ops(sent)})",
        )
        rows(
            records is not None and records.pin_failed == 0,
            "PIN accepted",
            "PIN refused (failed attempts counted)",
        )
        return Verdict(tuple(checked), tuple(missing), tuple(unseen))
    to_ivr = _TO_IVR[mode]
    check(
        _in_order(sent, to_ivr),
        f"caller sent to the IVR ({mode} mode: {' '.join(to_ivr)})",
        f"caller not sent to the IVR: expected {' '.join(to_ivr)}, SCP sent {_ops(sent)}",
    )
    if mode == "connect":
        check(
            res.outcome == f"connect {cfg.ivr.number}",
            f"connected to the IVR number {cfg.ivr.number}",
            f"no Connect to the IVR number {cfg.ivr.number} (outcome: {res.outcome})",
        )
    rows(
        records is not None and exp.missed in records.missed,
        f"missed call recorded ({exp.missed})",
        f"no {exp.missed} missed call recorded for {numbers.caller} -> {numbers.subscriber}"
        + (f" (recorded: {', '.join(records.missed)})" if records and records.missed else ""),
    )
    rows(
        records is not None and numbers.subscriber in records.sms_to,
        f"SMS queued to {numbers.subscriber}",
        f"no SMS queued to {numbers.subscriber}",
    )
    if exp.presence is not None:
        check(
            "acknowledged" in (res.map_outcome or ""),
            f"{exp.presence} acknowledged",
            f"{exp.presence} not acknowledged ({res.map_outcome or 'not sent'})",
        )
        rows(
            records is not None and records.presence is not None,
            "presence stored",
            "no presence stored for the subscriber",
        )
    choice = MENU_CHOICES[exp.digits[0]]
    menu_parts = _menu_parts(choice, exp, res, cfg, numbers, records)
    if mode == "connect":
        why = (
            f"{choice.what}: connect mode hands the caller to the IVR at {cfg.ivr.number}, "
            "whose menu this SCP does not run ([ivr] mode = ctr or etc runs it here)"
        )
        (unseen if exp.menu_is_the_point else skipped).append(why)
    else:
        for ok, what, otherwise, from_rows in menu_parts:
            if from_rows:
                rows(ok, what, otherwise)
            else:
                check(ok, what, otherwise)
    return Verdict(tuple(checked), tuple(missing), tuple(unseen), tuple(skipped))


def _menu_parts(
    choice: MenuChoice,
    exp: Expectation,
    res: CallResult,
    cfg: Config,
    numbers: Numbers,
    records: Records | None,
) -> list[tuple[bool, str, str, bool]]:
    """(ok, what, otherwise, read from rows) for the caller's menu choice, in ctr / etc."""
    sent = res.received
    did = _in_order(sent, choice.ops)
    what = f"{choice.what}: {' '.join(choice.ops)}"
    otherwise = f"{choice.what}: expected {' '.join(choice.ops)}, SCP sent {_ops(sent)}"
    if choice.route is not None:
        target = numbers.other if choice.route == "other" else getattr(cfg.ivr, choice.route)
        did = did and res.outcome == f"connect {target}"
        what += f" {target}"
        otherwise = f"{choice.what}: no connect to {target} (outcome: {res.outcome})"
    parts = [(did, what, otherwise, False)]
    for rec in choice.records:
        if rec == "callback":
            ok = records is not None and records.callbacks == 1
            parts.append((ok, "callback request recorded", "no callback request recorded", True))
        elif rec == "voicemail":
            ok = records is not None and records.voicemails == 1
            parts.append((ok, "voice message recorded", "no voice message recorded", True))
        else:
            service = rec.removeprefix("cdr:")
            ok = records is not None and service in records.cdr_services
            parts.append((ok, f"CDR written ({service})", f"no {service} CDR written", True))
    if exp.presence is not None and "callback" in choice.records:
        ok = records is not None and numbers.caller in records.sms_to
        parts.append(
            (
                ok,
                f"SMS queued to the caller {numbers.caller}",
                f"no SMS queued to the caller {numbers.caller}",
                True,
            )
        )
    return parts


def _ops(sent: list[str]) -> str:
    return " ".join(sent) or "nothing"


async def provision_for_scenarios(pool: Any, numbers: Numbers, *, today: dt.date) -> bool:
    """The scenario subscriber (services and PIN the scenarios use), unless it exists.

    For the in-process SCP's scratch database only: a fresh installation has no subscriber,
    and a scenario against nobody proves nothing. Returns whether it was added.
    """
    from scp.flows import provisioning as prov
    from scp.service.provisioning import Actor, Conflict

    try:
        await prov.add_subscriber(
            pool,
            Actor("system", "simulate"),
            numbers.subscriber,
            services=("missed-call", "busy", "voicemail"),
            pin=numbers.pin,
            language="en",
            today=today,
        )
    except Conflict:
        return False
    return True


async def run_scenario(
    sim: Simulator,
    scenario: str,
    *,
    settle: float = 0.3,
    pool: Any = None,
    why_unseen: str = "no database to look at",
) -> CallResult:
    """One named scenario (see :data:`SCENARIOS`), the presence part included, and its verdict.

    With ``pool`` (the database the SCP writes to) the verdict also reads the rows the call
    wrote; without, it says those were not checked (``why_unseen``).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    floor = await records_floor(pool, sim.numbers) if pool is not None else None
    res = await sim.call(scenario)
    if scenario in ("not-reachable-then-present", "present-vlr"):
        await asyncio.sleep(settle)  # the SCP records the missed call and may ask the HLR
        if scenario == "present-vlr":
            res.map_outcome = await sim.note_mm_event(sim.numbers.subscriber)
        else:
            res.map_outcome = await sim.alert_service_centre(sim.numbers.subscriber)
        if "acknowledged" not in res.map_outcome:
            res.ok = False
    records = None
    if pool is not None and floor is not None:
        await asyncio.sleep(min(settle, 0.1))  # answers go out after the commit; be generous
        records = await records_since(pool, floor, sim.numbers)
    res.verdict = judge(scenario, res, sim.cfg, sim.numbers, records, why_unseen=why_unseen)
    return res


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    """Rates and latencies of a load run (``--calls N --concurrency C``)."""

    calls: int
    concurrency: int
    ok: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        s = sorted(self.latencies)

        def pct(p: float) -> float:
            if not s:
                return 0.0
            return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000, 3)

        return {
            "type": "load",
            "calls": self.calls,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed, 3),
            "calls_per_s": round(self.calls / self.elapsed, 1) if self.elapsed else 0.0,
            "first_answer_ms": {
                "p50": pct(50),
                "p95": pct(95),
                "p99": pct(99),
                "max": round(s[-1] * 1000, 3) if s else 0.0,
            },
            "outcomes": self.outcomes,
        }


async def run_load(
    sim: Simulator, *, calls: int, concurrency: int, scenario: str = "busy"
) -> LoadReport:
    """``calls`` calls of ``scenario``, ``concurrency`` at a time, distinct callers."""
    rep = LoadReport(calls=calls, concurrency=concurrency)
    sem = asyncio.Semaphore(max(1, concurrency))
    base = int(sim.numbers.caller)

    async def one(i: int) -> None:
        async with sem:
            r = await sim.call(scenario, caller=str(base + i))
        if r.ok:
            rep.ok += 1
        else:
            rep.failed += 1
        rep.outcomes[r.outcome] = rep.outcomes.get(r.outcome, 0) + 1
        if r.first_answer is not None:
            rep.latencies.append(r.first_answer)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(calls)))
    rep.elapsed = time.monotonic() - t0
    return rep


# ---------------------------------------------------------------------------------------------
# Reference SCP answers (ARCHITECTURE §4, [ivr].mode = connect) and the demo captures
# ---------------------------------------------------------------------------------------------


class ReferenceCallUser:
    """The ARCHITECTURE §4 terminating call flow in its simplest form, for demo captures only.

    InitialDP for a known subscriber: TC-CONTINUE [AARE] RequestReportBCSMEvent (tBusy and
    tNoAnswer interrupted, tAnswer and tAbandon notify) + Continue; anything else TC-END
    Continue. EventReportBCSM tBusy / tNoAnswer: TC-END Connect to the IVR number. The product's
    call handling is :mod:`scp.flows.calls`; this stands in where it is not installed so the
    captures still show the §4 ladder.
    """

    def __init__(self, cfg: Config, subscribers: set[str]) -> None:
        self.cfg = cfg
        self.subscribers = subscribers
        self._callee: dict[int, str] = {}

    def accepts(self, begin: TcBegin) -> bool:
        from scp.service.dialogue import CALL_CONTROL_ACS

        return begin.application_context in CALL_CONTROL_ACS

    def handle(self, ind: object) -> list[Any]:
        ac = getattr(ind, "application_context", None) or CAP_V2
        if type(ind) is TcBegin:
            called = None
            for c in ind.components:
                if type(c) is Invoke and c.opcode == OP_IDP:
                    idp = cap_codec.decode_arg(c.opcode, c.parameter, ac=ac)
                    n = getattr(idp, "called_party_number", None)
                    called = n.digits if n is not None else None
            cont_code, _ = cap_codec.encode_arg(ops.Continue(), ac=ac)
            if called is not None:
                self._callee[ind.dialogue_id] = called
            if called not in self.subscribers:
                return [
                    TcEnd(
                        dialogue_id=ind.dialogue_id,
                        application_context=ac,
                        components=(Invoke(1, cont_code, None, op_class=4),),
                    )
                ]
            events = (
                ops.BCSMEvent(13, ops.MonitorMode.INTERRUPTED, ops.LegID(2)),
                ops.BCSMEvent(
                    14,
                    ops.MonitorMode.INTERRUPTED,
                    ops.LegID(2),
                    application_timer=self.cfg.call.no_answer_timer,
                ),
                ops.BCSMEvent(15, ops.MonitorMode.NOTIFY_AND_CONTINUE, ops.LegID(2)),
                ops.BCSMEvent(18, ops.MonitorMode.NOTIFY_AND_CONTINUE, ops.LegID(1)),
            )
            code, param = cap_codec.encode_arg(ops.RequestReportBCSMEvent(events), ac=ac)
            return [
                TcContinue(
                    dialogue_id=ind.dialogue_id,
                    application_context=ac,
                    components=(
                        Invoke(1, code, param, op_class=2),
                        Invoke(2, cont_code, None, op_class=4),
                    ),
                )
            ]
        if type(ind) is TcContinue:
            for c in ind.components:
                if type(c) is Invoke and c.opcode == OP_ERB:
                    # The callee rides in originalCalledPartyID for the IVR ([call]
                    # ivr_called_party = "original-called", the default).
                    code, param = cap_codec.encode_arg(
                        ops.Connect(
                            (CalledPartyNumber(self.cfg.ivr.number),),
                            original_called_party_id=RedirectingNumber(
                                self._callee.get(ind.dialogue_id, "")
                            ),
                        ),
                        ac=CAP_V2,
                    )
                    self._callee.pop(ind.dialogue_id, None)
                    return [
                        TcEnd(
                            dialogue_id=ind.dialogue_id,
                            components=(Invoke(3, code, param, op_class=2),),
                        )
                    ]
        return []


class ReferenceMapUser:
    """Acknowledges AlertServiceCentre (TS 29.002 §12.5) and NoteMM-Event (§8.11.2)."""

    def accepts(self, begin: TcBegin) -> bool:
        from scp.codecs.appctx import map_ac_decision

        return (
            begin.application_context is not None
            and map_ac_decision(begin.application_context).accept
        )

    def handle(self, ind: object) -> list[Any]:
        if type(ind) is not TcBegin:
            return []
        # The empty result each operation defines: none for AlertServiceCentre (RETURN
        # RESULT TRUE), an empty NoteMM-Event-Res for NoteMM-Event (its RESULT is mandatory).
        ac = ind.application_context
        comps = tuple(
            ReturnResult(c.invoke_id, c.opcode, map_codec.encode_result(c.opcode, None, ac=ac))
            for c in ind.components
            if type(c) is Invoke and c.opcode in (OP_ASC, OP_NOTE_MM)
        )
        return [
            TcEnd(
                dialogue_id=ind.dialogue_id,
                application_context=ind.application_context,
                components=comps,
            )
        ]


DEMO_CAPTURES: dict[str, str] = {
    "demo-missed-call.pcap": "not-reachable-then-present",
    "busy.pcap": "busy",
    "no-answer.pcap": "no-answer",
    "present-vlr.pcap": "present-vlr",
}
"""Captures of the ARCHITECTURE §4 connect-mode flow: made with the reference users, no database."""

IVR_CAPTURES: dict[str, tuple[str, str]] = {
    "menu-sms-ctr.pcap": ("menu-sms", "ctr"),
    "menu-other-number-ctr.pcap": ("menu-other-number", "ctr"),
    "menu-voicemail-etc.pcap": ("menu-voicemail", "etc"),
    "selfcare-pin-ctr.pcap": ("selfcare-pin", "ctr"),
}
"""Caller menu and self-service captures: need the product's call handling and a database."""


async def _capture_one(
    path: Any, scenario: str, cfg: Config, pool: Any, users: Any, numbers: Numbers
) -> CallResult:
    from scp.adapters.capture import SctpPcapWriter

    w = SctpPcapWriter.open(str(path))
    try:
        conn, _scp = await connect_in_process(cfg, pool=pool, users=users, capture=w)
        try:
            sim = Simulator(conn.peer, cfg, numbers=numbers, timeout=3.0)
            res = await run_scenario(sim, scenario, settle=0.1)
            await asyncio.sleep(0.05)
        finally:
            await conn.close()
    finally:
        w.close()
    return res


async def write_demo_captures(
    out_dir: str,
    cfg: Config | None = None,
    *,
    pool: Any = None,
    numbers: Numbers | None = None,
    reference: bool | None = None,
) -> dict[str, CallResult]:
    """Run each demo scenario against an in-process SCP and write its pcap into ``out_dir``.

    :data:`DEMO_CAPTURES` use :class:`ReferenceCallUser` / :class:`ReferenceMapUser` when
    ``reference`` (default: no ``pool``), else the node's real users. With a ``pool`` (the
    demo subscribers provisioned in it) :data:`IVR_CAPTURES` are written too, against the real
    call handling in the ``[ivr].mode`` each names.
    """
    from pathlib import Path

    from scp.replay import default_users

    cfg = cfg or parse_config("")
    numbers = numbers or Numbers()
    if reference is None:
        reference = pool is None
    users = None
    if reference:
        subs = {numbers.subscriber}

        def users(node: Any) -> list[Any]:
            return [ReferenceCallUser(cfg, subs), ReferenceMapUser()]

    out: dict[str, CallResult] = {}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for fname, scenario in DEMO_CAPTURES.items():
        out[fname] = await _capture_one(Path(out_dir) / fname, scenario, cfg, pool, users, numbers)
    if pool is not None:
        for fname, (scenario, mode) in IVR_CAPTURES.items():
            mcfg = parse_config(f'[ivr]\nmode = "{mode}"\n')
            out[fname] = await _capture_one(
                Path(out_dir) / fname, scenario, mcfg, pool, default_users(pool, mcfg), numbers
            )
    return out


async def _main(target_dir: str, with_db: bool) -> dict[str, CallResult]:
    if not with_db:
        return await write_demo_captures(target_dir)
    from scp.adapters.clock import utcnow
    from scp.cli_tools import _Database
    from scp.service.notifications import local_day
    from scp.tools.demo import seed_subscribers

    cfg = parse_config("")
    db = _Database(False, cfg)  # a scratch database: dropped afterwards
    pool = await db.__aenter__()
    try:
        await pool.execute("TRUNCATE subscriber CASCADE")
        await seed_subscribers(pool, today=local_day(utcnow(), cfg))
        return await write_demo_captures(
            target_dir, cfg, pool=pool, reference=True
        ) | await _ivr_only(target_dir, pool)
    finally:
        await db.__aexit__(None, None, None)


async def _ivr_only(target_dir: str, pool: Any) -> dict[str, CallResult]:
    from pathlib import Path

    from scp.replay import default_users

    out = {}
    for fname, (scenario, mode) in IVR_CAPTURES.items():
        mcfg = parse_config(f'[ivr]\nmode = "{mode}"\n')
        out[fname] = await _capture_one(
            Path(target_dir) / fname, scenario, mcfg, pool, default_users(pool, mcfg), Numbers()
        )
    return out


if __name__ == "__main__":
    # python -m scp.simulate pcaps/ [--with-db]   (regenerates the demo captures; --with-db
    # also the caller-menu ones, on a scratch copy of $MCN_DATABASE_URL / the embedded server)
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    for name, r in asyncio.run(
        _main(args[0] if args else "pcaps", "--with-db" in sys.argv)
    ).items():
        print(f"{name}: {r.as_dict()}")
