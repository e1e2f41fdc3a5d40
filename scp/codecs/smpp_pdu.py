"""SMPP 3.4 PDUs an ESME sends and reads: bytes <-> values, no state.

SMPP 3.4 (SMPP Developers Forum, 1999): §3.2 PDU format (16-octet header: command_length,
command_id, command_status, sequence_number; then mandatory parameters, then TLVs, §3.2.4),
§4.1 bind_transmitter / bind_receiver / bind_transceiver and their responses (§4.1.2,
sc_interface_version §5.3.2.25), §4.2 unbind, §4.3 generic_nack, §4.4 submit_sm / submit_sm_resp,
§4.6 deliver_sm / deliver_sm_resp, §4.7 data_sm_resp, §4.11 enquire_link, §5.1.2 command_id
values, §5.1.3 command_status values, §5.3.2 the TLVs a deliver_sm carries
(receipted_message_id 0x001E, sar_msg_ref_num 0x020C, sar_total_segments 0x020E,
sar_segment_seqnum 0x020F, network_error_code 0x0423, message_payload 0x0424, message_state
0x0427).

The session (:mod:`scp.core.smpp_esme`) uses only this module; smpplib is the oracle these
codecs are proven against in the tests, never a runtime dependency:

* :func:`encode_submit_sm` returns exactly the octets smpplib's ``make_pdu("submit_sm",
  ...).generate()`` returns for the same arguments, or declines (:data:`DECLINE`, the codecs'
  one convention, as in :mod:`scp.codecs.fastber`) for arguments outside what it builds (an
  address over 20 characters or not ASCII, a short_message over 254 octets, a value that does
  not fit its octet); the session's own checks keep its submits inside.
  :func:`encode_bind` and the responses are smpplib's octets too.
* :func:`read_deliver_sm` reads any well-formed deliver_sm, every TLV above included, unknown
  TLVs skipped (§3.2.4: a receiver ignores optional parameters it does not support); a PDU it
  cannot read raises :class:`SmppDecodeError` carrying the command_status to answer with. It is
  what the session reads every deliver_sm with.
* :func:`decode_deliver_sm` is not on the node's path: it is the same reading restricted to
  where it equals smpplib's ``parse_pdu`` attribute for attribute, :data:`DECLINE` elsewhere (a
  missing NUL, a truncated body, a short_message running past the end, a TLV other than
  receipted_message_id / message_state / message_payload, a TLV of an unexpected length). It
  states that boundary for ``tests/unit/test_smpp_pdu_fast.py``, which proves the equivalence
  against smpplib, so that :func:`read_deliver_sm` is known to differ from smpplib only where
  this declines.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.fastber import DECLINE, Declined

__all__ = [
    "ALERT_NOTIFICATION",
    "DECLINE",
    "BIND_RECEIVER",
    "BIND_TRANSCEIVER",
    "BIND_TRANSMITTER",
    "DATA_SM",
    "DELIVER_SM",
    "ENQUIRE_LINK",
    "ESME_RINVBNDSTS",
    "ESME_RINVCMDID",
    "ESME_RINVCMDLEN",
    "ESME_RMSGQFUL",
    "ESME_ROK",
    "ESME_RTHROTTLED",
    "ESME_RX_T_APPN",
    "GENERIC_NACK",
    "HEADER",
    "MAX_COMMAND_LENGTH",
    "OUTBIND",
    "RESPONSE",
    "SUBMIT_SM",
    "UNBIND",
    "BindResp",
    "Declined",
    "DeliverSm",
    "SmppDecodeError",
    "decode_deliver_sm",
    "encode_bind",
    "encode_pdu",
    "encode_response",
    "encode_submit_sm",
    "read_bind_resp",
    "read_deliver_sm",
    "read_submit_sm_resp",
]

_LAYER = "smpp"

# §5.1.2 command_id; a response is its request's id with the top bit set
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103
RESPONSE = 0x80000000

# §5.1.3 command_status values this codec and the session name
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64  # temporary application error: the SMSC delivers again later
ESME_RINVOPTPARSTREAM = 0xC0

HEADER = struct.Struct(">IIII")
MAX_COMMAND_LENGTH = 64 * 1024  # far above any PDU of SMPP 3.4; beyond it the framing is lost
_TLV = struct.Struct(">HH")
# §5.3.2 tags
_RECEIPTED_MESSAGE_ID = 0x001E
_SAR_MSG_REF_NUM = 0x020C
_SAR_TOTAL_SEGMENTS = 0x020E
_SAR_SEGMENT_SEQNUM = 0x020F
_SC_INTERFACE_VERSION = 0x0210
_NETWORK_ERROR_CODE = 0x0423
_MESSAGE_PAYLOAD = 0x0424
_MESSAGE_STATE = 0x0427
# the TLVs smpplib reads exactly as we do (decode_deliver_sm's domain)
_SIMPLE_TLVS = frozenset({_RECEIPTED_MESSAGE_ID, _MESSAGE_STATE, _MESSAGE_PAYLOAD})


class SmppDecodeError(DecodeError):
    """A PDU that cannot be read; ``command_status`` is the §5.1.3 value to answer it with."""

    def __init__(self, offset: int, reason: str, command_status: int) -> None:
        super().__init__(_LAYER, offset, reason)
        self.command_status = command_status


# ---------------------------------------------------------------------------------------------
# Encoding


def encode_pdu(command_id: int, sequence: int, status: int = ESME_ROK, body: bytes = b"") -> bytes:
    """One PDU: the §3.2 header (command_length counts itself) and ``body``."""
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def _cstr(value: str) -> bytes | None:
    """A C-Octet String of at most 21 octets with its NUL (§5.2.8, §5.2.9), as smpplib writes
    it; None where smpplib would truncate or could not encode it."""
    if len(value) > 20 or not value.isascii():
        return None
    return value.encode("ascii") + b"\0"


def _bounded_cstr(value: str, size: int, name: str) -> bytes:
    """A C-Octet String of at most ``size`` octets with its NUL (§3.1); EncodeError if longer."""
    if len(value) >= size or not value.isascii():
        raise EncodeError(_LAYER, f"{name} must be at most {size - 1} ASCII characters")
    return value.encode("ascii") + b"\0"


def encode_bind(
    command_id: int,
    sequence: int,
    *,
    system_id: str,
    password: str,
    system_type: str = "",
    interface_version: int = 0x34,
    addr_ton: int = 0,
    addr_npi: int = 0,
    address_range: str = "",
) -> bytes:
    """bind_transmitter / bind_receiver / bind_transceiver (§4.1.1, §4.1.3, §4.1.5): system_id
    (§5.2.1, 16 octets), password (§5.2.2, 9), system_type (§5.2.3, 13), interface_version 0x34
    (§5.2.4), addr_ton, addr_npi, address_range (§5.2.7, 41)."""
    if command_id not in (BIND_TRANSMITTER, BIND_RECEIVER, BIND_TRANSCEIVER):
        raise EncodeError(_LAYER, f"command_id 0x{command_id:08X} is not a bind")
    octets = (interface_version, addr_ton, addr_npi)
    if not all(0 <= v <= 0xFF for v in octets):
        raise EncodeError(_LAYER, "interface_version, addr_ton and addr_npi are one octet each")
    body = b"".join(
        (
            _bounded_cstr(system_id, 16, "system_id"),
            _bounded_cstr(password, 9, "password"),
            _bounded_cstr(system_type, 13, "system_type"),
            bytes(octets),
            _bounded_cstr(address_range, 41, "address_range"),
        )
    )
    return encode_pdu(command_id, sequence, ESME_ROK, body)


# Responses whose body is a message_id the ESME leaves empty (§4.6.2, §4.7.2): one NUL octet;
# every other response the ESME sends (unbind_resp §4.2.2, enquire_link_resp §4.11.2,
# generic_nack §4.3.1) is a header alone.
_EMPTY_MESSAGE_ID = frozenset({DELIVER_SM | RESPONSE, DATA_SM | RESPONSE})


def encode_response(command_id: int, sequence: int, status: int = ESME_ROK) -> bytes:
    """The response ``command_id`` (top bit set) echoing the request's ``sequence`` (§2.5)."""
    return encode_pdu(
        command_id, sequence, status, b"\0" if command_id in _EMPTY_MESSAGE_ID else b""
    )


def encode_submit_sm(
    sequence: int,
    *,
    source_addr_ton: int,
    source_addr_npi: int,
    source_addr: str,
    dest_addr_ton: int,
    dest_addr_npi: int,
    destination_addr: str,
    esm_class: int,
    data_coding: int,
    registered_delivery: int,
    short_message: bytes,
) -> bytes | Declined:
    """submit_sm (§4.4.1) with service_type, protocol_id, priority_flag, the two times,
    replace_if_present_flag and sm_default_msg_id empty or zero and no TLV; DECLINE if outside
    what it builds (see module doc)."""
    src = _cstr(source_addr)
    dst = _cstr(destination_addr)
    octets = (
        source_addr_ton,
        source_addr_npi,
        dest_addr_ton,
        dest_addr_npi,
        esm_class,
        registered_delivery,
        data_coding,
    )
    if (
        src is None
        or dst is None
        or len(short_message) > 254
        or not all(0 <= v <= 0xFF for v in octets)
        or not 0 < sequence <= 0x7FFFFFFF
    ):
        return DECLINE
    body = b"".join(
        (
            b"\0",
            bytes((source_addr_ton, source_addr_npi)),
            src,
            bytes((dest_addr_ton, dest_addr_npi)),
            dst,
            # esm_class, protocol_id, priority_flag, schedule_delivery_time "", validity_period ""
            bytes((esm_class, 0, 0, 0, 0)),
            # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, length
            bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )
    return HEADER.pack(16 + len(body), SUBMIT_SM, 0, sequence) + body


# ---------------------------------------------------------------------------------------------
# Decoding


def _c_octet_string(raw: bytes, pos: int) -> str:
    """A C-Octet String from ``pos`` up to its NUL or the end of the PDU, as ASCII."""
    end = raw.find(b"\0", pos)
    return raw[pos : end if end >= 0 else len(raw)].decode("ascii", "replace")


def read_submit_sm_resp(raw: bytes) -> str:
    """submit_sm_resp (§4.4.2): its message_id (§5.2.23); empty when the SMSC sent no body,
    as it does with an error status."""
    return _c_octet_string(raw, 16)


@dataclass(frozen=True, slots=True)
class BindResp:
    """bind_*_resp (§4.1.2): the SMSC's system_id and its sc_interface_version TLV if sent."""

    system_id: str
    sc_interface_version: int | None


def read_bind_resp(raw: bytes) -> BindResp:
    """bind_transmitter_resp / bind_receiver_resp / bind_transceiver_resp; a body cut short
    (an SMSC refusing the bind may send none) reads as an empty system_id."""
    end = raw.find(b"\0", 16)
    if end < 0:
        return BindResp(_c_octet_string(raw, 16), None)
    version: int | None = None
    pos = end + 1
    while pos + 4 <= len(raw):
        tag, tlen = _TLV.unpack_from(raw, pos)
        pos += 4
        if tag == _SC_INTERFACE_VERSION and tlen == 1 and pos < len(raw):
            version = raw[pos]
        pos += tlen
    return BindResp(raw[16:end].decode("ascii", "replace"), version)


@dataclass(slots=True)
class DeliverSm:
    """deliver_sm (§4.6.1) as the session reads it; attribute names and value types are
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
    sar_msg_ref_num: int | None = None
    sar_total_segments: int | None = None
    sar_segment_seqnum: int | None = None
    network_error_code: bytes | None = None
    command: str = "deliver_sm"


class _Reader:
    """Mandatory parameters of a body, read front to back; SmppDecodeError past the end."""

    __slots__ = ("raw", "pos")

    def __init__(self, raw: bytes, pos: int) -> None:
        self.raw = raw
        self.pos = pos

    def cstr(self) -> bytes:
        """A C-Octet String (§3.1): up to its NUL, which must be there."""
        end = self.raw.find(b"\0", self.pos)
        if end < 0:
            raise SmppDecodeError(self.pos, "C-Octet String without its NUL", ESME_RINVCMDLEN)
        value = self.raw[self.pos : end]
        self.pos = end + 1
        return value

    def octets(self, k: int) -> bytes:
        """``k`` one-octet integers."""
        end = self.pos + k
        if end > len(self.raw):
            raise SmppDecodeError(self.pos, "mandatory parameters cut short", ESME_RINVCMDLEN)
        value = self.raw[self.pos : end]
        self.pos = end
        return value


def _read_deliver_sm(raw: bytes) -> tuple[DeliverSm, bool]:
    """The deliver_sm and whether smpplib reads it attribute for attribute the same way."""
    n = len(raw)
    if n < 16:
        raise SmppDecodeError(0, "shorter than the PDU header", ESME_RINVCMDLEN)
    length, command_id, status, sequence = HEADER.unpack_from(raw)
    if command_id != DELIVER_SM:
        raise SmppDecodeError(4, f"command_id 0x{command_id:08X} is not deliver_sm", ESME_RINVCMDID)
    if length != n:
        raise SmppDecodeError(0, f"command_length {length} for {n} octets", ESME_RINVCMDLEN)
    body = _Reader(raw, 16)
    service_type = body.cstr()
    src_ton, src_npi = body.octets(2)
    source_addr = body.cstr()
    dst_ton, dst_npi = body.octets(2)
    destination_addr = body.cstr()
    esm_class, protocol_id, priority_flag = body.octets(3)
    schedule_delivery_time = body.cstr()
    validity_period = body.cstr()
    registered_delivery, replace_if_present, data_coding, default_msg_id, sm_length = body.octets(5)
    pos = body.pos
    if pos + sm_length > n:
        raise SmppDecodeError(pos - 1, f"sm_length {sm_length} runs past the PDU", ESME_RINVMSGLEN)
    # smpplib stops at the end of the body: an empty short_message ending it stays None
    short_message = None if pos == n else raw[pos : pos + sm_length]
    pos += sm_length
    pdu = DeliverSm(
        sequence,
        status,
        service_type,
        src_ton,
        src_npi,
        source_addr,
        dst_ton,
        dst_npi,
        destination_addr,
        esm_class,
        protocol_id,
        priority_flag,
        schedule_delivery_time,
        validity_period,
        registered_delivery,
        replace_if_present,
        data_coding,
        default_msg_id,
        sm_length,
        short_message,
    )
    simple = True
    while pos < n:
        if pos + 4 > n:
            raise SmppDecodeError(pos, "TLV header cut short", ESME_RINVOPTPARSTREAM)
        tag, tlen = _TLV.unpack_from(raw, pos)
        pos += 4
        if pos + tlen > n:
            raise SmppDecodeError(
                pos - 2, f"TLV 0x{tag:04X} length {tlen} runs past the PDU", ESME_RINVOPTPARSTREAM
            )
        value = raw[pos : pos + tlen]
        pos += tlen
        simple = simple and tag in _SIMPLE_TLVS
        # a known TLV of the wrong length is left unread (None), not guessed at
        if tag == _RECEIPTED_MESSAGE_ID:
            # smpplib drops the last octet as the NUL: only a NUL-terminated value is read
            # the same way by both
            nul = value.find(0)
            simple = simple and tlen > 0 and nul == tlen - 1
            pdu.receipted_message_id = value if nul < 0 else value[:nul]
        elif tag == _MESSAGE_STATE:
            simple = simple and tlen == 1
            if tlen == 1:
                pdu.message_state = value[0]
        elif tag == _MESSAGE_PAYLOAD:
            pdu.message_payload = value
        elif tag == _SAR_MSG_REF_NUM and tlen == 2:
            pdu.sar_msg_ref_num = int.from_bytes(value, "big")
        elif tag == _SAR_TOTAL_SEGMENTS and tlen == 1:
            pdu.sar_total_segments = value[0]
        elif tag == _SAR_SEGMENT_SEQNUM and tlen == 1:
            pdu.sar_segment_seqnum = value[0]
        elif tag == _NETWORK_ERROR_CODE and tlen == 3:
            pdu.network_error_code = value
    return pdu, simple


def read_deliver_sm(raw: bytes) -> DeliverSm:
    """A whole deliver_sm PDU (header included); SmppDecodeError if it cannot be read."""
    return _read_deliver_sm(raw)[0]


def decode_deliver_sm(raw: bytes) -> DeliverSm | Declined:
    """A whole deliver_sm PDU read exactly as smpplib reads it, or DECLINE (see module doc)."""
    try:
        pdu, simple = _read_deliver_sm(raw)
    except SmppDecodeError:
        return DECLINE
    return pdu if simple else DECLINE
