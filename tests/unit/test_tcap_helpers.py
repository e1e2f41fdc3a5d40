"""Test helpers for the TCAP tests: wrap TCAP bytes in SCCP UDT + M3UA DATA for tshark.

The TCAP tests frame their own messages (Q.713 §4.10 UDT, RFC 4666 §3.3.1 DATA), apart from
the SCCP and M3UA codecs tested elsewhere, to hand Wireshark something it decodes down to TCAP
and CAMEL: called and calling party route on SSN 146 (CAP, see tests/tshark.PREFS).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from scp.primitives import NUnitdata, RoutingIndicator, SccpAddress
from tests import tshark

SSN_CAP = 146
PC_PEER = 0x0123
PC_SCP = 100

PEER = SccpAddress(RoutingIndicator.SSN, PC_PEER, SSN_CAP)
SCP = SccpAddress(RoutingIndicator.SSN, PC_SCP, SSN_CAP)


def _sccp_address(pc: int, ssn: int) -> bytes:
    # Address indicator 0x43: route on SSN, no GT, SSN and PC present (Q.713 §3.4.1).
    return bytes((4, 0x43)) + struct.pack("<H", pc) + bytes((ssn,))


def sccp_udt(
    tcap: bytes,
    *,
    called_pc: int = PC_SCP,
    calling_pc: int = PC_PEER,
    ssn: int = SSN_CAP,
    return_option: bool = False,
) -> bytes:
    """An SCCP UDT (Q.713 §4.10), protocol class 0, carrying ``tcap``."""
    called = _sccp_address(called_pc, ssn)
    calling = _sccp_address(calling_pc, ssn)
    if len(tcap) > 255 - len(called) - len(calling):
        raise ValueError("too long for a UDT")
    # Three pointers, each relative to its own octet.
    p1 = 3
    p2 = p1 - 1 + len(called)
    p3 = p2 - 1 + len(calling)
    return (
        bytes((0x09, 0x80 if return_option else 0x00, p1, p2, p3))
        + called
        + calling
        + bytes((len(tcap),))
        + tcap
    )


def m3ua_data(sccp: bytes, *, opc: int = PC_PEER, dpc: int = PC_SCP) -> bytes:
    """An M3UA DATA message (RFC 4666 §3.3.1) with one Protocol Data parameter, SI = SCCP."""
    pd = struct.pack("!IIBBBB", opc, dpc, 3, 2, 0, 0) + sccp
    param = struct.pack("!HH", 0x0210, 4 + len(pd)) + pd
    param += b"\x00" * (-len(param) % 4)
    return struct.pack("!BBBBI", 1, 0, 1, 1, 8 + len(param)) + param


def frame(tcap: bytes, *, toward_peer: bool = True) -> bytes:
    """``tcap`` framed as M3UA DATA (SCP -> peer when ``toward_peer``)."""
    if toward_peer:
        return m3ua_data(
            sccp_udt(tcap, called_pc=PC_PEER, calling_pc=PC_SCP), opc=PC_SCP, dpc=PC_PEER
        )
    return m3ua_data(sccp_udt(tcap))


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


def test_helper_frames_decode_as_tcap() -> None:
    # End, basic, Invoke continue (CAP opcode 31): the smallest useful CAP message.
    assert_tshark_clean([bytes.fromhex("640e490206f76c08a10602010202011f")])
