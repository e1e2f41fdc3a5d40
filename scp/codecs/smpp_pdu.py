"""Fast path for the two SMPP 3.4 PDUs of every notification: submit_sm out, deliver_sm in.

SMPP 3.4 §3.2 (PDU format: 16-octet header, then mandatory parameters, then TLVs), §4.4.1
submit_sm, §4.6.1 deliver_sm, §5.3.2.12 receipted_message_id, §5.3.2.32 message_payload,
§5.3.2.35 message_state.

Why: smpplib builds and parses every PDU through a generic, attribute-driven machinery that
costs more than the rest of an SMS's handling put together (issue 6, bench/sms.py). The gateway
(scp/adapters/smpp.py) still uses smpplib for everything else and as the fallback here.

The contract, checked by tests/unit/test_smpp_pdu_fast.py against smpplib itself:

* :func:`encode_submit_sm` returns exactly the octets smpplib's ``make_pdu("submit_sm",
  ...).generate()`` returns for the same arguments, or None for arguments outside the simple
  case (an address over 20 characters or not ASCII, a short_message over 254 octets, a value
  that does not fit its octet); the caller then uses smpplib.
* :func:`decode_deliver_sm` returns a :class:`DeliverSm` whose attributes equal those of
  smpplib's ``parse_pdu`` for the same PDU, or None ("decline") for anything it does not
  handle exactly as smpplib does: a missing NUL, a truncated body, a short_message running past
  the end, a TLV other than receipted_message_id / message_state / message_payload, a TLV of an
  unexpected length. Declining is never wrong, only slower.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["DeliverSm", "decode_deliver_sm", "encode_submit_sm", "SUBMIT_SM", "DELIVER_SM"]

SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
_HEADER = struct.Struct(">IIII")
_TLV = struct.Struct(">HH")
# §5.3.2: the three TLVs a delivery receipt or a long MO carries
_RECEIPTED_MESSAGE_ID = 0x001E
_MESSAGE_STATE = 0x0427
_MESSAGE_PAYLOAD = 0x0424


def _cstr(value: str) -> bytes | None:
    """A C-Octet String of at most 21 octets with its NUL (§5.2.8, §5.2.9), as smpplib writes
    it; None where smpplib would truncate or could not encode it."""
    if len(value) > 20 or not value.isascii():
        return None
    return value.encode("ascii") + b"\0"


def encode_submit_sm(sequence: int, *, source_addr_ton: int, source_addr_npi: int,
                     source_addr: str, dest_addr_ton: int, dest_addr_npi: int,
                     destination_addr: str, esm_class: int, data_coding: int,
                     registered_delivery: int, short_message: bytes) -> bytes | None:
    """submit_sm (§4.4.1) with service_type, protocol_id, priority_flag, the two times,
    replace_if_present_flag and sm_default_msg_id empty or zero and no TLV; None if outside
    the simple case (see module doc)."""
    src = _cstr(source_addr)
    dst = _cstr(destination_addr)
    octets = (source_addr_ton, source_addr_npi, dest_addr_ton, dest_addr_npi, esm_class,
              registered_delivery, data_coding)
    if (src is None or dst is None or len(short_message) > 254
            or not all(0 <= v <= 0xFF for v in octets) or not 0 < sequence <= 0x7FFFFFFF):
        return None
    body = b"".join((
        b"\0", bytes((source_addr_ton, source_addr_npi)), src,
        bytes((dest_addr_ton, dest_addr_npi)), dst,
        # esm_class, protocol_id, priority_flag, schedule_delivery_time "", validity_period ""
        bytes((esm_class, 0, 0, 0, 0)),
        # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, length
        bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
        short_message))
    return _HEADER.pack(16 + len(body), SUBMIT_SM, 0, sequence) + body


@dataclass(slots=True)
class DeliverSm:
    """deliver_sm (§4.6.1) as the gateway reads it; attribute names and value types are
    smpplib's (octet strings as bytes, without their NUL), absent TLVs None."""

    sequence: int
    status: int
    service_type: bytes
    source_addr_ton: int
    source_addr_npi: int
    source_addr: bytes
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: bytes
    esm_class: int
    protocol_id: int
    priority_flag: int
    schedule_delivery_time: bytes
    validity_period: bytes
    registered_delivery: int
    replace_if_present_flag: int
    data_coding: int
    sm_default_msg_id: int
    sm_length: int
    short_message: bytes | None
    receipted_message_id: bytes | None = None
    message_state: int | None = None
    message_payload: bytes | None = None
    command: str = "deliver_sm"


class _Decline(Exception):
    """The PDU leaves the simple case: smpplib parses it."""


class _Reader:
    """Mandatory parameters of a body, read front to back; _Decline past the end."""

    __slots__ = ("raw", "pos")

    def __init__(self, raw: bytes, pos: int) -> None:
        self.raw = raw
        self.pos = pos

    def cstr(self) -> bytes:
        """A C-Octet String (§3.1): up to its NUL, which must be there."""
        end = self.raw.find(b"\0", self.pos)
        if end < 0:
            raise _Decline
        value = self.raw[self.pos:end]
        self.pos = end + 1
        return value

    def octets(self, k: int) -> bytes:
        """``k`` one-octet integers."""
        end = self.pos + k
        if end > len(self.raw):
            raise _Decline
        value = self.raw[self.pos:end]
        self.pos = end
        return value


def decode_deliver_sm(raw: bytes) -> DeliverSm | None:
    """A whole deliver_sm PDU (header included) or None to let smpplib parse it."""
    n = len(raw)
    if n < 16:
        return None
    length, command_id, status, sequence = _HEADER.unpack_from(raw)
    if command_id != DELIVER_SM or length != n:
        return None
    body = _Reader(raw, 16)
    try:
        service_type = body.cstr()
        src_ton, src_npi = body.octets(2)
        source_addr = body.cstr()
        dst_ton, dst_npi = body.octets(2)
        destination_addr = body.cstr()
        esm_class, protocol_id, priority_flag = body.octets(3)
        schedule_delivery_time = body.cstr()
        validity_period = body.cstr()
        registered_delivery, replace_if_present, data_coding, default_msg_id, sm_length = (
            body.octets(5))
    except _Decline:
        return None
    pos = body.pos
    if pos + sm_length > n:
        return None
    # smpplib stops at the end of the body: an empty short_message ending it stays None
    short_message = None if pos == n else raw[pos:pos + sm_length]
    pos += sm_length
    pdu = DeliverSm(sequence, status, service_type, src_ton, src_npi, source_addr, dst_ton,
                    dst_npi, destination_addr, esm_class, protocol_id, priority_flag,
                    schedule_delivery_time, validity_period, registered_delivery,
                    replace_if_present, data_coding, default_msg_id, sm_length, short_message)
    while pos < n:
        if pos + 4 > n:
            return None
        tag, tlen = _TLV.unpack_from(raw, pos)
        pos += 4
        if pos + tlen > n:
            return None
        value = raw[pos:pos + tlen]
        pos += tlen
        if tag == _RECEIPTED_MESSAGE_ID:
            # smpplib drops the last octet as the NUL: only a NUL-terminated value is read
            # the same way by both
            if tlen == 0 or value[-1] != 0 or 0 in value[:-1]:
                return None
            pdu.receipted_message_id = value[:-1]
        elif tag == _MESSAGE_STATE:
            if tlen != 1:
                return None
            pdu.message_state = value[0]
        elif tag == _MESSAGE_PAYLOAD:
            pdu.message_payload = value
        else:
            return None
    return pdu
