"""Replay ladder, rewriting, filters and bad captures (scp/tools/replay/, scp/cli/replay.py).

Golden cases carry their wire bytes in comments; the rewriters are checked both ways (rewrite
then rewrite back gives the original bytes). Bad captures (truncated, unknown link type,
garbage payloads, not a capture at all) give per-packet warnings and a summary, never a
traceback; a seeded fuzz test drives 10,000+ mutated messages through the ladder decoder.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from scp.adapters.capture import SctpPcapWriter
from scp.cli.replay import replay
from scp.cli.simulate import simulate
from scp.codecs import sccp as sccp_codec
from scp.codecs import tcap as tcap_codec
from scp.codecs.errors import DecodeError
from scp.primitives import GlobalTitle, MtpTransfer, RoutingIndicator, SccpAddress
from scp.tools.pcapread import CaptureWarning
from scp.tools.replay.feed import NumberRewriter, rewrite_tids
from scp.tools.replay.ladder import LadderDecoder, LadderEntry, decode_capture, guess_scp_pc
from scp.tools.replay.output import JsonLines, LadderFilter, entry_json, format_entry

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-missed-call.pcap"

# TCAP Begin from the Wireshark camel.pcap sample (MANIFEST #1, frame 1):
#   62 8187             Begin
#     48 02 06f7        otid 06f7
#     6b 1e ...         dialogue portion: AARQ, AC 0.4.0.0.1.0.50.1 (CAP v2 gsmSSF-to-gsmSCF)
#     6c 61 a1 5f       component portion, Invoke
#       02 01 01        invokeID 1
#       02 01 00        opcode 0 initialDP
#       30 57 80 01 2a  InitialDPArg serviceKey 42, ...
CAMEL_BEGIN = bytes.fromhex(
    "628187480206f76b1e281c060700118605010101a011600f80020780a1090607040000010032016c61a15f02"
    "0101020100305780012a830884111487095040f79c01029f32061487572586f9bf34148107913366020000f0"
    "a3098007313233343536379f3605a12345678f9f3707913366020000f09f3807111487085040f79f39080230"
    "900211223370"
)
# TCAP Continue (frame 3): otid 06f7, dtid 13b8, Invoke eventReportBCSM(oAnswer, notify)
#   65 1c 48 02 06f7 49 02 13b8 6c 12 a1 10 0201 02 0201 18 3008 800107 a403800101
CAMEL_CONTINUE = bytes.fromhex("651c480206f7490213b86c12a1100201020201183008800107a403800101")
# ... with dtid 0a0b0c0d: the outer length grows by two, the rest is byte for byte the same.
CAMEL_CONTINUE_NEW_DTID = bytes.fromhex(
    "651e480206f749040a0b0c0d6c12a1100201020201183008800107a403800101"
)

MSC = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613900000"))
SCP = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))


def xfer(tcap: bytes, opc: int = 200, dpc: int = 100) -> MtpTransfer:
    data = sccp_codec.encode(sccp_codec.Udt(called=SCP, calling=MSC, data=tcap))
    return MtpTransfer(opc=opc, dpc=dpc, si=3, ni=2, mp=0, sls=1, data=data)


# ---------------------------------------------------------------------------------------------
# Ladder
# ---------------------------------------------------------------------------------------------


def test_ladder_of_an_initialdp_names_the_key_fields() -> None:
    e = LadderDecoder().decode_transfer(xfer(CAMEL_BEGIN), frame=1, ts=10.0)
    assert (e.sccp, e.tcap, e.otid, e.dtid, e.protocol) == ("UDT", "Begin", "06f7", None, "cap")
    assert e.ac == "0.4.0.0.1.0.50.1"
    (op,) = e.ops
    assert (op.kind, op.invoke_id, op.code, op.name) == ("invoke", 1, 0, "initialDP")
    assert op.fields["sk"] == 42
    assert op.fields["calling"] == "41789005047"
    assert op.fields["event"] == "collectedInfo"
    line = format_entry(e, 10.0)
    assert "200 -> 100" in line and "Begin" in line and "initialDP(sk=42" in line
    d = entry_json(e)
    assert json.loads(json.dumps(d))["ops"][0]["name"] == "initialDP"


def test_continue_without_dialogue_portion_keeps_the_protocol_of_its_begin() -> None:
    dec = LadderDecoder(defaults={})  # no SSN hint: only the remembered AC can say CAP
    dec.decode_transfer(xfer(CAMEL_BEGIN))
    e = dec.decode_transfer(xfer(CAMEL_CONTINUE))
    assert e.protocol == "cap" and e.ops[0].name == "eventReportBCSM"
    assert e.ops[0].fields == {"event": "oAnswer", "message_type": 1}


def test_non_sccp_and_undecodable_layers_are_notes() -> None:
    dec = LadderDecoder()
    isup = MtpTransfer(1, 2, 5, 2, 0, 0, b"\x01\x02")
    assert dec.decode_transfer(isup).note == "not SCCP"
    bad = dec.decode_transfer(MtpTransfer(1, 2, 3, 2, 0, 0, b"\x09\x00"))
    assert bad.sccp == "?" and bad.note and bad.note.startswith("SCCP")
    junk_tcap = dec.decode_transfer(xfer(b"\x62\x05\x48\x09"))
    assert junk_tcap.tcap is None and junk_tcap.note and "TCAP" in junk_tcap.note


def test_scp_point_code_is_where_the_initialdp_goes() -> None:
    dec = LadderDecoder()
    entries = [dec.decode_transfer(xfer(CAMEL_BEGIN, opc=10, dpc=100))]
    assert guess_scp_pc(entries) == 100


# ---------------------------------------------------------------------------------------------
# Rewriting, both ways
# ---------------------------------------------------------------------------------------------


def test_rewrite_dtid_golden_and_back() -> None:
    new = rewrite_tids(CAMEL_CONTINUE, dtid=bytes.fromhex("0a0b0c0d"))
    assert new == CAMEL_CONTINUE_NEW_DTID
    assert tcap_codec.decode(new).dtid == bytes.fromhex("0a0b0c0d")
    assert rewrite_tids(new, dtid=bytes.fromhex("13b8")) == CAMEL_CONTINUE


def test_rewrite_otid_of_a_begin_keeps_dialogue_and_components() -> None:
    new = rewrite_tids(CAMEL_BEGIN, otid=b"\x01\x02\x03\x04")
    m, o = tcap_codec.decode(new), tcap_codec.decode(CAMEL_BEGIN)
    assert m.otid == b"\x01\x02\x03\x04" and m.dialogue == o.dialogue
    assert m.components == o.components
    assert rewrite_tids(new, otid=b"\x06\xf7") == CAMEL_BEGIN


def test_rewrite_tids_of_garbage_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        rewrite_tids(b"\x65\x40\x48")


def test_number_rewriter_isup_and_tbcd_both_ways() -> None:
    # ISUP calling party number 41789005047 (Q.763 §3.10: odd, filler 0): 14 87 09 50 40 07
    isup = bytes.fromhex("0313") + bytes.fromhex("148709504007")
    tbcd = bytes.fromhex("91") + bytes.fromhex("1487095040f7")  # MAP AddressString, filler F
    fwd = NumberRewriter(["41789005047=41789005048"])
    back = NumberRewriter(["41789005048=41789005047"])
    assert fwd.apply(isup) == bytes.fromhex("0313148709504008")
    assert fwd.apply(tbcd) == bytes.fromhex("911487095040f8")
    assert back.apply(fwd.apply(isup)) == isup and back.apply(fwd.apply(tbcd)) == tbcd


@pytest.mark.parametrize("bad", ["123=1234", "abc=def", "8613800138000", "12=34"])
def test_number_rewriter_refuses_what_it_cannot_do_safely(bad: str) -> None:
    with pytest.raises(ValueError):
        NumberRewriter([bad])


# ---------------------------------------------------------------------------------------------
# Filter
# ---------------------------------------------------------------------------------------------


def test_filter_terms() -> None:
    e = LadderDecoder().decode_transfer(xfer(CAMEL_BEGIN, opc=10, dpc=100))
    assert LadderFilter(["op=initialdp"]).match(e)
    assert LadderFilter(["initialDP,pc=100"]).match(e)
    assert LadderFilter(["number=41789005047", "tcap=begin", "protocol=cap"]).match(e)
    assert not LadderFilter(["tid=13b8"]).match(e)
    assert not LadderFilter(["dpc=10"]).match(e)
    assert LadderFilter(["tid=06f7", "ssn=146"]).match(e)
    for bad in (["colour=red"], ["pc=abc"]):
        with pytest.raises(ValueError):
            LadderFilter(bad)


# ---------------------------------------------------------------------------------------------
# Bad captures: warnings and a summary, never a traceback
# ---------------------------------------------------------------------------------------------


def _pcap(path: Path, linktype: int, records: list[bytes]) -> Path:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, r in enumerate(records):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(r), len(r)) + r)
    return path


def _all(path: Path) -> list[object]:
    return list(decode_capture(path))


def test_truncated_capture(tmp_path: Path) -> None:
    data = DEMO.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    out = _all(cut)
    assert any(isinstance(o, CaptureWarning) and "truncated" in o.reason for o in out)
    assert any(isinstance(o, LadderEntry) for o in out)


def test_unknown_link_type(tmp_path: Path) -> None:
    out = _all(_pcap(tmp_path / "lt.pcap", 147, [b"\x00" * 40]))
    assert out and all(isinstance(o, CaptureWarning) for o in out)
    assert "link type 147" in out[0].reason  # type: ignore[union-attr]


def test_garbage_payloads(tmp_path: Path) -> None:
    rnd = random.Random(7)
    p = tmp_path / "junk.pcap"
    w = SctpPcapWriter.open(str(p))
    for i in range(50):
        w.write(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 80))), ts=1.0 + i)
    # A valid M3UA DATA around SCCP garbage, and around SCCP with TCAP garbage.
    from scp.codecs import m3ua

    w.write(m3ua.encode_data(MtpTransfer(1, 2, 3, 2, 0, 0, b"\x09\x01\x03\x05")), ts=60.0)
    w.write(m3ua.encode_data(xfer(b"\x65\x03\x49\x01")), ts=61.0)
    w.close()
    out = _all(p)
    entries = [o for o in out if isinstance(o, LadderEntry)]
    assert len(entries) >= 2 and all(e.note for e in entries[-2:])


def _cli() -> click.Group:
    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.ensure_object(dict)

    main.add_command(replay)
    main.add_command(simulate)
    return main


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    r = CliRunner()
    main = _cli()
    not_pcap = tmp_path / "x.txt"
    not_pcap.write_text("hello")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    for args in (
        ["replay", str(tmp_path / "missing.pcap")],
        ["replay", str(not_pcap)],
        ["replay", str(empty)],
        ["replay", "--decode-only", "--filter", "colour=red", str(DEMO)],
        ["replay", "--rewrite-number", "12=345", str(DEMO)],
        ["replay", "--speed", "warp", str(DEMO)],
        ["replay", "--target", "nohost", str(DEMO)],
        ["replay", "--ssn", "200=isup", str(DEMO)],
        ["simulate", "no-such-scenario"],
        ["simulate"],
    ):
        res = r.invoke(main, args)
        assert res.exit_code == 2, (args, res.output)
        assert "error:" in res.output, (args, res.output)


def test_cli_decode_only_json_and_text(tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(_cli(), ["replay", "--decode-only", "--json", str(DEMO)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines()]
    assert lines[-1]["type"] == "summary" and lines[-1]["messages"] == 6
    names = [o["name"] for d in lines if d["type"] == "message" for o in d.get("ops", [])]
    assert names[:2] == ["initialDP", "requestReportBCSMEvent"]
    res = r.invoke(
        _cli(), ["replay", "--decode-only", "--filter", "op=alertServiceCentre", str(DEMO)]
    )
    # the HLR's invoke, and the SCP's answer: it carries the invoke ID alone (AlertServiceCentre
    # returns no value, Q.773 §3.2), named after the invoke it answers, which tshark cannot do
    assert res.exit_code == 0, res.output
    assert "[map] result:alertServiceCentre" in res.output, res.output
    assert res.output.count("alertServiceCentre") == 2, res.output
    assert "summary:" in res.output


def test_cli_truncated_capture_is_warnings_and_summary(tmp_path: Path) -> None:
    data = DEMO.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    res = CliRunner().invoke(_cli(), ["replay", "--decode-only", str(cut)])
    assert res.exit_code == 0, res.output
    assert "warning: frame" in res.output and "summary:" in res.output
    assert "Traceback" not in res.output


def test_simulate_list() -> None:
    res = CliRunner().invoke(_cli(), ["simulate", "--list"])
    assert res.exit_code == 0 and "not-reachable-then-present" in res.output


# ---------------------------------------------------------------------------------------------
# Fuzz
# ---------------------------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    from scp.tools.replay.ladder import LadderDecoder as _D  # noqa: F401

    out = [xfer(CAMEL_BEGIN).data, xfer(CAMEL_CONTINUE).data]
    for p in sorted((ROOT / "pcaps").glob("*.pcap")):
        from scp.tools.pcapread import read_capture

        for m in read_capture(str(p)):
            mt = getattr(m, "mtp3", None)
            if mt is not None and mt.si == 3:
                out.append(mt.data)
    return out


def test_fuzz_ladder_decoder_never_raises() -> None:
    rnd = random.Random(20261125)
    seeds = _seeds()
    dec = LadderDecoder()
    lines = JsonLines()
    n = 0
    for i in range(12_000):
        base = bytearray(rnd.choice(seeds))
        k = i % 4
        if k == 0:
            for _ in range(rnd.randrange(1, 6)):
                base[rnd.randrange(len(base))] = rnd.getrandbits(8)
        elif k == 1:
            base = base[: rnd.randrange(len(base))]
        elif k == 2:
            pos = rnd.randrange(len(base))
            base[pos:pos] = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 8)))
        else:
            base = bytearray(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 120)))
        e = dec.decode_transfer(MtpTransfer(1, 2, 3, 2, 0, 0, bytes(base)))
        format_entry(e)
        # The fast --json writer says exactly what entry_json says.
        assert json.loads(lines.line(e)) == json.loads(json.dumps(entry_json(e)))
        if e.tcap_data is not None:
            try:
                rewrite_tids(e.tcap_data, dtid=b"\x01\x02\x03\x04")
            except DecodeError:
                pass
        n += 1
    assert n >= 10_000


def _idp_params() -> list[bytes]:
    """Every InitialDP argument in the demo captures and the Wireshark CAMEL sample."""
    from scp.tools.pcapread import read_capture

    out = [tcap_codec.decode(CAMEL_BEGIN).components[0].parameter]  # type: ignore[index]
    for p in sorted((ROOT / "pcaps").glob("*.pcap")):
        for m in read_capture(str(p)):
            mt = getattr(m, "mtp3", None)
            if mt is None or mt.si != 3:
                continue
            t = tcap_codec.decode(sccp_codec.decode(mt.data).data)
            for c in t.components or ():
                if getattr(c, "opcode", None) == 0 and type(c).__name__ == "Invoke":
                    out.append(c.parameter)  # type: ignore[arg-type]
    return [p for p in out if p is not None]


def test_idp_fast_path_agrees_with_the_cap_codec() -> None:
    from scp.codecs import cap, ops
    from scp.codecs.numbers import (
        AddressString,
        CalledPartyNumber,
        CallingPartyNumber,
        RedirectingNumber,
    )
    from scp.tools.replay.ladder import idp_summary, op_fields

    params = _idp_params()
    rnd = random.Random(5)
    for _i in range(200):  # plus generated ones with every field the fast path reads
        idp = ops.InitialDP(
            service_key=rnd.randrange(0, 2**31),
            called_party_number=CalledPartyNumber(str(rnd.randrange(10**7, 10**14))),
            calling_party_number=CallingPartyNumber(str(rnd.randrange(10**5, 10**14))),
            calling_partys_category=rnd.choice([None, 10, 15]),
            location_number=rnd.choice([None, CallingPartyNumber("861012345")]),
            original_called_party_id=rnd.choice([None, RedirectingNumber("8613800138000")]),
            redirecting_party_id=rnd.choice([None, RedirectingNumber("8613811111111")]),
            event_type_bcsm=rnd.choice([2, 12, 13]),
            imsi=rnd.choice([None, "460001234567890"]),
            called_party_bcd_number=rnd.choice([None, AddressString("8613800138000")]),
        )
        params.append(cap.CODEC.encode_arg(idp, ac=(0, 4, 0, 0, 1, 0, 50, 1))[1])  # type: ignore[arg-type]
    fast = 0
    for p in params:
        quick = idp_summary(p)
        if quick is None:
            continue
        fast += 1
        assert quick == op_fields(cap.CODEC.decode_arg(0, p, ac=(0, 4, 0, 0, 1, 0, 50, 1))), p.hex()
    assert fast >= 200
    # Mutated arguments: the fast path either agrees with the codec or steps aside.
    for _i in range(3000):
        b = bytearray(rnd.choice(params))
        b[rnd.randrange(len(b))] = rnd.getrandbits(8)
        quick = idp_summary(bytes(b))
        if quick is None:
            continue
        try:
            full = op_fields(cap.CODEC.decode_arg(0, bytes(b), ac=(0, 4, 0, 0, 1, 0, 50, 1)))
        except DecodeError:
            continue  # the ladder shows what it can read; the codec is stricter
        assert quick == full, bytes(b).hex()
