"""The association a TC-BEGIN came on reaches TCAP through the whole stack (M3UA DATA ->
SCCP UDT -> TCAP), so ``[tcap] max_dialogues_per_association`` holds one association to its
share whatever OPCs its peer writes in the routing labels."""

from __future__ import annotations

from scp.app import build_stack
from scp.codecs import m3ua as M
from scp.codecs.m3ua import MessageType as MT
from scp.config import parse_config
from scp.core.m3ua_asp import Transmit
from scp.core.tcap import TcapLayer
from scp.primitives import Invoke, NUnitdata, TcBegin
from tests.helpers import m3ua_data, sccp_udt
from tests.unit.tcap_frames import PEER, SCP

CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)
IDP = bytes.fromhex("300380012a")  # InitialDPArg {serviceKey 42}
CFG = parse_config(
    """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[tcap]
max_dialogues = 100
max_dialogues_per_peer = 10
max_dialogues_per_association = 3
"""
)


def _active(stack, assoc: int, now: float) -> None:  # type: ignore[no-untyped-def]
    stack.association_up(assoc, now, f"10.0.0.{assoc}")
    stack.receive(assoc, M.encode(M.make(MT.ASPUP)), now)
    stack.receive(assoc, M.encode(M.make(MT.ASPAC, routing_context=1)), now)


def test_dialogues_count_against_the_association_they_came_on() -> None:
    stack = build_stack(CFG)
    msc = TcapLayer(worker_id=2)
    now = 0.0
    for assoc in (1, 2):
        _active(stack, assoc, now)

    def begin(assoc: int, opc: int) -> tuple[int, int]:
        """A BEGIN on ``assoc`` from ``opc``: (TC-BEGINs delivered, M3UA DATA sent back)."""
        did = msc.new_dialogue_id()
        (nu,) = [
            o
            for o in msc.handle_tc(TcBegin(did, SCP, PEER, CAP_V2, None, (Invoke(1, 0, IDP),)), now)
            if isinstance(o, NUnitdata)
        ]
        udt = sccp_udt(nu.data, called_ssn=146, calling_ssn=146, called_pc=100, calling_pc=opc)
        out = stack.receive(assoc, m3ua_data(udt, opc=opc, dpc=100, rc=1), now)
        begins = sum(1 for o in out if isinstance(o, TcBegin))
        back = sum(1 for o in out if isinstance(o, Transmit) and o.data[2:4] == b"\x01\x01")
        return begins, back

    # association 1 sends from a new point code each time: its OPC shares never fill
    assert [begin(1, 200 + i) for i in range(3)] == [(1, 0)] * 3
    assert begin(1, 210) == (0, 1)  # the association's share is full: an ABORT goes back
    assert begin(2, 211) == (1, 0)  # another association opens dialogues as before
