"""Benchmark: M3UA+SCCP+TCAP decode-and-answer round trips per second on one core.

One round trip = an M3UA DATA carrying SCCP UDT carrying a TCAP Begin with an AARQ (CAP v2)
and an InitialDP invoke goes into the node's stack (server role, ASP active), up through
M3UA -> SCCP -> TCAP to the TC-user, which answers Continue in a TC-END that goes back down to
a ``Transmit`` of M3UA bytes. The CAP payload is not decoded (the codecs have their own bench).

Baseline in the same run: raw pycrate parsing of the same M3UA message and of its SCCP UDT
(``pycrate_mobile.M3UA.parse_M3UA`` and ``pycrate_mobile.SCCP.parse_SCCP``) — parsing only, no
answer built, so the ratio flatters pycrate.

Prints one JSON object. Target: at least 20,000 round trips/s.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scp.app import build_stack  # noqa: E402
from scp.config import parse_config  # noqa: E402
from scp.core.m3ua_asp import Transmit  # noqa: E402
from scp.primitives import (  # noqa: E402
    GlobalTitle,
    Invoke,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
)
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF, ContinueUser, Dispatcher  # noqa: E402

# A realistic InitialDP argument (about 60 bytes, as a GMSC sends for a T-CSI trigger):
# serviceKey 100, calledPartyNumber, callingPartyNumber, eventTypeBCSM termAttemptAuthorized,
# IMSI, time-and-timezone... carried opaquely: the stack does not decode it.
IDP_ARG = bytes.fromhex(
    "303c"
    "800164"  # serviceKey [0] 100
    "8207039031683100f5"  # calledPartyNumber [2]
    "830703139031683100"  # callingPartyNumber [3]
    "9f1c010c"  # eventTypeBCSM [28] termAttemptAuthorized
    "9f320864001328091109f3"  # iMSI [50]
    "9f3609025211251800000023"  # timeAndTimezone [57]
    "9f37070791683108100000"  # mscAddress-like trailing field
)


def _wire(cfg_text: str):  # type: ignore[no-untyped-def]
    return build_stack(parse_config(cfg_text))


def make_pair():  # type: ignore[no-untyped-def]
    """Node (server) and switch (client) stacks wired back to back, ASP active."""
    node = _wire("[m3ua]\nbeat_interval = 0\n")
    msc = _wire(
        "[node]\nworker_id = 7\n[m3ua]\nrole = 'client'\npeers = ['127.0.0.1:2905']\n"
        "local_pc = 200\nbeat_interval = 0\n[sccp]\nglobal_title = '8613900000'\ndefault_dpc = 100\n"
    )
    now = 0.0
    to_node = msc.association_up(1, now)
    node.association_up(1, now)
    for _ in range(10):
        to_msc: list[object] = []
        for o in to_node:
            if type(o) is Transmit:
                to_msc += node.receive(1, o.data, now)
        to_node = []
        for o in to_msc:
            if type(o) is Transmit:
                to_node += msc.receive(1, o.data, now)
        if not to_node:
            break
    assert node.m3ua.is_active and msc.m3ua.is_active, "ASP did not come up"
    return node, msc


def idp_message(msc) -> bytes:  # type: ignore[no-untyped-def]
    did = msc.tcap.new_dialogue_id()
    out = msc.tc_request(
        TcBegin(
            dialogue_id=did,
            called=SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000")),
            calling=SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613900000")),
            application_context=AC_CAP_V2_GSMSSF_SCF,
            components=(Invoke(invoke_id=1, opcode=0, parameter=IDP_ARG),),
        ),
        0.0,
    )
    (tx,) = [o for o in out if type(o) is Transmit]
    return tx.data


def round_trips(node, data: bytes, n: int) -> float:  # type: ignore[no-untyped-def]
    user = Dispatcher([ContinueUser()])  # the node's TC-user with no service wired
    receive = node.receive
    tc_request = node.tc_request
    answered = 0
    gc.disable()
    t0 = time.perf_counter()
    for i in range(n):
        now = i * 1e-4
        for o in receive(1, data, now):
            match o:
                case TcBegin():  # the only indication a Begin with an InitialDP brings
                    for req in user.handle(o):
                        for x in tc_request(req, now):
                            match x:
                                case Transmit():
                                    answered += 1
    dt = time.perf_counter() - t0
    gc.enable()
    assert answered == n, f"only {answered} of {n} answered"
    return n / dt


def _protocol_data_payload(m3ua: bytes) -> bytes:
    """The SCCP bytes inside the Protocol Data parameter (0x0210) of an M3UA DATA message."""
    off = 8
    while off + 4 <= len(m3ua):
        tag = int.from_bytes(m3ua[off : off + 2], "big")
        length = int.from_bytes(m3ua[off + 2 : off + 4], "big")
        if tag == 0x0210:
            return m3ua[off + 16 : off + length]  # after OPC, DPC, SI, NI, MP, SLS
        off += (length + 3) & ~3
    raise ValueError("no Protocol Data parameter")


def pycrate_parse(data: bytes, n: int) -> float:
    from pycrate_mobile.M3UA import parse_M3UA
    from pycrate_mobile.SCCP import parse_SCCP

    msg, err = parse_M3UA(data)
    assert err == 0
    sccp = _protocol_data_payload(data)
    _, serr = parse_SCCP(sccp)
    assert serr == 0, serr
    gc.disable()
    t0 = time.perf_counter()
    for _ in range(n):
        parse_M3UA(data)
        parse_SCCP(sccp)
    dt = time.perf_counter() - t0
    gc.enable()
    return n / dt


def main() -> None:
    node, msc = make_pair()
    data = idp_message(msc)
    round_trips(node, data, 2000)  # warm-up
    best = max(round_trips(node, data, 20000) for _ in range(3))
    base = max(pycrate_parse(data, 2000) for _ in range(3))
    print(
        json.dumps(
            {
                "bench": "stack",
                "message_bytes": len(data),
                "round_trips_per_s": round(best),
                "us_per_round_trip": round(1e6 / best, 2),
                "baseline_pycrate_m3ua_sccp_parse_per_s": round(base),
                "speedup_vs_pycrate_parse_only": round(best / base, 1),
                "target_round_trips_per_s": 20000,
                "meets_target": best >= 20000,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
