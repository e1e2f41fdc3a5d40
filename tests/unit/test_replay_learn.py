"""Replay learns from a capture which protocol each subsystem carries (scp/tools/replay/ladder.py).

Captures from the network start mid-call: a Continue whose Begin is not in the file names no
application context. Each case below is a small capture written here (M3UA DATA in SCTP), so
the point codes, SSNs and transaction IDs that teach the table are visible in the test:
what an application context shows is learned per point code + SSN, SSN, and (weaker) point
code or GT; transaction-ID correlation teaches too; ``--ssn`` overrides; a subsystem seen with
two protocols teaches nothing; the table stays small; the first pass runs only when needed.
"""

from __future__ import annotations

from pathlib import Path

from scp.adapters.capture import SctpPcapWriter
from scp.codecs import cap as cap_codec
from scp.codecs import inap as inap_codec
from scp.codecs import m3ua, ops
from scp.codecs import sccp as sccp_codec
from scp.codecs import tcap as tcap_codec
from scp.codecs.numbers import Cause
from scp.codecs.opcodec import OperationCodec
from scp.primitives import Invoke, MtpTransfer, RoutingIndicator, SccpAddress
from scp.tools.replay.ladder import LadderDecoder, LadderEntry, LearnedProtocols, decode_capture

ROOT = Path(__file__).resolve().parents[2]
INAP_CS1 = (0, 4, 0, 1, 1, 1, 0, 0)  # ETSI Core INAP CS-1 SSF-to-SCF
CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)
MAP_SRI_SM_V3 = (0, 4, 0, 0, 1, 0, 20, 3)


def _release(codec: OperationCodec, ac: tuple[int, ...]) -> Invoke:
    code, param = codec.encode_arg(ops.ReleaseCall(Cause(16)), ac=ac)
    return Invoke(1, code, param, op_class=2)


def _rrbe(codec: OperationCodec, ac: tuple[int, ...]) -> Invoke:
    arg = ops.RequestReportBCSMEvent((ops.BCSMEvent(13, 0, ops.LegID(2)),))
    code, param = codec.encode_arg(arg, ac=ac)
    return Invoke(1, code, param, op_class=2)


def tcap(
    kind: str,
    *,
    otid: bytes | None = None,
    dtid: bytes | None = None,
    ac: tuple[int, ...] | None = None,
    comps: tuple[Invoke, ...] = (),
) -> bytes:
    mt = {
        "begin": tcap_codec.MessageType.BEGIN,
        "continue": tcap_codec.MessageType.CONTINUE,
        "end": tcap_codec.MessageType.END,
    }[kind]
    dialogue = None
    if ac is not None:
        dialogue = tcap_codec.Aarq(ac) if kind == "begin" else tcap_codec.Aare(ac)
    return tcap_codec.encode(
        tcap_codec.TcapMessage(mt, otid=otid, dtid=dtid, dialogue=dialogue, components=comps)
    )


def write(path: Path, messages: list[tuple[int, int, int, int, bytes]]) -> Path:
    """(OPC, DPC, called SSN, calling SSN, TCAP) per frame, SCCP UDT routed on SSN."""
    w = SctpPcapWriter.open(str(path))
    for i, (opc, dpc, cd_ssn, cg_ssn, t) in enumerate(messages):
        udt = sccp_codec.Udt(
            called=SccpAddress(ri=RoutingIndicator.SSN, pc=dpc, ssn=cd_ssn),
            calling=SccpAddress(ri=RoutingIndicator.SSN, pc=opc, ssn=cg_ssn),
            data=t,
        )
        x = MtpTransfer(opc=opc, dpc=dpc, si=3, ni=2, mp=0, sls=0, data=sccp_codec.encode(udt))
        w.write(m3ua.encode_data(x, rc=1), ts=1_000.0 + i)
    w.close()
    return path


def entries(path: Path, dec: LadderDecoder | None = None) -> dict[int, LadderEntry]:
    return {
        e.frame: e
        for e in decode_capture(path, dec or LadderDecoder())
        if isinstance(e, LadderEntry)
    }


def test_a_subsystem_learned_from_its_dialogues_beats_the_standard_ssn(tmp_path: Path) -> None:
    # SSN 6 is an HLR (MAP) by TS 23.003, but this network's SCF sits on 6 and speaks INAP:
    #   #1 SSF pc 10 ssn 12 -> SCF pc 20 ssn 6  Begin  AC INAP CS-1, RRBE
    #   #2 SCF pc 20 ssn 6  -> SSF pc 10 ssn 12 End    (no AC: its Begin is not in the file)
    #      ReleaseCall, opcode 22 (sendRoutingInfo if read as MAP)
    p = write(
        tmp_path / "inap-on-6.pcap",
        [
            (
                10,
                20,
                6,
                12,
                tcap(
                    "begin", otid=b"\x01", ac=INAP_CS1, comps=(_rrbe(inap_codec.CODEC, INAP_CS1),)
                ),
            ),
            (
                20,
                10,
                12,
                6,
                tcap("end", dtid=b"\x77", comps=(_release(inap_codec.CODEC, INAP_CS1),)),
            ),
        ],
    )
    e = entries(p)[2]
    assert (e.protocol, e.ops[0].name, e.ops[0].fields) == ("inap", "releaseCall", {"cause": 16})
    assert e.protocol_from == "learned from pc 10 ssn 12"
    assert "inap learned from pc 10 ssn 12" in (e.note or "")
    # Without the file's own evidence the standard assignment reads it as MAP.
    raw = {
        x.frame: x
        for x in decode_capture(p, LadderDecoder(), learn=False)
        if isinstance(x, LadderEntry)
    }[2]
    assert (raw.protocol, raw.ops[0].name, raw.protocol_from) == ("map", "sendRoutingInfo", "ssn 6")
    # --ssn still decides when given.
    forced = entries(p, LadderDecoder({12: "map"}))[2]
    assert (forced.protocol, forced.protocol_from) == ("map", "--ssn 12")


def test_transaction_ids_teach_the_subsystem_of_the_answering_side(tmp_path: Path) -> None:
    # The SCP answers from SSN 250 (its Continue carries no AC, only the dtid of the Begin);
    # a later dialogue on SSN 250 from another point code is CAP by what that taught.
    #   #1 MSC pc 10 ssn 146 -> SCP pc 20 ssn 146 Begin  otid 0a AC CAP v2
    #   #2 SCP pc 20 ssn 250 -> MSC pc 10 ssn 146 Continue otid 0b dtid 0a (no dialogue portion)
    #   #3 pc 31 ssn 250 -> pc 32 ssn 251          End dtid 99 ReleaseCall
    p = write(
        tmp_path / "tid.pcap",
        [
            (
                10,
                20,
                146,
                146,
                tcap("begin", otid=b"\x0a", ac=CAP_V2, comps=(_rrbe(cap_codec.CODEC, CAP_V2),)),
            ),
            (
                20,
                10,
                146,
                250,
                tcap(
                    "continue", otid=b"\x0b", dtid=b"\x0a", comps=(_rrbe(cap_codec.CODEC, CAP_V2),)
                ),
            ),
            (
                31,
                32,
                251,
                250,
                tcap("end", dtid=b"\x99", comps=(_release(cap_codec.CODEC, CAP_V2),)),
            ),
        ],
    )
    got = entries(p)
    assert got[2].protocol_from == "tid"
    assert (got[3].protocol, got[3].ops[0].name) == ("cap", "releaseCall")
    assert got[3].protocol_from == "learned from ssn 250"


def test_a_subsystem_seen_with_two_protocols_teaches_nothing(tmp_path: Path) -> None:
    #   #1 pc 10 ssn 200 -> pc 20 ssn 200  Begin AC CAP v2
    #   #2 pc 11 ssn 200 -> pc 21 ssn 200  Begin AC MAP shortMsgGateway v3
    #   #3 pc 40 ssn 200 -> pc 41 ssn 200  End, no AC: SSN 200 is ambiguous, pcs 40/41 unknown
    #   #4 pc 20 ssn 200 -> pc 10 ssn 200  End, no AC: pc 10 + ssn 200 saw only CAP
    end = tcap("end", dtid=b"\x55", comps=(_release(cap_codec.CODEC, CAP_V2),))
    p = write(
        tmp_path / "ambiguous.pcap",
        [
            (10, 20, 200, 200, tcap("begin", otid=b"\x01", ac=CAP_V2)),
            (11, 21, 200, 200, tcap("begin", otid=b"\x02", ac=MAP_SRI_SM_V3)),
            (40, 41, 200, 200, end),
            (20, 10, 200, 200, end),
        ],
    )
    got = entries(p)
    assert got[3].protocol is None and got[3].ops[0].name == "22"
    assert (got[4].protocol, got[4].protocol_from) == ("cap", "learned from pc 10 ssn 200")
    table = LearnedProtocols()
    dec = LadderDecoder()
    dec.observer = table
    list(decode_capture(p, dec, learn=False))
    assert table.table() == {"200": "ambiguous"}


def test_the_table_stays_small() -> None:
    table = LearnedProtocols(max_keys=50)
    for i in range(1000):  # a thousand end points (GTs) in a big capture
        head = (i, 0.0, 1, 2, "UDT", 146, 146, f"86138{i:06d}", f"86139{i:06d}")
        table.observe(head, "cap", CAP_V2)  # type: ignore[arg-type]
    assert len(table) == 50
    hit = table.resolve((0, 0.0, 7, 8, "UDT", 146, None, None, None), strong=True)
    assert hit is not None and hit[0] == "cap"


def test_the_first_pass_runs_only_when_a_message_needs_it(tmp_path: Path) -> None:
    demo = LadderDecoder()
    list(decode_capture(ROOT / "pcaps" / "demo-missed-call.pcap", demo))
    assert demo.learned is None  # every dialogue named its context: no second read
    p = write(
        tmp_path / "midcall.pcap",
        [
            (10, 20, 200, 152, tcap("begin", otid=b"\x01", ac=CAP_V2)),
            (
                20,
                10,
                152,
                200,
                tcap("end", dtid=b"\x09", comps=(_release(cap_codec.CODEC, CAP_V2),)),
            ),
        ],
    )
    dec = LadderDecoder()
    got = {e.frame: e for e in decode_capture(p, dec) if isinstance(e, LadderEntry)}
    assert dec.learned is not None and dec.learned.table() == {"152": "cap", "200": "cap"}
    assert got[2].ops[0].name == "releaseCall"
