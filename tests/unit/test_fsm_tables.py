"""The protocol cores' state machines are their transition tables (scp.core.fsm).

For M3UA (RFC 4666 §4.3.1) and TCAP (Q.774 Annex A) every (state, event) pair is tried on a
real layer: a pair with a row leaves the machine where the row says, a pair without one gets the
protocol's answer (M3UA ERR "Unexpected Message", TCAP P-Abort "unrecognized transaction ID" or
a refused request) and changes nothing. Bytes only; what the layers send is read by tshark.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator

import pytest

from scp.codecs import m3ua as M
from scp.codecs import tcap as T
from scp.codecs.m3ua import (
    AsStateChange,
    DeregistrationResult,
    ErrorCode,
    RegistrationResult,
    RoutingKey,
    StatusType,
    TrafficMode,
)
from scp.codecs.m3ua import MessageType as MT
from scp.core.fsm import IllegalEvent, Transition, TransitionTable
from scp.core.m3ua_asp import (
    CLIENT_ASP_FSM,
    SERVER_ASP_FSM,
    AspEvent,
    AspState,
    M3uaLayer,
    M3uaOutput,
    Transmit,
)
from scp.core.tcap import (
    TSM_RECEIVED,
    TSM_REQUESTED,
    DialogueState,
    TcapLayer,
    TcapLog,
    TcapOutput,
    TsmEvent,
)
from scp.primitives import (
    Invoke,
    MtpTransfer,
    NUnitdata,
    PAbortCause,
    TcBegin,
    TcContinue,
    TcEnd,
    TcPrimitive,
    TcUAbort,
)
from tests import tshark
from tests.unit.tcap_frames import PC_PEER, PC_SCP, PEER, SCP, assert_tshark_clean

# -- the table itself ---------------------------------------------------------------------------


class _S(enum.StrEnum):
    OFF = "off"
    ON = "on"


class _E(enum.StrEnum):
    PRESS = "press"
    KICK = "kick"


def test_lookup_gives_the_row_and_an_illegal_event_is_named() -> None:
    table: TransitionTable[_S, _E, str] = TransitionTable(
        "switch",
        {
            (_S.OFF, _E.PRESS): Transition("turn on", _S.ON),
            (_S.ON, _E.PRESS): Transition("turn off", _S.OFF),
            (_S.ON, _E.KICK): Transition("rattle"),
        },
    )
    assert table.lookup(_S.OFF, _E.PRESS) == Transition("turn on", _S.ON)
    assert table.get(_S.ON, _E.KICK) == Transition("rattle", None)
    assert table.get(_S.OFF, _E.KICK) is None
    with pytest.raises(IllegalEvent, match="switch: kick in off") as e:
        table.lookup(_S.OFF, _E.KICK)
    assert (e.value.machine, e.value.state, e.value.event) == ("switch", _S.OFF, _E.KICK)
    assert table.allows(_S.ON, _E.KICK) and not table.allows(_S.OFF, _E.KICK)
    assert table.events(_S.ON) == {_E.PRESS, _E.KICK}
    assert table.states(_E.PRESS) == {_S.OFF, _S.ON}
    assert [(s, e) for s, e, _ in table.rows()] == [
        (_S.OFF, _E.PRESS),
        (_S.ON, _E.PRESS),
        (_S.ON, _E.KICK),
    ]
    assert len(table) == 3


# -- M3UA ASP (RFC 4666 §4.3.1) -----------------------------------------------------------------

# A minimal SCCP UDT (Q.713 §4.10) so tshark has a clean user part under M3UA DATA.
UDT = bytes.fromhex(
    "09 80 03 07 0b"  # UDT, class 0 + return on error, pointers to called/calling/data
    "04 43 64 00 fe"  # called: PC 100, SSN 254, route on SSN
    "04 43 c8 00 fe"  # calling: PC 200, SSN 254
    "03 01 02 03"  # data
)
XFER = MtpTransfer(opc=200, dpc=100, si=3, ni=2, mp=0, sls=0, data=UDT)

# One well-formed message per received-message event, as a peer would send it.
SAMPLE: dict[AspEvent, bytes] = {
    AspEvent.ASP_UP: M.encode(M.make(MT.ASPUP)),
    AspEvent.ASP_DOWN: M.encode(M.make(MT.ASPDN)),
    AspEvent.ASP_ACTIVE: M.encode(
        M.make(MT.ASPAC, traffic_mode=TrafficMode.LOADSHARE, routing_context=1)
    ),
    AspEvent.ASP_INACTIVE: M.encode(M.make(MT.ASPIA, routing_context=1)),
    AspEvent.ASP_UP_ACK: M.encode(M.make(MT.ASPUP_ACK)),
    AspEvent.ASP_DOWN_ACK: M.encode(M.make(MT.ASPDN_ACK)),
    AspEvent.ASP_ACTIVE_ACK: M.encode(
        M.make(MT.ASPAC_ACK, traffic_mode=TrafficMode.LOADSHARE, routing_context=1)
    ),
    AspEvent.ASP_INACTIVE_ACK: M.encode(M.make(MT.ASPIA_ACK, routing_context=1)),
    AspEvent.DATA: M.encode_data(XFER, 1),
    AspEvent.ERR: M.encode(M.make(MT.ERR, error_code=ErrorCode.PROTOCOL_ERROR)),
    AspEvent.NTFY: M.encode(
        M.make(MT.NTFY, status=(StatusType.AS_STATE_CHANGE, AsStateChange.AS_INACTIVE))
    ),
    AspEvent.BEAT: M.encode(M.make(MT.BEAT, heartbeat_data=b"beat")),
    AspEvent.BEAT_ACK: M.encode(M.make(MT.BEAT_ACK, heartbeat_data=b"beat")),
    AspEvent.DAUD: M.encode(M.make(MT.DAUD, affected_point_codes=[300])),
    AspEvent.DUNA: M.encode(M.make(MT.DUNA, affected_point_codes=[300])),
    AspEvent.DAVA: M.encode(M.make(MT.DAVA, affected_point_codes=[300])),
    AspEvent.SCON: M.encode(M.make(MT.SCON, affected_point_codes=[300])),
    AspEvent.DUPU: M.encode(M.make(MT.DUPU, affected_point_codes=[300], user_cause=(0, 3))),
    AspEvent.DRST: M.encode(M.make(MT.DRST, affected_point_codes=[300])),
    AspEvent.REG_REQ: M.encode(M.make(MT.REG_REQ, routing_keys=[RoutingKey(1, 100)])),
    AspEvent.DEREG_REQ: M.encode(M.make(MT.DEREG_REQ, routing_context=1)),
    AspEvent.REG_RSP: M.encode(
        M.make(MT.REG_RSP, registration_results=[RegistrationResult(1, 0, 1)])
    ),
    AspEvent.DEREG_RSP: M.encode(
        M.make(MT.DEREG_RSP, deregistration_results=[DeregistrationResult(1, 0)])
    ),
}
LOCAL = (AspEvent.ASSOCIATION_LOST, AspEvent.M_ASP_DOWN_REQ, AspEvent.ALTERNATE_ASP_ACTIVE)
# The request a client must have outstanding for each acknowledgement to be its answer.
ACK_OF = {
    AspEvent.ASP_UP_ACK: MT.ASPUP,
    AspEvent.ASP_ACTIVE_ACK: MT.ASPAC,
    AspEvent.ASP_INACTIVE_ACK: MT.ASPIA,
    AspEvent.ASP_DOWN_ACK: MT.ASPDN,
}

M3UA_SENT: list[bytes] = []


@pytest.fixture(scope="module", autouse=True)
def _tshark_reads_what_the_layers_sent() -> Iterator[None]:
    yield
    assert M3UA_SENT
    tshark.assert_clean(tshark.write_pcap(M3UA_SENT), expect_frames=len(M3UA_SENT))


def test_every_m3ua_event_has_a_sample_or_is_local() -> None:
    assert set(SAMPLE) | set(LOCAL) == set(AspEvent)


def _layer(role: str) -> M3uaLayer:
    layer = M3uaLayer(
        role=role,  # type: ignore[arg-type]
        local_pc=100,
        routing_context=1,
        beat_interval=0,
    )
    M3UA_SENT.extend(o.data for o in layer.association_up(1, 0.0) if isinstance(o, Transmit))
    return layer


def _errors(outputs: list[M3uaOutput]) -> list[int | None]:
    sent = [o.data for o in outputs if isinstance(o, Transmit)]
    M3UA_SENT.extend(sent)
    return [m.error_code for m in map(M.decode, sent) if m.msg_type == MT.ERR]


@pytest.mark.parametrize(
    ("role", "table"),
    [("server", SERVER_ASP_FSM), ("client", CLIENT_ASP_FSM)],
    ids=["server", "client"],
)
def test_every_message_in_every_asp_state_follows_the_table(
    role: str, table: TransitionTable[AspState, AspEvent, object]
) -> None:
    for state, event in itertools.product(AspState, SAMPLE):
        layer = _layer(role)
        asp = layer._asps[1]
        asp.state = state
        if event in ACK_OF:
            asp.pending = ACK_OF[event]
        errors = _errors(layer.receive(1, SAMPLE[event], 1.0))
        row = table.get(state, event)
        where = f"{role}: {event} in {state}"
        if row is None:
            assert errors == [ErrorCode.UNEXPECTED_MESSAGE], where
            assert asp.state is state, where
        else:
            assert ErrorCode.UNEXPECTED_MESSAGE not in errors or (
                state is AspState.ACTIVE and event is AspEvent.ASP_UP  # §4.3.4.1: flagged
            ), where
            assert layer.asp_state(1) is (row.next or state), where


@pytest.mark.parametrize("table", [SERVER_ASP_FSM, CLIENT_ASP_FSM], ids=["server", "client"])
def test_local_events_move_the_asp_as_the_table_says(
    table: TransitionTable[AspState, AspEvent, object],
) -> None:
    layer = _layer("server" if table is SERVER_ASP_FSM else "client")
    asp = layer._asps[1]
    for state, event in itertools.product(AspState, LOCAL):
        asp.state = state
        row = table.get(state, event)
        if row is None:
            with pytest.raises(IllegalEvent):
                layer._transit(asp, event, [])
        else:
            layer._transit(asp, event, [])
            assert asp.state is (row.next or state)


# -- TCAP transaction state machine (Q.774 Annex A) ---------------------------------------------

CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)
IDP = bytes.fromhex("300380012a")  # InitialDPArg {serviceKey 42}
PEER_TID = b"\x02\x00\x00\x07"
TCAP_SENT: list[bytes] = []


@pytest.fixture(scope="module", autouse=True)
def _tshark_reads_the_tcap_sent() -> Iterator[None]:
    yield
    assert TCAP_SENT
    assert_tshark_clean(TCAP_SENT)


def _from_peer(data: bytes) -> NUnitdata:
    return NUnitdata(SCP, PEER, data, opc=PC_PEER, dpc=PC_SCP)


def _sent(outputs: list[TcapOutput]) -> list[NUnitdata]:
    nu = [o for o in outputs if isinstance(o, NUnitdata)]
    TCAP_SENT.extend(o.data for o in nu)
    return nu


def _in_state(state: DialogueState) -> tuple[TcapLayer, int]:
    """A TCAP layer with one transaction in ``state`` (idle: none); its dialogue ID."""
    layer = TcapLayer(worker_id=1)
    if state is DialogueState.IDLE:
        return layer, (1 << 24) | 0xABCDEF
    if state is DialogueState.INITIATION_SENT:
        did = layer.new_dialogue_id()
        _sent(layer.handle_tc(TcBegin(did, PEER, SCP, CAP_V2, None, (Invoke(1, 0, IDP),)), 0.0))
        return layer, did
    begin = T.encode_message(
        T.MessageType.BEGIN,
        otid=PEER_TID,
        dialogue_portion=T.encode_dialogue_portion(T.Aarq(CAP_V2)),
        component_portion=T.encode_components([Invoke(1, 0, IDP, op_class=2)]),
    )
    (ind,) = [o for o in layer.handle_n_unitdata(_from_peer(begin), 0.0) if type(o) is TcBegin]
    if state is DialogueState.ACTIVE:
        _sent(layer.handle_tc(TcContinue(ind.dialogue_id), 0.0))
    assert layer.dialogue_state(ind.dialogue_id) is state
    return layer, ind.dialogue_id


def _received(event: TsmEvent, state: DialogueState, did: int) -> bytes:
    dtid = did.to_bytes(4, "big")
    if event is TsmEvent.CONTINUE_RECEIVED:
        # The first answer to our Begin accepts its AARQ (Q.774 §3.2.2.1).
        portion = (
            T.encode_dialogue_portion(T.Aare(CAP_V2))
            if state is DialogueState.INITIATION_SENT
            else b""
        )
        return T.encode_message(
            T.MessageType.CONTINUE, otid=PEER_TID, dtid=dtid, dialogue_portion=portion
        )
    if event is TsmEvent.END_RECEIVED:
        return T.encode_message(T.MessageType.END, dtid=dtid)
    assert event is TsmEvent.ABORT_RECEIVED
    return T.encode_message(
        T.MessageType.ABORT, dtid=dtid, p_abort_cause=PAbortCause.RESOURCE_LIMITATION
    )


def _requested(event: TsmEvent, did: int) -> TcPrimitive:
    return {
        TsmEvent.TC_BEGIN_REQ: TcBegin(did, PEER, SCP, CAP_V2, None, (Invoke(1, 0, IDP),)),
        TsmEvent.TC_CONTINUE_REQ: TcContinue(did),
        TsmEvent.TC_END_REQ: TcEnd(did),
        TsmEvent.TC_END_PREARRANGED_REQ: TcEnd(did, prearranged=True),
        TsmEvent.TC_U_ABORT_REQ: TcUAbort(did),
    }[event]


RECEIVED = (TsmEvent.CONTINUE_RECEIVED, TsmEvent.END_RECEIVED, TsmEvent.ABORT_RECEIVED)
REQUESTED = tuple(e for e in TsmEvent if e.name.startswith("TC_"))


def test_the_two_halves_cover_every_event() -> None:
    assert {TsmEvent.BEGIN_RECEIVED, *RECEIVED, *REQUESTED} == set(TsmEvent)
    assert {e for _, e, _ in TSM_RECEIVED.rows()} <= {TsmEvent.BEGIN_RECEIVED, *RECEIVED}
    assert {e for _, e, _ in TSM_REQUESTED.rows()} <= set(REQUESTED)


def test_a_begin_received_creates_a_transaction_in_initiation_received() -> None:
    layer, _ = _in_state(DialogueState.IDLE)
    begin = T.encode_message(T.MessageType.BEGIN, otid=PEER_TID)
    (ind,) = [o for o in layer.handle_n_unitdata(_from_peer(begin), 0.0) if type(o) is TcBegin]
    row = TSM_RECEIVED.lookup(DialogueState.IDLE, TsmEvent.BEGIN_RECEIVED)
    assert layer.dialogue_state(ind.dialogue_id) is row.next is DialogueState.INITIATION_RECEIVED


@pytest.mark.parametrize("state", list(DialogueState), ids=str)
def test_every_received_message_follows_the_tsm(state: DialogueState) -> None:
    for event in RECEIVED:
        layer, did = _in_state(state)
        out = layer.handle_n_unitdata(_from_peer(_received(event, state, did)), 1.0)
        sent = _sent(out)
        row = TSM_RECEIVED.get(state, event)
        where = f"{event} in {state}"
        if row is None:  # Q.774 §3.2.1.1.5: P-Abort to the sender if it can be answered
            assert layer.dialogue_state(did) is state, where
            if event is TsmEvent.CONTINUE_RECEIVED:
                (abort,) = [T.decode(n.data) for n in sent]
                assert abort.p_abort_cause == PAbortCause.UNRECOGNIZED_TRANSACTION_ID, where
            assert any(isinstance(o, TcapLog) and o.event == "unknown_dtid" for o in out), where
        else:
            assert layer.dialogue_state(did) is row.next, where


@pytest.mark.parametrize("state", list(DialogueState), ids=str)
def test_every_tc_request_follows_the_tsm(state: DialogueState) -> None:
    for event in REQUESTED:
        layer, did = _in_state(state)
        out = layer.handle_tc(_requested(event, did), 1.0)
        _sent(out)
        row = TSM_REQUESTED.get(state, event)
        where = f"{event} in {state}"
        if row is None:
            assert layer.dialogue_state(did) is state, where
            (log,) = [o for o in out if isinstance(o, TcapLog)]
            assert log.event in ("illegal_request", "unknown_dialogue"), where
        else:
            assert layer.dialogue_state(did) is row.next, where
            assert not [o for o in out if isinstance(o, TcapLog)], where
