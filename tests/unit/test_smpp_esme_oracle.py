"""The ESME session proven against smpplib, the independent SMPP codec (as pycrate and tshark
are for the SIGTRAN layers), over seeded random cases:

* every PDU the session emits (bind of each mode, submit_sm of random texts, destinations and
  addressing, enquire_link, unbind, deliver_sm_resp, unbind_resp, generic_nack) decodes in
  smpplib to the fields the session meant; the submit_sm of a message reassemble to its text;
* PDUs built by smpplib (bind_*_resp, submit_sm_resp, deliver_sm with every TLV smpplib knows
  for it, enquire_link, unbind, unbind_resp) are read by the session to the same values:
  attribute for attribute by the codec, and as events (message ids, MO texts reassembled from
  UDH or SAR parts in any order or carried in message_payload, receipts).
"""

from __future__ import annotations

import random
import string
from dataclasses import fields
from typing import Any

import smpplib.smpp

from scp.codecs.smpp_pdu import DeliverSm, read_bind_resp, read_deliver_sm
from scp.codecs.sms import decode_short_message, encode_sms
from scp.core.smpp_esme import (
    Bound,
    EsmeConfig,
    EsmeSession,
    MessageSubmitted,
    MoReceived,
    ReceiptReceived,
    SessionState,
    Unbound,
)
from tests.unit.smpp_helpers import T0, FixedSequence, SeqClient, events, header, pdu, split

_PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "
_ALPHABETS = (
    string.ascii_letters + string.digits + " .,!?",
    "{}[]~\\|^€",  # the GSM 7-bit extension table: two septets each
    "您好用户呼叫回电已可达请及时联系短信",
    "éüßñ@£$¥",
    "\U0001f600\U0001f4f1",  # outside the BMP: surrogate pairs in UCS-2
)
_STATES = {
    "transceiver": SessionState.BOUND_TRX,
    "transmitter": SessionState.BOUND_TX,
    "receiver": SessionState.BOUND_RX,
}


def _ascii(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(_PRINTABLE) for _ in range(rng.randint(lo, hi)))


def _text(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 4)):
        alphabet = rng.choice(_ALPHABETS)
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 180))))
    return "".join(out)


def _config(rng: random.Random) -> EsmeConfig:
    return EsmeConfig(
        system_id=_ascii(rng, 1, 15),
        password=_ascii(rng, 0, 8),
        system_type=_ascii(rng, 0, 12),
        bind_mode=rng.choice(("transceiver", "transmitter", "receiver")),
        source_addr=_ascii(rng, 0, 20),
        source_addr_ton=rng.randrange(256),
        source_addr_npi=rng.randrange(256),
        dest_addr_ton=rng.randrange(256),
        dest_addr_npi=rng.randrange(256),
        registered_delivery=rng.randrange(256),
        window=rng.randint(1, 20),
        enquire_link_interval=30.0,
    )


def _smpplib(raw: bytes) -> Any:
    return smpplib.smpp.parse_pdu(raw, client=SeqClient(), allow_unknown_opt_params=True)


def _make(command: str, seq: int, **kw: Any) -> bytes:
    return bytes(smpplib.smpp.make_pdu(command, client=FixedSequence(seq), **kw).generate())


def _one(s: EsmeSession) -> bytes:
    [raw] = split(s.data_to_send())
    return raw


def test_emitted_pdus_decode_in_smpplib_and_smpplib_answers_are_read() -> None:
    rng = random.Random(34)
    submits = 0
    for case in range(2000):
        cfg = _config(rng)
        s = EsmeSession(config=cfg)
        s.connection_made(T0)
        bind = _smpplib(_one(s))
        assert (
            bind.command,
            bind.system_id,
            bind.password,
            bind.system_type,
            bind.interface_version,
            bind.addr_ton,
            bind.addr_npi,
            bind.address_range,
        ) == (
            f"bind_{cfg.bind_mode}",
            cfg.system_id.encode(),
            cfg.password.encode(),
            cfg.system_type.encode(),
            0x34,
            0,
            0,
            b"",
        ), case
        smsc_id = _ascii(rng, 0, 15)
        version = rng.choice((None, 0x34, 0x50))
        resp = _make(
            f"bind_{cfg.bind_mode}_resp",
            bind.sequence,
            system_id=smsc_id,
            sc_interface_version=version,
        )
        assert read_bind_resp(resp).sc_interface_version == version
        s.receive_data(resp, T0)
        assert events(s) == [Bound(_STATES[cfg.bind_mode], smsc_id)]
        if cfg.bind_mode != "receiver":
            submits += _check_submit(rng, s, cfg)
        # enquire_link on silence, answered by smpplib's enquire_link_resp
        s.handle_timer(T0 + 31)
        enq = _smpplib(_one(s))
        assert enq.command == "enquire_link"
        s.receive_data(_make("enquire_link_resp", enq.sequence), T0 + 31)
        assert s.next_deadline() == T0 + 61
        # the SMSC's own enquire_link and an unknown request, answered as smpplib expects
        s.receive_data(_make("enquire_link", 7000 + case), T0 + 32)
        ans = _smpplib(_one(s))
        assert (ans.command, ans.sequence, ans.status) == ("enquire_link_resp", 7000 + case, 0)
        s.receive_data(pdu(0x00000077, 8000 + case), T0 + 32)
        ans = _smpplib(_one(s))
        assert (ans.command, ans.sequence, ans.status) == ("generic_nack", 8000 + case, 0x03)
        events(s)  # the unknown request, logged
        # unbind either way
        if rng.random() < 0.5:
            s.unbind(T0 + 33)
            unb = _smpplib(_one(s))
            assert unb.command == "unbind"
            s.receive_data(_make("unbind_resp", unb.sequence), T0 + 33)
            assert isinstance(events(s)[0], Unbound)
        else:
            s.receive_data(_make("unbind", 9000 + case), T0 + 33)
            ans = _smpplib(_one(s))
            assert (ans.command, ans.sequence) == ("unbind_resp", 9000 + case)
        assert s.state is SessionState.CLOSED
    assert submits > 1000


def _check_submit(rng: random.Random, s: EsmeSession, cfg: EsmeConfig) -> int:
    """A random message: its submit_sm as smpplib reads them, smpplib's responses read back."""
    text = _text(rng)
    dest = _ascii(rng, 1, 20)
    ref_octet = rng.randrange(256)
    ref = s.submit(dest, text, concat_ref=ref_octet, now=T0)
    segments = encode_sms(text, concat_ref=ref_octet).segments
    got: list[Any] = []
    while len(got) < len(segments):
        batch = [_smpplib(raw) for raw in split(s.data_to_send())]
        assert 0 < len(batch) <= cfg.window
        got += batch
        # smpplib's submit_sm_resp, in any order; a message_id of up to 64 characters
        for p in rng.sample(batch, len(batch)):
            p.mid = _ascii(rng, 1, 64)
            s.receive_data(_make("submit_sm_resp", p.sequence, message_id=p.mid), T0)
    parts = []
    for p, seg in zip(got, segments, strict=True):
        assert (
            p.command,
            p.service_type,
            p.source_addr_ton,
            p.source_addr_npi,
            p.source_addr,
            p.dest_addr_ton,
            p.dest_addr_npi,
            p.destination_addr,
            p.esm_class,
            p.protocol_id,
            p.priority_flag,
            p.schedule_delivery_time,
            p.validity_period,
            p.registered_delivery,
            p.replace_if_present_flag,
            p.data_coding,
            p.sm_default_msg_id,
        ) == (
            "submit_sm",
            b"",
            cfg.source_addr_ton,
            cfg.source_addr_npi,
            cfg.source_addr.encode(),
            cfg.dest_addr_ton,
            cfg.dest_addr_npi,
            dest.encode(),
            seg.esm_class,
            0,
            0,
            b"",
            b"",
            cfg.registered_delivery,
            0,
            int(seg.data_coding),
            0,
        )
        decoded = decode_short_message(p.short_message or b"", p.data_coding, p.esm_class)
        if len(segments) > 1:
            assert decoded.concat is not None and decoded.concat.ref == ref_octet
        parts.append(decoded.text)
    assert "".join(parts) == text
    assert len({p.sequence for p in got}) == len(got)
    assert events(s) == [MessageSubmitted(ref, tuple(p.mid for p in got))]
    return 1


# -- deliver_sm built by smpplib --------------------------------------------------------------

_ATTRS = [f.name for f in fields(DeliverSm) if f.name != "command"]


def _deliver_kw(rng: random.Random) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "service_type": rng.choice(("", "CMT", "WAP")),
        "source_addr_ton": rng.randrange(256),
        "source_addr_npi": rng.randrange(256),
        "source_addr": _ascii(rng, 0, 20),
        "dest_addr_ton": rng.randrange(256),
        "dest_addr_npi": rng.randrange(256),
        "destination_addr": _ascii(rng, 0, 20),
        "esm_class": rng.choice((0, 0x04, 0x20, 0x40, rng.randrange(256))),
        "protocol_id": rng.randrange(256),
        "priority_flag": rng.randrange(4),
        "registered_delivery": rng.randrange(256),
        "data_coding": rng.choice((0, 3, 8, 0xF0)),
    }
    payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 254)))
    if rng.random() < 0.2:
        kw["message_payload"] = payload
    elif rng.random() < 0.9:
        kw["short_message"] = payload
    optional = {
        "receipted_message_id": lambda: _ascii(rng, 1, 64),
        "message_state": lambda: rng.randint(1, 8),
        "network_error_code": lambda: bytes(rng.randrange(256) for _ in range(3)),
        "sar_msg_ref_num": lambda: rng.randint(1, 0xFFFF),
        "sar_total_segments": lambda: rng.randint(1, 255),
        "sar_segment_seqnum": lambda: rng.randint(1, 255),
        "user_message_reference": lambda: rng.randint(1, 0xFFFF),
        "source_port": lambda: rng.randint(1, 0xFFFF),
        "destination_port": lambda: rng.randint(1, 0xFFFF),
        "privacy_indicator": lambda: rng.randint(1, 3),
        "language_indicator": lambda: rng.randint(1, 5),
        "its_session_info": lambda: rng.randint(1, 0xFFFF),
        "payload_type": lambda: 1,
        "user_response_code": lambda: rng.randint(1, 255),
    }
    for name in rng.sample(sorted(optional), rng.randint(0, len(optional))):
        kw[name] = optional[name]()
    return kw


def test_smpplib_deliver_sm_read_to_the_same_values() -> None:
    rng = random.Random(35)
    for _ in range(5000):
        raw = _make("deliver_sm", rng.randint(1, 0x7FFFFFFF), **_deliver_kw(rng))
        ours = read_deliver_sm(raw)
        ref = _smpplib(raw)
        for name in _ATTRS:
            mine, theirs = getattr(ours, name), getattr(ref, name)
            assert mine == theirs and type(mine) is type(theirs), (name, raw.hex())


def _bound() -> EsmeSession:
    s = EsmeSession(config=EsmeConfig(enquire_link_interval=1e9))
    s.connection_made(T0)
    s.receive_data(_make("bind_transceiver_resp", header(_one(s))[3], system_id="SMSC"), T0)
    events(s)
    return s


def test_smpplib_mo_reassembled_from_any_parts_in_any_order() -> None:
    rng = random.Random(36)
    s = _bound()
    seq = 0
    for case in range(1500):
        text = _text(rng) or "x"
        src, dst = f"86138{case:08d}", rng.choice(("12599", "1065"))
        segments = encode_sms(text, concat_ref=case & 0xFF).segments
        how = rng.choice(("udh", "sar", "payload")) if len(segments) > 1 else "single"
        common = {
            "source_addr": src,
            "destination_addr": dst,
            "data_coding": int(segments[0].data_coding),
        }
        parts = []
        if how == "payload":
            # the whole text in message_payload (§5.3.2.32), no concatenation at all
            body = b"".join(seg.short_message[6:] for seg in segments)
            parts.append({**common, "message_payload": body})
        for n, seg in enumerate(segments, start=1):
            if how in ("udh", "single"):
                parts.append(
                    {**common, "esm_class": seg.esm_class, "short_message": seg.short_message}
                )
            elif how == "sar":  # the same parts, SAR TLVs instead of the UDH
                parts.append(
                    {
                        **common,
                        "short_message": seg.short_message[6:],
                        "sar_msg_ref_num": 0x100 + case,
                        "sar_total_segments": len(segments),
                        "sar_segment_seqnum": n,
                    }
                )
        rng.shuffle(parts)
        seqs = []
        for kw in parts:
            seq += 1
            seqs.append(seq)
            s.receive_data(_make("deliver_sm", seq, **kw), T0)
        [mo] = events(s)
        assert isinstance(mo, MoReceived)
        assert (mo.source_addr, mo.destination_addr, mo.text) == (src, dst, text), how
        s.answer_deliver(mo.tokens, True, T0)
        answers = [_smpplib(raw) for raw in split(s.data_to_send())]
        assert sorted(a.sequence for a in answers) == sorted(seqs)
        assert {(a.command, a.status) for a in answers} == {("deliver_sm_resp", 0)}


def test_smpplib_receipts_matched_and_read() -> None:
    rng = random.Random(37)
    s = _bound()
    states = {
        1: "ENROUTE",
        2: "DELIVRD",
        3: "EXPIRED",
        4: "DELETED",
        5: "UNDELIV",
        6: "ACCEPTD",
        7: "UNKNOWN",
        8: "REJECTD",
    }
    ours = {f"{rng.getrandbits(48):x}" for _ in range(500)}
    for mid in ours:
        s.receipts.remember([mid])
    pool = sorted(ours)
    for i in range(2000):
        mid = rng.choice(pool) if rng.random() < 0.7 else f"ext-{i}"
        state = rng.randint(1, 8)
        kw: dict[str, Any] = {
            "source_addr": "8613900000001",
            "destination_addr": "12599",
            "esm_class": 0x04,
        }
        in_text = rng.random() < 0.7
        if in_text:
            kw["short_message"] = (
                f"id:{mid} sub:001 dlvrd:001 submit date:2611251805 "
                f"done date:2611251806 stat:{states[state]} err:000 text:x"
            ).encode()
        if rng.random() < 0.6 or not in_text:
            kw["receipted_message_id"] = mid
            kw["message_state"] = state
        s.receive_data(_make("deliver_sm", 100 + i, **kw), T0)
        [r] = events(s)
        assert isinstance(r, ReceiptReceived)
        assert (r.message_id, r.stat, r.matched) == (mid, states[state], mid in ours)
        assert (r.done_date is not None) == in_text
        s.answer_deliver(r.tokens, True, T0)
        ans = _smpplib(_one(s))
        assert (ans.command, ans.sequence, ans.status) == ("deliver_sm_resp", 100 + i, 0)
