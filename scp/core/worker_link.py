"""The frame one worker of a node hands another: an N-UNITDATA indication for its transaction.

``mcn-scp run --workers N`` runs N processes, each an ASP of the same application server
(ARCHITECTURE §5). The STP loadshares per message, so a TC-CONTINUE / END / ABORT can reach a
worker that does not hold the dialogue; TCAP names the owner (:func:`scp.core.tcap.owner_worker`)
and the receiver passes the message on as this frame, after SCCP (reassembly done, addresses
decoded), so the owner feeds it straight to its TCAP and answers on its own associations.

Layout (all integers big-endian)::

    "MW" version(1)=1
    opc(4) dpc(4)              0xFFFFFFFF: none
    protocol_class(1) flags(1) bit 0: return option
    sequence_control(1) importance(1)   importance 0xFF: none
    len(1) called party address (Q.713 §3.4, as on the wire)
    len(1) calling party address
    the TCAP message (the rest)

A frame that does not parse raises :class:`WorkerLinkError`; the adapter logs and drops it.
"""

from __future__ import annotations

import struct

from scp.codecs.errors import CodecError
from scp.codecs.sccp import decode_address, encode_address
from scp.primitives import NUnitdata, PointCodeFormat

__all__ = ["WorkerLinkError", "encode_forward", "decode_forward", "MAX_FRAME"]

_MAGIC = b"MW\x01"
_HEAD = struct.Struct("!3sIIBBBB")
_NONE32 = 0xFFFFFFFF
MAX_FRAME = 65_535  # a reassembled XUDT/LUDT user message fits well within one datagram


class WorkerLinkError(ValueError):
    """A worker-link frame that is not one: wrong magic or version, truncated, bad address."""


def encode_forward(ind: NUnitdata, pcf: PointCodeFormat = PointCodeFormat.ITU) -> bytes:
    """The frame carrying ``ind`` to its owner."""
    cd = encode_address(ind.called, pcf)
    cg = encode_address(ind.calling, pcf)
    head = _HEAD.pack(
        _MAGIC,
        _NONE32 if ind.opc is None else ind.opc,
        _NONE32 if ind.dpc is None else ind.dpc,
        ind.protocol_class,
        1 if ind.return_option else 0,
        ind.sequence_control,
        0xFF if ind.importance is None else ind.importance,
    )
    return b"".join((head, bytes((len(cd),)), cd, bytes((len(cg),)), cg, ind.data))


def decode_forward(frame: bytes, pcf: PointCodeFormat = PointCodeFormat.ITU) -> NUnitdata:
    """The N-UNITDATA indication in ``frame`` (:class:`WorkerLinkError` if it is not one)."""
    if len(frame) < _HEAD.size + 2:
        raise WorkerLinkError(f"frame of {len(frame)} octets is too short")
    magic, opc, dpc, pclass, flags, seq, imp = _HEAD.unpack_from(frame)
    if magic != _MAGIC:
        raise WorkerLinkError(f"not a worker-link frame (starts {frame[:3].hex()})")
    pos = _HEAD.size
    addrs = []
    for what in ("called", "calling"):
        n = frame[pos] if pos < len(frame) else -1
        if n < 0 or pos + 1 + n > len(frame):
            raise WorkerLinkError(f"{what} address runs past the frame")
        try:
            addrs.append(decode_address(frame[pos + 1 : pos + 1 + n], pos + 1, pcf))
        except CodecError as e:
            raise WorkerLinkError(f"{what} address: {e}") from None
        pos += 1 + n
    return NUnitdata(
        called=addrs[0],
        calling=addrs[1],
        data=frame[pos:],
        protocol_class=pclass,
        return_option=bool(flags & 1),
        sequence_control=seq,
        importance=None if imp == 0xFF else imp,
        opc=None if opc == _NONE32 else opc,
        dpc=None if dpc == _NONE32 else dpc,
    )
