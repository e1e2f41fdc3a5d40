"""The network elements the simulator plays toward the SCP: MSC / gsmSSF, gsmSRF (media server),
HLR and VLR, each reacting to what the SCP asks as the real element would (ARCHITECTURE §4).

* InitialDP (TS 29.078 §6.1.2.1, TAA = termAttemptAuthorized) opens each call;
  RequestReportBCSMEvent arms detection points and the switch reports the one the scenario
  meets: tBusy with busyCause 17 (user busy) or 20 (subscriber absent), or tNoAnswer.
* ConnectToResource / EstablishTemporaryConnection put the caller on an SRF: PlayAnnouncement
  is answered with SpecializedResourceReport when asked, PromptAndCollectUserInformation with
  the scenario's digits (ReceivedInformation); after ETC the media server opens its own dialogue
  with AssistRequestInstructions(correlationID).
* As HLR: SendRoutingInfoForSM (TS 29.002 §12.3) answers absentSubscriberSM until the
  subscriber is present, then the IMSI; ReportSM-DeliveryStatus (§12.4) is acknowledged;
  AnyTimeInterrogation answers the subscriber state. Presence is announced with
  AlertServiceCentre (§12.5) or, as the VLR, NoteMM-Event (§8.11.2).

:func:`run_scenario` plays one named scenario and judges it
(:func:`scp.tools.simulate.scenarios.judge`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from scp.codecs import cap as cap_codec
from scp.codecs import inap as inap_codec
from scp.codecs import map as map_codec
from scp.codecs import ops
from scp.codecs.appctx import Protocol, lookup
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
)
from scp.codecs.opcodes import CapOpcode, MapErrorCode, MapOpcode
from scp.config import Config
from scp.primitives import (
    ApplicationContext,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcUAbort,
)
from scp.tools.simulate.peer import SimPeer
from scp.tools.simulate.scenarios import (
    SCENARIO_DIGITS,
    SCENARIOS,
    CallResult,
    Numbers,
    judge,
    records_floor,
    records_since,
)

__all__ = [
    "Simulator",
    "run_scenario",
]

CAP_V2: ApplicationContext = (0, 4, 0, 0, 1, 0, 50, 1)
CAP_V2_ASSIST: ApplicationContext = (0, 4, 0, 0, 1, 0, 51, 1)
MAP_SHORT_MSG_ALERT_V2: ApplicationContext = (0, 4, 0, 0, 1, 0, 23, 2)
MAP_MM_EVENT_REPORTING_V3: ApplicationContext = (0, 4, 0, 0, 1, 0, 42, 3)

SSN_MSC = 146  # gsmSSF and gsmSRF (TS 23.003 §8.1: CAP)
SSN_HLR = 6
SSN_VLR = 7

CAUSE_USER_BUSY = 17
CAUSE_ABSENT = 20


def _name(protocol: str, code: Any) -> str:
    table = (cap_codec.CODEC if protocol == "cap" else map_codec.CODEC).opcode_names
    return table.get(code, str(code)) if isinstance(code, int) else str(code)


class Simulator:
    """The switch, SRF, HLR and VLR behaviour over one :class:`SimPeer`.

    ``cfg`` is the SCP's configuration (its SSNs, service keys, GT); ``timeout`` bounds each
    wait for the SCP. ``cap_ac`` is the call dialogue's context: an INAP CS-1 one (ETS 300
    374-1 §6.5) makes the switch an INAP SSP (INAP syntax, the SCP's INAP SSN, no IMSI).
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
        known = lookup(cap_ac)
        self.inap = known is not None and known.protocol is Protocol.INAP
        self.codec = inap_codec.CODEC if self.inap else cap_codec.CODEC
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
                arg = map_codec.CODEC.decode_arg(c.opcode, c.parameter, ac=ac)
            except DecodeError:
                arg = None
            self.hlr_log.append(_name("map", c.opcode))
            msisdn = getattr(getattr(arg, "msisdn", None), "digits", None)
            res: Any
            if c.opcode == MapOpcode.SEND_ROUTING_INFO_FOR_SM:
                if msisdn in self.present:
                    res = ops.RoutingInfoForSM(
                        imsi=self.numbers.imsi, network_node_number=AddressString(self.numbers.msc)
                    )
                    answers.append(
                        ReturnResult(
                            c.invoke_id,
                            c.opcode,
                            map_codec.CODEC.encode_result(c.opcode, res, ac=ac),
                        )
                    )
                else:
                    err = ops.OperationError(
                        MapErrorCode.ABSENT_SUBSCRIBER_SM,
                        MapErrorCode.ABSENT_SUBSCRIBER_SM.spec_name,
                        None,
                    )
                    code, param = map_codec.CODEC.encode_error(err, ac=ac)
                    answers.append(ReturnError(c.invoke_id, code, param))
            elif c.opcode == MapOpcode.ANY_TIME_INTERROGATION:
                state = "assumedIdle" if msisdn in self.present else "netDetNotReachable"
                res = ops.AnyTimeInterrogationResult(
                    subscriber_state=state,
                    not_reachable_reason=None if state == "assumedIdle" else 1,
                )
                try:
                    param = map_codec.CODEC.encode_result(c.opcode, res, ac=ac)
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
        code, param = map_codec.CODEC.encode_arg(arg, ac=MAP_SHORT_MSG_ALERT_V2)
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
        code, param = map_codec.CODEC.encode_arg(arg, ac=MAP_MM_EVENT_REPORTING_V3)
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
        script = list(digits if digits is not None else SCENARIO_DIGITS.get(scenario, ["1"]))
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
            imsi=n.imsi if not (selfcare or self.inap) else None,
            called_party_bcd_number=None,
        )
        code, param = self.codec.encode_arg(idp, ac=self.cap_ac)
        did = self.peer.begin(
            called_ssn=self.cfg.sccp.ssn.inap if self.inap else self.cfg.sccp.ssn.cap,
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
                op = self.codec.decode_arg(c.opcode, c.parameter, ac=self.cap_ac)
                if c.opcode == CapOpcode.REQUEST_REPORT_BCSM_EVENT:
                    st.armed |= {e.event_type_bcsm for e in op.bcsm_events}  # type: ignore[attr-defined]
                elif c.opcode == CapOpcode.CONNECT:
                    dra = op.destination_routing_address  # type: ignore[attr-defined]
                    final = f"connect {dra[0].digits if dra else '?'}"
                elif c.opcode == CapOpcode.RELEASE_CALL:
                    final = f"release cause {op.cause.value}"  # type: ignore[attr-defined]
                elif c.opcode == CapOpcode.CONTINUE:
                    final = final or "continue"
                elif c.opcode == CapOpcode.CONNECT_TO_RESOURCE:
                    st.on_srf = True
                elif c.opcode == CapOpcode.PLAY_ANNOUNCEMENT:
                    if op.request_announcement_complete:  # type: ignore[attr-defined]
                        reply.append(self._srr())
                elif c.opcode == CapOpcode.PROMPT_AND_COLLECT_USER_INFORMATION:
                    reply.append(self._digits_result(c, st))
                elif c.opcode == CapOpcode.ESTABLISH_TEMPORARY_CONNECTION:
                    corr = op.correlation_id  # type: ignore[attr-defined]
                    assist_task = asyncio.get_running_loop().create_task(
                        self._assist(corr, st, res)
                    )
                elif c.opcode == CapOpcode.DISCONNECT_FORWARD_CONNECTION:
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
        code, param = self.codec.encode_arg(erb, ac=self.cap_ac)
        return Invoke(self._iid(), code, param, op_class=4)

    def _srr(self) -> Invoke:
        code, param = self.codec.encode_arg(ops.SpecializedResourceReport(), ac=self.cap_ac)
        return Invoke(self._iid(), code, param, op_class=4)

    def _digits_result(self, c: Invoke, st: _CallState) -> ReturnResult:
        st.prompts += 1
        d = st.script.pop(0) if st.script else "0"
        ri = ops.ReceivedInformation(GenericDigits(d))
        return ReturnResult(
            c.invoke_id, c.opcode, self.codec.encode_result(c.opcode, ri, ac=self.cap_ac)
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
        code, param = cap_codec.CODEC.encode_arg(ari, ac=CAP_V2_ASSIST)
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
                op = cap_codec.CODEC.decode_arg(c.opcode, c.parameter, ac=CAP_V2_ASSIST)
                if c.opcode == CapOpcode.PLAY_ANNOUNCEMENT and op.request_announcement_complete:  # type: ignore[attr-defined]
                    reply.append(self._srr())
                elif c.opcode == CapOpcode.PROMPT_AND_COLLECT_USER_INFORMATION:
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
