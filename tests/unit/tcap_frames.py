"""Framing for the TCAP tests: wrap TCAP bytes in SCCP UDT + M3UA DATA for tshark.

The TCAP tests frame their own messages (Q.713 §4.10 UDT, RFC 4666 §3.3.1 DATA) with the
builders of tests/helpers.py, apart from the SCCP and M3UA codecs tested elsewhere, to hand
Wireshark something it decodes down to TCAP and CAMEL: called and calling party route on SSN 146
(CAP, see tests/tshark.PREFS). Not a test module: the TCAP, FSM-table and fuzz tests import it.
"""

from __future__ import annotations

from collections.abc import Iterable

from scp.primitives import NUnitdata, RoutingIndicator, SccpAddress
from tests import tshark
from tests.helpers import m3ua_data, sccp_udt

SSN_CAP = 146
PC_PEER = 0x0123
PC_SCP = 100

PEER = SccpAddress(RoutingIndicator.SSN, PC_PEER, SSN_CAP)
SCP = SccpAddress(RoutingIndicator.SSN, PC_SCP, SSN_CAP)


def frame(tcap: bytes, *, toward_peer: bool = True) -> bytes:
    """``tcap`` framed as M3UA DATA (SCP -> peer when ``toward_peer``): SCCP UDT class 0 without
    return option, both addresses with point code and SSN 146."""
    src, dst = (PC_SCP, PC_PEER) if toward_peer else (PC_PEER, PC_SCP)
    udt = sccp_udt(
        tcap,
        called_ssn=SSN_CAP,
        calling_ssn=SSN_CAP,
        called_pc=dst,
        calling_pc=src,
        protocol_class=0x00,
    )
    return m3ua_data(udt, opc=src, dpc=dst)


def assert_tshark_clean(tcaps: Iterable[bytes]) -> None:
    """Every TCAP message framed and checked by Wireshark: no malformed frame, no expert error."""
    frames = [frame(t) for t in tcaps]
    pcap = tshark.write_pcap(frames)
    try:
        tshark.assert_clean(pcap, expect_frames=len(frames))
        # Wireshark must have seen TCAP in every frame (not just SCCP data).
        rows = tshark.fields(pcap, ["frame.protocols"])
        for row in rows:
            assert "tcap" in row[0], f"tshark did not decode TCAP: {row}"
    finally:
        pcap.unlink(missing_ok=True)


def emitted_tcap(outputs: Iterable[object]) -> list[bytes]:
    """The TCAP bytes of every N-UNITDATA request among a core's outputs."""
    return [o.data for o in outputs if type(o) is NUnitdata]
