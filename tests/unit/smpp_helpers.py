"""Driving the SMPP ESME session (scp.core.smpp_esme) with bytes alone, as an SMSC would.

PDUs are written out here field by field (SMPP 3.4 §3.2 header, §4.1.2 bind_transceiver_resp,
§4.4.2 submit_sm_resp, §4.6.1 deliver_sm) so the tests do not read the session's answers with
the session's own codec; smpplib is the other independent reader (``SeqClient`` /
``FixedSequence`` are the client objects its PDU factory wants).
"""

from __future__ import annotations

import struct
from typing import Any

from scp.core.smpp_esme import EsmeConfig, EsmeOutput, EsmeSession

T0 = 1000.0  # the session's clock is whatever it is told; tests start here


def header(pdu: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number)."""
    return struct.unpack_from(">IIII", pdu)


def split(data: bytes) -> list[bytes]:
    """The PDUs in a byte stream, by their command_length."""
    out = []
    while data:
        n = struct.unpack_from(">I", data)[0]
        out.append(data[:n])
        data = data[n:]
    return out


def pdu(command_id: int, seq: int, status: int = 0, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


def bind_transceiver_resp(seq: int, status: int = 0, system_id: bytes = b"SMSC") -> bytes:
    return pdu(0x80000009, seq, status, system_id + b"\0")


def submit_sm_resp(seq: int, message_id: str, status: int = 0) -> bytes:
    return pdu(0x80000004, seq, status, message_id.encode() + b"\0")


def deliver_sm(
    seq: int,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    tlvs: bytes = b"",
    source: bytes = b"8613800138000",
    destination: bytes = b"12599",
) -> bytes:
    body = (
        b"\0"  # service_type ""
        + b"\x01\x01"
        + source
        + b"\0"  # source ton/npi, source_addr
        + b"\x00\x00"
        + destination
        + b"\0"  # dest ton/npi, destination_addr
        + bytes((esm_class, 0, 0))  # esm_class, protocol_id, priority_flag
        + b"\0\0"  # schedule_delivery_time, validity_period
        + bytes((0, 0, data_coding, 0))  # registered_delivery, replace, data_coding, dflt id
        + bytes((len(short_message),))
        + short_message
        + tlvs
    )
    return pdu(0x00000005, seq, 0, body)


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def session(**cfg: Any) -> EsmeSession:
    return EsmeSession(config=EsmeConfig(**cfg))


def bound(now: float = T0, **cfg: Any) -> EsmeSession:
    """A session bound as transceiver (bind sequence 1), its outputs drained."""
    s = session(**cfg)
    s.connection_made(now)
    s.data_to_send()
    s.receive_data(bind_transceiver_resp(1), now)
    events(s)
    return s


def events(s: EsmeSession) -> list[EsmeOutput]:
    out = []
    while (ev := s.next_event()) is not None:
        out.append(ev)
    return out


def sent(s: EsmeSession) -> list[bytes]:
    """The PDUs the session has queued for the SMSC since the last call."""
    return split(s.data_to_send())


class SeqClient:
    """What smpplib's PDU factory needs of a client: sequence numbers."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


class FixedSequence:
    """A client for smpplib's PDU factory that hands out one given sequence number."""

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence

    def next_sequence(self) -> int:
        return self.sequence
