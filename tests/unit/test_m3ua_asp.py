"""ASP/AS state machines of RFC 4666 §4.3 with client and server layers wired back to back.

No sockets: every Transmit one layer emits is handed to the other's ``receive``. Everything our
layers put on the wire in these tests is also decoded by tshark, which must find it clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scp.codecs import m3ua as M
from scp.codecs.m3ua import ErrorCode, RegistrationStatus, RoutingKey
from scp.codecs.m3ua import MessageType as MT
from scp.core.m3ua_asp import (
    AspState,
    AspStateChanged,
    AsState,
    CloseAssociation,
    Deliver,
    Dropped,
    M3uaLayer,
    M3uaOutput,
    MtpStatus,
    OpcRefused,
    Transmit,
    canonical_address,
)
from scp.primitives import MtpTransfer
from tests import tshark

SERVER = "server"


class Net:
    """One server layer and client layers 1..n; association i joins client i to the server."""

    def __init__(
        self,
        n_clients: int = 1,
        *,
        server: dict[str, Any] | None = None,
        client: dict[str, Any] | None = None,
        addresses: dict[int, str] | None = None,
    ) -> None:
        self.now = 0.0
        self.addresses = addresses or {}  # association -> the client's address, as seen by TCP
        skw: dict[str, Any] = dict(role="server", local_pc=100, routing_context=1, beat_interval=0)
        skw.update(server or {})
        self.server = M3uaLayer(**skw)
        self.clients: dict[int, M3uaLayer] = {}
        for i in range(1, n_clients + 1):
            ckw: dict[str, Any] = dict(
                role="client", local_pc=200, routing_context=1, asp_identifier=i, beat_interval=0
            )
            ckw.update(client or {})
            self.clients[i] = M3uaLayer(**ckw)
        self.wire: list[bytes] = []  # everything our layers sent, for tshark
        self.sent: list[tuple[object, M.M3uaMessage]] = []  # (sender, decoded message)
        self.events: dict[object, list[M3uaOutput]] = {SERVER: [], **{i: [] for i in self.clients}}
        self.deaf: set[object] = set()  # sides whose incoming messages are lost
        self.connected: set[int] = set()

    def layer(self, side: object) -> M3uaLayer:
        return self.server if side == SERVER else self.clients[side]  # type: ignore[index]

    def run(self, side: object, outputs: list[M3uaOutput]) -> None:
        queue = [(side, o) for o in outputs]
        while queue:
            src, o = queue.pop(0)
            if isinstance(o, Transmit):
                self.wire.append(o.data)
                self.sent.append((src, M.decode(o.data)))
                dst: object = o.assoc_id if src == SERVER else SERVER
                if o.assoc_id not in self.connected or dst in self.deaf:
                    continue
                queue += [
                    (dst, x)
                    for x in self.layer(dst).receive(o.assoc_id, o.data, self.now, o.stream)
                ]
            else:
                self.events[src].append(o)

    def connect(self, i: int) -> None:
        self.connected.add(i)
        self.run(SERVER, self.server.association_up(i, self.now, self.addresses.get(i)))
        self.run(i, self.clients[i].association_up(i, self.now))

    def disconnect(self, i: int) -> None:
        self.connected.discard(i)
        self.run(SERVER, self.server.association_down(i, self.now))
        self.run(i, self.clients[i].association_down(i, self.now))

    def inject(self, side: object, assoc_id: int, data: bytes) -> list[M3uaOutput]:
        """Raw bytes into ``side`` as if from its peer; return what it produced."""
        outs = self.layer(side).receive(assoc_id, data, self.now)
        self.events[side].clear()
        self.run(side, outs)
        return outs

    def advance(self, dt: float) -> None:
        self.now += dt
        self.run(SERVER, self.server.handle_timer(self.now))
        for i, c in self.clients.items():
            self.run(i, c.handle_timer(self.now))

    def names(self, sender: object | None = None) -> list[str]:
        return [m.name for s, m in self.sent if sender is None or s == sender]

    def clear(self) -> None:
        self.sent.clear()
        for e in self.events.values():
            e.clear()


@pytest.fixture(scope="module")
def emitted() -> Iterator[list[bytes]]:
    """Every message the layers of this module sent; tshark reads them all once at the end."""
    wire: list[bytes] = []
    yield wire
    assert wire
    tshark.assert_clean(tshark.write_pcap(wire), expect_frames=len(wire))


@pytest.fixture
def nets(emitted: list[bytes]) -> Iterator[list[Net]]:
    """Nets built by a test; what they sent goes to the module's tshark check."""
    made: list[Net] = []
    yield made
    emitted += [b for n in made for b in n.wire]


def make_net(nets: list[Net], *args: Any, **kw: Any) -> Net:
    n = Net(*args, **kw)
    nets.append(n)
    return n


# A minimal SCCP UDT (Q.713 §4.10) so tshark has a clean user part to decode under M3UA DATA.
UDT = bytes.fromhex(
    "09 80 03 07 0b"  # UDT, class 0 + return on error, pointers to called/calling/data
    "04 43 64 00 fe"  # called: PC 100, SSN 254, route on SSN
    "04 43 c8 00 fe"  # calling: PC 200, SSN 254
    "03 01 02 03"  # data
)


def xfer(sls: int = 0, opc: int = 200, dpc: int = 100, data: bytes = UDT) -> MtpTransfer:
    return MtpTransfer(opc=opc, dpc=dpc, si=3, ni=2, mp=0, sls=sls, data=data)


def errs(outs: list[M3uaOutput]) -> list[M.M3uaMessage]:
    return [M.decode(o.data) for o in outs if isinstance(o, Transmit) and o.data[2:4] == b"\0\0"]


def routes(net: Net, dpc: int) -> set[int]:
    """The associations the server's answers to ``dpc`` leave over, across every SLS."""
    layer, now = net.server, net.now
    outs = [o for s in range(16) for o in layer.send_transfer(xfer(sls=s, dpc=dpc), now)]
    assert all(isinstance(o, Transmit) for o in outs), outs
    return {o.assoc_id for o in outs if isinstance(o, Transmit)}


def active(nets: list[Net], n: int = 1, **kw: Any) -> Net:
    net = make_net(nets, n, **kw)
    for i in net.clients:
        net.connect(i)
    net.clear()
    return net


# -- handshake and DATA ----------------------------------------------------------------------


def test_handshake(nets: list[Net]) -> None:
    net = make_net(nets)
    net.connect(1)
    assert net.names() == ["ASPUP", "ASPUP_ACK", "NTFY", "ASPAC", "ASPAC_ACK", "NTFY"]
    ntfys = [m.status for s, m in net.sent if m.name == "NTFY"]
    assert ntfys == [(1, 2), (1, 3)]  # AS-INACTIVE, then AS-ACTIVE
    aspup = net.sent[0][1]
    aspac = net.sent[3][1]
    assert aspup.asp_identifier == 1
    assert (aspac.traffic_mode, aspac.routing_contexts) == (2, (1,))
    assert net.clients[1].asp_state(1) is AspState.ACTIVE and net.clients[1].is_active
    assert net.server.asp_state(1) is AspState.ACTIVE and net.server.as_state is AsState.ACTIVE
    assert AspStateChanged(1, AspState.INACTIVE, AspState.ACTIVE) in net.events[1]
    assert net.clients[1].next_deadline() is None  # T(ack) stopped, beats off


def test_data_both_ways(nets: list[Net]) -> None:
    net = active(nets)
    up = xfer(sls=5, opc=200, dpc=100)
    net.run(1, net.clients[1].send_transfer(up, net.now))
    assert net.events[SERVER] == [Deliver(up, 1)]
    down = xfer(sls=18, opc=100, dpc=200)
    outs = net.server.send_transfer(down, net.now)
    assert [type(o) for o in outs] == [Transmit] and outs[0].stream == 1 + 18 % 16  # type: ignore[union-attr]
    net.run(SERVER, outs)
    assert net.events[1] == [Deliver(down, 1)]
    data = M.decode_data(outs[0].data)  # type: ignore[union-attr]
    assert data.routing_context == 1


def test_send_without_active_asp_is_dropped(nets: list[Net]) -> None:
    net = make_net(nets)
    outs = net.server.send_transfer(xfer(), 0.0)
    assert len(outs) == 1 and isinstance(outs[0], Dropped)
    assert isinstance(net.clients[1].send_transfer(xfer(), 0.0)[0], Dropped)


def test_loadshare_across_two_asps(nets: list[Net]) -> None:
    net = active(nets, 2)
    assert net.server.as_state is AsState.ACTIVE
    targets = {}
    for sls in range(16):
        (o,) = net.server.send_transfer(xfer(sls=sls, opc=100, dpc=200), net.now)
        assert isinstance(o, Transmit)
        targets[sls] = o.assoc_id
    assert set(targets.values()) == {1, 2}
    assert all(targets[s] == targets[s % 2] for s in range(16))  # same SLS, same ASP


def test_management_on_a_data_stream_gets_err_invalid_stream(nets: list[Net]) -> None:
    net = active(nets)
    beat = M.encode(M.make(M.MessageType.BEAT, heartbeat_data=b"hb"))
    outs = net.server.receive(1, beat, net.now, stream=3)
    (err,) = [M.decode(o.data) for o in outs if isinstance(o, Transmit)]
    assert err.msg_type == M.MessageType.ERR and err.error_code == 0x09
    assert net.server.asp_state(1) is AspState.ACTIVE  # the association stays up
    assert any(isinstance(o, Transmit) for o in net.server.receive(1, beat, net.now, stream=0))


def test_answers_go_back_over_the_association_that_reaches_the_switch(nets: list[Net]) -> None:
    """Two switches (PC 201 and 202) are ASPs of our AS: an answer to 201 never leaves via 202,
    whatever its SLS; a point code never seen still loadshares."""
    net = active(nets, 2)
    net.run(1, net.clients[1].send_transfer(xfer(sls=0, opc=201, dpc=100), net.now))
    net.run(2, net.clients[2].send_transfer(xfer(sls=0, opc=202, dpc=100), net.now))
    assert routes(net, 201) == {1} and routes(net, 202) == {2}
    assert routes(net, 300) == {1, 2}
    # The switch's association goes: its answers fall back to the AS-wide choice.
    net.disconnect(1)
    (o,) = net.server.send_transfer(xfer(sls=0, opc=100, dpc=201), net.now)
    assert isinstance(o, Transmit) and o.assoc_id == 2


def test_broadcast_reaches_every_active_asp(nets: list[Net]) -> None:
    net = active(
        nets, 2, server={"traffic_mode": "broadcast"}, client={"traffic_mode": "broadcast"}
    )
    outs = net.server.send_transfer(xfer(opc=100, dpc=200), net.now)
    assert sorted(o.assoc_id for o in outs if isinstance(o, Transmit)) == [1, 2]


def test_override_takeover_and_failover(nets: list[Net]) -> None:
    net = make_net(
        nets, 2, server={"traffic_mode": "override"}, client={"traffic_mode": "override"}
    )
    net.connect(1)
    net.connect(2)  # the newcomer takes over; the old ASP hears "Alternate ASP Active"
    assert net.server.asp_state(2) is AspState.ACTIVE
    assert net.server.asp_state(1) is AspState.INACTIVE
    assert net.clients[1].asp_state(1) is AspState.INACTIVE
    assert any(m.status == (2, 2) for s, m in net.sent if s == SERVER)
    (o,) = net.server.send_transfer(xfer(opc=100, dpc=200), net.now)
    assert isinstance(o, Transmit) and o.assoc_id == 2
    # The active ASP is lost: AS-PENDING, the standby is told and activates within T(r).
    net.clear()
    net.connected.discard(2)
    net.deaf.add(1)  # hold back the standby so DATA must wait in the T(r) queue
    net.run(SERVER, net.server.association_down(2, net.now))
    assert net.server.as_state is AsState.PENDING
    assert net.server.send_transfer(xfer(opc=100, dpc=200), net.now) == []  # queued
    net.deaf.discard(1)
    net.clear()
    assert net.sent == []  # the NTFY AS-PENDING went to the deaf standby: replay it
    ntfy = M.encode(M.make(MT.NTFY, status=(1, 4), routing_context=1))
    net.run(1, net.clients[1].receive(1, ntfy, net.now))
    assert net.names() == ["ASPAC", "ASPAC_ACK", "NTFY", "DATA"]  # queued DATA flushed
    assert net.server.as_state is AsState.ACTIVE
    assert [type(e) for e in net.events[1]].count(Deliver) == 1


def test_recovery_timer_expiry_discards_queue(nets: list[Net]) -> None:
    net = active(nets, 1, server={"recovery_timeout": 2.0})
    # An ASPIA the client layer did not ask for (its Ack is ignored there): T(r) runs.
    net.run(SERVER, net.server.receive(1, M.encode(M.make(MT.ASPIA, routing_context=1)), net.now))
    assert net.server.as_state is AsState.PENDING
    assert net.server.send_transfer(xfer(opc=100, dpc=200), net.now) == []
    net.clear()
    net.advance(2.0)
    assert net.server.as_state is AsState.INACTIVE
    assert any(isinstance(e, Dropped) and "T(r)" in e.reason for e in net.events[SERVER])


# -- heartbeat -------------------------------------------------------------------------------


def test_beat_and_beat_ack(nets: list[Net]) -> None:
    net = active(nets, 1, client={"beat_interval": 30.0, "beat_timeout": 10.0})
    assert net.clients[1].next_deadline() == 30.0
    net.advance(30.0)
    assert net.names() == ["BEAT", "BEAT_ACK"]
    beat, ack = net.sent[0][1], net.sent[1][1]
    assert ack.heartbeat_data == beat.heartbeat_data is not None
    net.advance(10.0)  # the Ack came: no timeout
    assert not any(isinstance(e, CloseAssociation) for e in net.events[1])
    assert net.clients[1].asp_state(1) is AspState.ACTIVE


def test_beat_timeout_closes_association(nets: list[Net]) -> None:
    net = active(nets, 1, server={"beat_interval": 5.0, "beat_timeout": 2.0})
    net.deaf.add(1)
    net.advance(5.0)
    assert net.names() == ["BEAT"]
    net.advance(2.0)
    ev = net.events[SERVER]
    assert CloseAssociation(1, "M3UA heartbeat timeout (no BEAT Ack)") in ev
    assert AspStateChanged(1, AspState.ACTIVE, AspState.DOWN) in ev
    assert net.server.asp_state(1) is AspState.DOWN
    assert net.server.as_state is AsState.PENDING
    assert net.server.association_down(1, net.now) == []  # the adapter's close is a no-op now


def test_peer_beat_answered_in_any_state(nets: list[Net]) -> None:
    net = make_net(nets)
    net.run(SERVER, net.server.association_up(7, 0.0))
    outs = net.server.receive(7, M.encode(M.make(MT.BEAT, heartbeat_data=b"hello")), 0.0)
    (o,) = outs
    assert isinstance(o, Transmit)
    assert M.decode(o.data) == M.make(MT.BEAT_ACK, heartbeat_data=b"hello")
    net.wire.append(o.data)


# -- errors ----------------------------------------------------------------------------------

ERROR_CASES = [
    ("invalid version", "0200030100000008", ErrorCode.INVALID_VERSION),
    ("unsupported message class", "0100070100000008", ErrorCode.UNSUPPORTED_MESSAGE_CLASS),
    ("unsupported message type", "0100040900000008", ErrorCode.UNSUPPORTED_MESSAGE_TYPE),
    ("protocol error: length field", "0100030100000010", ErrorCode.PROTOCOL_ERROR),
    (
        "parameter field error",
        "0100030300000010 00090002 00000000",
        ErrorCode.PARAMETER_FIELD_ERROR,
    ),
    ("unexpected parameter", "0100030100000010 0006000800000001", ErrorCode.UNEXPECTED_PARAMETER),
    ("missing parameter", "0100010100000008", ErrorCode.MISSING_PARAMETER),
    (
        "invalid parameter value... traffic mode",
        "0100040100000010 000b000800000001",
        ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE,
    ),
    (
        "invalid parameter value",
        "0100040100000010 000b000800000009",
        ErrorCode.INVALID_PARAMETER_VALUE,
    ),
    ("ASPUP_ACK to a server", "0100030400000008", ErrorCode.UNEXPECTED_MESSAGE),
]


@pytest.mark.parametrize(("name", "wire", "code"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_message_gets_err_and_association_stays(
    nets: list[Net], name: str, wire: str, code: ErrorCode
) -> None:
    net = active(nets)
    bad = bytes.fromhex(wire.replace(" ", ""))
    outs = net.inject(SERVER, 1, bad)
    (err,) = errs(outs)
    assert err.error_code == code
    assert err.diagnostic_information == bad[:40]
    assert not any(isinstance(o, CloseAssociation) for o in outs)
    assert net.server.asp_state(1) is AspState.ACTIVE
    net.clear()
    net.run(1, net.clients[1].send_transfer(xfer(), net.now))
    assert [type(e) for e in net.events[SERVER]] == [Deliver]


def test_data_before_active_is_unexpected_message(nets: list[Net]) -> None:
    net = make_net(nets)
    net.run(SERVER, net.server.association_up(1, 0.0))
    data = M.encode_data(xfer(), 1)
    (err,) = errs(net.inject(SERVER, 1, data))
    assert err.error_code == ErrorCode.UNEXPECTED_MESSAGE
    net.inject(SERVER, 1, M.encode(M.make(MT.ASPUP)))
    (err,) = errs(net.inject(SERVER, 1, data))  # ASP-INACTIVE: still unexpected
    assert err.error_code == ErrorCode.UNEXPECTED_MESSAGE
    assert not any(isinstance(e, Deliver) for e in net.events[SERVER])


def test_data_with_wrong_routing_context(nets: list[Net]) -> None:
    net = active(nets)
    outs = net.inject(SERVER, 1, M.encode_data(xfer(), 9))
    (err,) = errs(outs)
    assert (err.error_code, err.routing_contexts) == (ErrorCode.INVALID_ROUTING_CONTEXT, (9,))
    assert not any(isinstance(o, Deliver) for o in outs)
    # Without a Routing Context the single AS is implied (RFC 4666 §3.3.1).
    assert [type(o) for o in net.server.receive(1, M.encode_data(xfer()), net.now)] == [Deliver]


def test_aspac_with_other_routing_context(nets: list[Net]) -> None:
    net = make_net(nets, client={"routing_context": 5})
    net.connect(1)
    errors = [m for s, m in net.sent if s == SERVER and m.name == "ERR"]
    assert errors and errors[0].error_code == ErrorCode.INVALID_ROUTING_CONTEXT
    assert errors[0].routing_contexts == (5,)
    assert net.server.asp_state(1) is AspState.INACTIVE
    assert net.clients[1].asp_state(1) is AspState.INACTIVE
    assert any(
        isinstance(e, Dropped) and "INVALID_ROUTING_CONTEXT" in e.reason for e in net.events[1]
    )
    net.clear()
    net.advance(2.0)  # the client retries ASPAC on T(ack)
    assert net.names(1) == ["ASPAC"]


def test_err_is_never_answered(nets: list[Net]) -> None:
    net = active(nets)
    outs = net.inject(SERVER, 1, M.encode(M.make(MT.ERR, error_code=6)))
    assert not errs(outs) and any(isinstance(o, Dropped) for o in outs)
    outs = net.inject(SERVER, 1, bytes.fromhex("0100000000000008"))  # malformed ERR
    assert not errs(outs)


def test_aspup_in_active_state(nets: list[Net]) -> None:
    net = active(nets)
    outs = net.inject(SERVER, 1, M.encode(M.make(MT.ASPUP, asp_identifier=1)))
    msgs = [M.decode(o.data) for o in outs if isinstance(o, Transmit)]
    assert [m.name for m in msgs][:2] == ["ASPUP_ACK", "ERR"]
    assert msgs[1].error_code == ErrorCode.UNEXPECTED_MESSAGE
    assert net.server.asp_state(1) is AspState.INACTIVE


def test_message_on_unknown_association_is_dropped(nets: list[Net]) -> None:
    net = make_net(nets)
    (o,) = net.server.receive(42, M.encode(M.make(MT.ASPUP)), 0.0)
    assert isinstance(o, Dropped)


# -- SSNM ------------------------------------------------------------------------------------


def test_daud_answered_with_dava_and_duna(nets: list[Net]) -> None:
    net = active(nets)
    daud = M.make(MT.DAUD, routing_context=1, affected_point_codes=[100, 300])
    outs = net.inject(SERVER, 1, M.encode(daud))
    msgs = [M.decode(o.data) for o in outs if isinstance(o, Transmit)]
    assert [m.name for m in msgs] == ["DAVA", "DUNA"]
    assert [a.pc for a in msgs[0].affected_point_codes] == [100]
    assert [a.pc for a in msgs[1].affected_point_codes] == [300]
    assert msgs[0].routing_contexts == (1,)


def test_duna_pauses_and_dava_resumes_a_destination(nets: list[Net]) -> None:
    net = active(nets)
    duna = M.encode(M.make(MT.DUNA, routing_context=1, affected_point_codes=[100]))
    outs = net.clients[1].receive(1, duna, net.now)
    assert outs == [MtpStatus("pause", (100,))]
    assert isinstance(net.clients[1].send_transfer(xfer(dpc=100), net.now)[0], Dropped)
    assert isinstance(net.clients[1].send_transfer(xfer(dpc=101), net.now)[0], Transmit)
    dava = M.encode(M.make(MT.DAVA, routing_context=1, affected_point_codes=[100]))
    assert net.clients[1].receive(1, dava, net.now) == [MtpStatus("resume", (100,))]
    assert isinstance(net.clients[1].send_transfer(xfer(dpc=100), net.now)[0], Transmit)


# -- RKM -------------------------------------------------------------------------------------


def test_reg_req(nets: list[Net]) -> None:
    net = make_net(nets)
    net.connected.add(1)
    net.run(SERVER, net.server.association_up(1, 0.0))
    net.inject(SERVER, 1, M.encode(M.make(MT.ASPUP)))
    req = M.make(
        MT.REG_REQ, routing_keys=[RoutingKey(1, 100, service_indicators=(3,)), RoutingKey(2, 555)]
    )
    outs = net.inject(SERVER, 1, M.encode(req))
    (rsp,) = [M.decode(o.data) for o in outs if isinstance(o, Transmit)]
    assert rsp.name == "REG_RSP"
    assert [
        (r.local_rk_identifier, r.status, r.routing_context) for r in rsp.registration_results
    ] == [
        (1, RegistrationStatus.SUCCESSFULLY_REGISTERED, 1),
        (2, RegistrationStatus.INVALID_DPC, 0),
    ]


def test_reg_req_without_configured_rc_assigns_one(nets: list[Net]) -> None:
    net = make_net(nets, server={"routing_context": None}, client={"routing_context": None})
    net.connect(1)
    assert net.server.asp_state(1) is AspState.ACTIVE  # no RC anywhere: the single AS
    outs = net.inject(SERVER, 1, M.encode(M.make(MT.REG_REQ, routing_keys=[RoutingKey(4, 100)])))
    (rsp,) = [M.decode(o.data) for o in outs if isinstance(o, Transmit)]
    (res,) = rsp.registration_results
    assert res.status == 0 and res.routing_context == 1
    # The assigned RC is now valid for DATA; others are not.
    assert [type(o) for o in net.server.receive(1, M.encode_data(xfer(), 1), net.now)] == [Deliver]
    (err,) = errs(net.inject(SERVER, 1, M.encode_data(xfer(), 2)))
    assert err.error_code == ErrorCode.INVALID_ROUTING_CONTEXT


def test_dereg_req(nets: list[Net]) -> None:
    net = active(nets)
    outs = net.inject(SERVER, 1, M.encode(M.make(MT.DEREG_REQ, routing_context=[1, 9])))
    (rsp,) = [M.decode(o.data) for o in outs if isinstance(o, Transmit)]
    assert [(r.routing_context, r.status) for r in rsp.deregistration_results] == [(1, 5), (9, 2)]


# -- client retries and shutdown -------------------------------------------------------------


def test_client_retries_aspup_with_backoff(nets: list[Net]) -> None:
    net = make_net(nets, client={"ack_timeout": 1.0})
    net.deaf.add(SERVER)
    net.connect(1)
    times = []
    for _ in range(4):
        times.append(net.clients[1].next_deadline())
        net.advance(net.clients[1].next_deadline() - net.now)  # type: ignore[operator]
    assert net.names(1) == ["ASPUP"] * 5
    assert times == [1.0, 3.0, 7.0, 15.0]  # 1, 2, 4, 8 s
    net.deaf.clear()
    net.advance(16.0)
    assert net.clients[1].asp_state(1) is AspState.ACTIVE


def test_client_shutdown_sequence(nets: list[Net]) -> None:
    net = active(nets, 1, client={"beat_interval": 30.0})
    net.run(1, net.clients[1].shutdown(net.now))
    assert net.names() == ["ASPIA", "ASPIA_ACK", "NTFY", "ASPDN", "ASPDN_ACK"]
    assert net.clients[1].asp_state(1) is AspState.DOWN and not net.clients[1].is_active
    assert net.server.asp_state(1) is AspState.DOWN
    assert net.server.as_state is AsState.PENDING
    net.advance(2.0)
    assert net.server.as_state is AsState.DOWN
    assert net.clients[1].next_deadline() is None


def test_client_shutdown_without_answer_gives_up(nets: list[Net]) -> None:
    net = active(nets)
    net.deaf.add(SERVER)
    net.run(1, net.clients[1].shutdown(net.now))
    net.advance(2.0)
    net.advance(2.0)
    assert net.names(1) == ["ASPIA", "ASPDN"]
    assert net.clients[1].asp_state(1) is AspState.DOWN


def test_server_shutdown(nets: list[Net]) -> None:
    net = active(nets, 2)
    net.run(SERVER, net.server.shutdown(net.now))
    assert net.names(SERVER) == ["ASPDN_ACK", "ASPDN_ACK"]
    assert not net.server.is_active and net.server.as_state is AsState.DOWN
    assert all(c.asp_state(i) is AspState.DOWN for i, c in net.clients.items())


def test_association_loss(nets: list[Net]) -> None:
    net = active(nets)
    net.disconnect(1)
    assert AspStateChanged(1, AspState.ACTIVE, AspState.DOWN) in net.events[1]
    assert AspStateChanged(1, AspState.ACTIVE, AspState.DOWN) in net.events[SERVER]
    assert net.clients[1].next_deadline() is None
    net.connect(1)  # reconnect: the handshake runs again
    assert net.clients[1].asp_state(1) is AspState.ACTIVE


# -- found when probed from outside ----------------------------------------------------------


def test_a_foreign_opc_steals_no_answers(nets: list[Net]) -> None:
    """The switch (PC 201) is on association 1. A peer on association 2 sends one DATA with
    OPC 201: it is delivered (screening is SCCP/TCAP's business) but the answers meant for
    201 keep leaving over association 1, whatever their SLS."""
    net = active(nets, 2)
    net.run(1, net.clients[1].send_transfer(xfer(sls=0, opc=201, dpc=100), net.now))
    net.run(2, net.clients[2].send_transfer(xfer(sls=1, opc=201, dpc=100), net.now))
    assert sum(isinstance(e, Deliver) for e in net.events[SERVER]) == 2
    assert routes(net, 201) == {1}
    # the owner's association goes: the point code is free again, the next sender owns it
    net.disconnect(1)
    net.run(2, net.clients[2].send_transfer(xfer(sls=0, opc=201, dpc=100), net.now))
    (o,) = net.server.send_transfer(xfer(sls=3, opc=100, dpc=201), net.now)
    assert isinstance(o, Transmit) and o.assoc_id == 2


@pytest.mark.parametrize(("opc", "why"), [(16384, "out of range"), (100, "ours")])
def test_an_opc_out_of_range_or_ours_is_refused(nets: list[Net], opc: int, why: str) -> None:
    net = active(nets, 1, server={"max_pc": 0x3FFF})
    data = M.encode_data(xfer(opc=opc, dpc=100), 1)
    outs = net.inject(SERVER, 1, data)
    assert not any(isinstance(o, Deliver) for o in outs)
    (err,) = errs(outs)
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert any(isinstance(o, Dropped) and why in o.detail for o in outs)
    assert opc not in net.server._reaches


def test_point_codes_learned_per_association_are_bounded(nets: list[Net]) -> None:
    net = active(nets, 1, server={"max_pcs_per_association": 8})
    for opc in range(300, 400):
        net.run(1, net.clients[1].send_transfer(xfer(opc=opc, dpc=100), net.now))
    assert sum(isinstance(e, Deliver) for e in net.events[SERVER]) == 100  # all delivered
    assert len(net.server._reaches) == 8
    net.disconnect(1)
    assert net.server._reaches == {}


def test_a_connection_that_never_brings_an_asp_up_is_closed(nets: list[Net]) -> None:
    net = make_net(nets, 2, server={"aspup_timeout": 5.0})
    net.connected.add(1)
    net.run(SERVER, net.server.association_up(1, net.now))  # client 1 stays silent
    net.connect(2)  # client 2 sends ASP Up at once
    net.advance(4.9)
    assert not any(isinstance(e, CloseAssociation) for e in net.events[SERVER])
    net.advance(0.1)
    closes = [e for e in net.events[SERVER] if isinstance(e, CloseAssociation)]
    assert closes == [CloseAssociation(1, "no ASP Up within 5.0 s")]
    assert net.server.asp_state(2) is AspState.ACTIVE
    assert net.server.next_deadline() is None  # nothing left armed for association 1


def test_a_connection_that_never_becomes_active_is_closed_unless_bound(nets: list[Net]) -> None:
    """ASP Up and then nothing: closed at aspup_timeout like a silent one (a host holding
    connections in ASP-INACTIVE would keep the real ASPs' places for ever). An ASP that was
    active and went inactive stays; so does a standby from an address of [[m3ua.binding]]."""
    net = make_net(
        nets,
        3,
        server={"aspup_timeout": 5.0, "pc_bindings": (("10.0.0.9", ((300, 300),)),)},
        addresses={1: "10.0.0.66", 2: "10.0.0.2", 3: "10.0.0.9"},
    )
    for i in (1, 3):  # ASP Up, never ASP Active
        net.connected.add(i)
        net.run(SERVER, net.server.association_up(i, net.now, net.addresses[i]))
        net.inject(SERVER, i, M.encode(M.make(MT.ASPUP)))
        assert net.server.asp_state(i) is AspState.INACTIVE
    net.connect(2)  # active, then inactive again (maintenance)
    net.inject(SERVER, 2, M.encode(M.make(MT.ASPIA, routing_context=1)))
    assert net.server.asp_state(2) is AspState.INACTIVE
    net.advance(4.9)
    assert not any(isinstance(e, CloseAssociation) for e in net.events[SERVER])
    net.advance(0.1)
    closes = [e for e in net.events[SERVER] if isinstance(e, CloseAssociation)]
    assert closes == [CloseAssociation(1, "not ASP-ACTIVE within 5.0 s")]
    assert net.server.asp_state(1) is AspState.DOWN
    assert net.server.asp_state(2) is AspState.INACTIVE
    assert net.server.asp_state(3) is AspState.INACTIVE


def test_beat_only_on_an_idle_association(nets: list[Net]) -> None:
    """README: BEAT every beat_interval on an association that has been quiet that long;
    traffic proves the peer alive."""
    net = active(nets, 1, server={"beat_interval": 10.0, "beat_timeout": 5.0})
    for _ in range(10):  # DATA every 3 s for 30 s
        net.advance(3.0)
        net.run(1, net.clients[1].send_transfer(xfer(opc=201, dpc=100), net.now))
    assert "BEAT" not in net.names(SERVER)
    net.advance(9.9)
    assert "BEAT" not in net.names(SERVER)
    net.advance(0.1)  # 10 s quiet
    assert net.names(SERVER).count("BEAT") == 1


# -- point codes bound to peer addresses ([[m3ua.binding]]) ------------------------------------

SWITCH, IMPOSTOR = "10.0.0.1", "10.0.0.66"
BOUND = {"pc_bindings": [(SWITCH, [(201, 201), (210, 219)])]}


def bound_net(nets: list[Net], order: tuple[int, ...], **server: Any) -> Net:
    """Client 1 is the impostor (10.0.0.66), client 2 the switch (10.0.0.1) that owns PCs 201
    and 210-219; they connect in ``order`` and are left active."""
    net = make_net(nets, 2, server={**BOUND, **server}, addresses={1: IMPOSTOR, 2: SWITCH})
    for i in order:
        net.connect(i)
    net.clear()
    return net


def test_a_bound_opc_from_another_address_gets_err_and_is_not_delivered(nets: list[Net]) -> None:
    net = bound_net(nets, (1, 2))
    for opc in (201, 215):
        data = M.encode_data(xfer(sls=3, opc=opc, dpc=100), 1)
        outs = net.inject(SERVER, 1, data)
        assert not any(isinstance(o, Deliver) for o in outs)
        (err,) = errs(outs)
        # RFC 4666 §3.8.1: Invalid Parameter Value, the offending DATA's first octets echoed
        assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE == 0x11
        assert err.diagnostic_information == data[:40]
        assert [o for o in outs if isinstance(o, Transmit)][0].assoc_id == 1
        assert OpcRefused(1, IMPOSTOR, opc) in outs
        assert not any(isinstance(o, Dropped) for o in outs)  # logged by the node, rationed
    assert net.server._reaches == {}  # it taught the routing nothing
    assert net.server.asp_state(1) is AspState.ACTIVE  # the association stays up
    # the switch, from its bound address, is served
    net.clear()
    net.run(2, net.clients[2].send_transfer(xfer(opc=201, dpc=100), net.now))
    assert net.events[SERVER] == [Deliver(xfer(opc=201, dpc=100), 2)]


def test_answers_to_a_bound_pc_leave_only_toward_its_address(nets: list[Net]) -> None:
    """The impostor connected first, is active and sent DATA with the switch's OPC: every
    answer to the switch's point codes leaves over the switch's association, whatever the SLS;
    an unbound point code still loadshares over both."""
    net = bound_net(nets, (1, 2))
    net.inject(SERVER, 1, M.encode_data(xfer(opc=201, dpc=100), 1))
    assert routes(net, 201) == routes(net, 210) == routes(net, 219) == {2}
    assert routes(net, 300) == {1, 2}
    # the switch goes; the AS stays active through the impostor: the answer is dropped, said
    net.disconnect(2)
    assert net.server.as_state is AsState.ACTIVE
    (o,) = net.server.send_transfer(xfer(opc=100, dpc=201), net.now)
    assert isinstance(o, Dropped) and "bound" in o.reason
    (o,) = net.server.send_transfer(xfer(opc=100, dpc=300), net.now)
    assert isinstance(o, Transmit) and o.assoc_id == 1


def test_broadcast_of_a_bound_pc_skips_other_addresses(nets: list[Net]) -> None:
    net = make_net(
        nets,
        3,
        server={**BOUND, "traffic_mode": "broadcast"},
        client={"traffic_mode": "broadcast"},
        addresses={1: IMPOSTOR, 2: SWITCH, 3: "::ffff:10.0.0.1"},  # dual-stack: the switch
    )
    for i in (1, 2, 3):
        net.connect(i)
    outs = net.server.send_transfer(xfer(opc=100, dpc=201), net.now)
    assert sorted(o.assoc_id for o in outs if isinstance(o, Transmit)) == [2, 3]


def test_a_bound_pc_is_queued_while_the_as_is_pending(nets: list[Net]) -> None:
    """The switch's association drops and the AS is AS-PENDING (T(r)): answers to it wait and
    leave over its new association once it is back."""
    net = make_net(nets, 1, server=BOUND, addresses={1: SWITCH})
    net.connect(1)
    net.disconnect(1)
    assert net.server.as_state is AsState.PENDING
    assert net.server.send_transfer(xfer(opc=100, dpc=201), net.now) == []
    net.clear()
    net.connect(1)
    assert Deliver(xfer(opc=100, dpc=201), 1) in net.events[1]


def test_unbound_opcs_are_learned_as_without_bindings(nets: list[Net]) -> None:
    net = bound_net(nets, (1, 2))
    net.run(1, net.clients[1].send_transfer(xfer(opc=300, dpc=100), net.now))
    net.run(2, net.clients[2].send_transfer(xfer(opc=300, dpc=100), net.now))
    assert sum(isinstance(e, Deliver) for e in net.events[SERVER]) == 2
    assert net.server._reaches == {300: {1}}  # first seen on the impostor's: as today
    assert routes(net, 300) == {1}


def test_an_association_of_unknown_address_sends_no_bound_opc(nets: list[Net]) -> None:
    net = make_net(nets, 1, server=BOUND)  # association_up without a peer address
    net.connect(1)
    outs = net.inject(SERVER, 1, M.encode_data(xfer(opc=201, dpc=100), 1))
    assert OpcRefused(1, None, 201) in outs and not any(isinstance(o, Deliver) for o in outs)


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("2001:DB8:0::7", "2001:db8::7"),
        ("fe80::1%eth0", "fe80::1"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_peer_addresses_compare_canonically(host: str, canonical: str) -> None:
    assert canonical_address(host) == canonical
