"""Golden tests of the TCAP codec (Q.773): named messages with commented bytes, both ways.

Each case is checked four ways: our encoder gives the bytes, our decoder gives the value back,
pycrate's TCAP-CAP / TCAP-MAP ASN.1 modules read the same bytes to the same value and re-encode
them identically, and Wireshark decodes the message (wrapped in SCCP UDT + M3UA DATA) with no
malformed frame or expert error.
"""

from __future__ import annotations

from typing import Any

import pytest

from scp.codecs import ber, tcap
from scp.codecs.errors import EncodeError
from scp.codecs.tcap import Aare, Aarq, Abrt, Audt, MessageType, TcapMessage
from scp.primitives import Invoke, ProblemType, Reject, ReturnError, ReturnResult
from tests.helpers import h
from tests.unit.tcap_frames import assert_tshark_clean

CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)


# A CAP v2 InitialDP in a Begin: frame 1 of the Wireshark sample camel.pcap (MANIFEST #1).
IDP_PARAM = h("""
    30 57                                   # InitialDPArg SEQUENCE
      80 01 2a                              #   serviceKey 42
      83 08 84 11 14 87 09 50 40 f7         #   calledPartyNumber
      9c 01 02                              #   eventTypeBCSM collectedInfo
      9f 32 06 14 87 57 25 86 f9            #   iMSI
      bf 34 14 81 07 91 33 66 02 00 00 f0   #   locationInformation ...
               a3 09 80 07 31 32 33 34 35 36 37
      9f 36 05 a1 23 45 67 8f               #   callReferenceNumber
      9f 37 07 91 33 66 02 00 00 f0         #   mscAddress
      9f 38 07 11 14 87 08 50 40 f7         #   calledPartyBCDNumber
      9f 39 08 02 30 90 02 11 22 33 70      #   timeAndTimezone
""")

GOLDEN: list[tuple[str, TcapMessage, bytes]] = [
    (
        "begin_cap_initialdp",
        TcapMessage(
            MessageType.BEGIN,
            otid=bytes.fromhex("06f7"),
            dialogue=Aarq(CAP_V2),
            components=(Invoke(1, 0, IDP_PARAM),),
        ),
        h("""
            62 81 87                                # Begin, long-form length 135
              48 02 06 f7                           #   otid
              6b 1e                                 #   dialoguePortion
                28 1c                               #     EXTERNAL
                  06 07 00 11 86 05 01 01 01        #       dialogue-as-id
                  a0 11                             #       single-ASN1-type
                    60 0f                           #         AARQ
                      80 02 07 80                   #           protocol-version version1
                      a1 09 06 07 04 00 00 01 00 32 01  #       ACN CAP v2 gsmSSF-to-gsmSCF
              6c 61                                 #   componentPortion
                a1 5f                               #     Invoke
                  02 01 01                          #       invokeID 1
                  02 01 00                          #       opcode initialDP (0)
        """)
        + IDP_PARAM,
    ),
    (
        "continue_aare_rrbe",
        TcapMessage(
            MessageType.CONTINUE,
            otid=bytes.fromhex("00000001"),
            dtid=bytes.fromhex("06f7"),
            dialogue=Aare(CAP_V2),
            components=(Invoke(1, 23, h("300a a008 3006 80010d 810100")),),
        ),
        h("""
            65 4c                                   # Continue
              48 04 00 00 00 01                     #   otid (ours: worker 0)
              49 02 06 f7                           #   dtid (the switch's)
              6b 2a 28 28                           #   dialoguePortion, EXTERNAL
                06 07 00 11 86 05 01 01 01          #     dialogue-as-id
                a0 1d 61 1b                         #     AARE
                  80 02 07 80                       #       protocol-version
                  a1 09 06 07 04 00 00 01 00 32 01  #       ACN (echoed)
                  a2 03 02 01 00                    #       result accepted
                  a3 05 a1 03 02 01 00              #       dialogue-service-user null
              6c 14 a1 12                           #   Invoke
                02 01 01 02 01 17                   #     invokeID 1, RequestReportBCSMEvent
                30 0a a0 08 30 06 80 01 0d 81 01 00 #     bcsmEvents {tBusy, interrupted}
        """),
    ),
    (
        "end_continue",
        TcapMessage(MessageType.END, dtid=bytes.fromhex("06f7"), components=(Invoke(2, 31),)),
        h("""
            64 0e                                   # End
              49 02 06 f7                           #   dtid
              6c 08 a1 06                           #   Invoke
                02 01 02                            #     invokeID 2
                02 01 1f                            #     opcode continue (31), no argument
        """),
    ),
    (
        "abort_p_abort_unrecognized_tid",
        TcapMessage(MessageType.ABORT, dtid=bytes.fromhex("06f7"), p_abort_cause=1),
        h("""
            67 07                                   # Abort
              49 02 06 f7                           #   dtid
              4a 01 01                              #   P-AbortCause unrecognizedTransactionID
        """),
    ),
    (
        "abort_aare_acn_not_supported",
        TcapMessage(MessageType.ABORT, dtid=bytes.fromhex("06f7"), dialogue=Aare(CAP_V2, 1, 1, 2)),
        h("""
            67 30                                   # Abort
              49 02 06 f7                           #   dtid
              6b 2a 28 28 06 07 00 11 86 05 01 01 01 a0 1d
                61 1b                               #   AARE
                  80 02 07 80                       #     protocol-version
                  a1 09 06 07 04 00 00 01 00 32 01  #     the ACN we support
                  a2 03 02 01 01                    #     reject-permanent
                  a3 05 a1 03 02 01 02              #     user: application-context-name-not-supported
        """),
    ),
    (
        "abort_abrt_user",
        TcapMessage(MessageType.ABORT, dtid=bytes.fromhex("06f7"), dialogue=Abrt(0)),
        h("""
            67 18 49 02 06 f7                       # Abort, dtid
              6b 12 28 10 06 07 00 11 86 05 01 01 01 a0 05
                64 03 80 01 00                      #   ABRT abort-source dialogue-service-user
        """),
    ),
    (
        "continue_rejects",
        TcapMessage(
            MessageType.CONTINUE,
            otid=bytes.fromhex("00000001"),
            dtid=bytes.fromhex("06f7"),
            components=(
                Reject(None, ProblemType.GENERAL, 1, "remote"),
                Reject(5, ProblemType.INVOKE, 0, "remote"),
            ),
        ),
        h("""
            65 1b 48 04 00 00 00 01 49 02 06 f7     # Continue, otid, dtid
              6c 0f
                a4 05 05 00 80 01 01                #   Reject NULL id, general mistypedComponent
                a4 06 02 01 05 81 01 00             #   Reject id 5, invoke duplicateInvokeID
        """),
    ),
    (
        "end_results_and_error",
        TcapMessage(
            MessageType.END,
            dtid=bytes.fromhex("11"),
            components=(
                ReturnResult(1, 48, h("80 04 03 10 21 43")),
                ReturnError(2, 7),
                ReturnResult(3),
            ),
        ),
        h("""
            64 22 49 01 11                          # End, 1-octet dtid
              6c 1d
                a2 0e 02 01 01                      #   ReturnResultLast id 1
                  30 09 02 01 30                    #     {opcode PACUI (48),
                    80 04 03 10 21 43               #      digitsResponse}
                a3 06 02 01 02 02 01 07             #   ReturnError id 2, missingParameter (7)
                a2 03 02 01 03                      #   ReturnResultLast id 3, no result
        """),
    ),
    (
        "continue_result_not_last",
        TcapMessage(
            MessageType.CONTINUE,
            otid=b"\x01",
            dtid=b"\x02",
            components=(ReturnResult(1, 48, h("80 04 03 10 21 43"), last=False),),
        ),
        h("""
            65 18 48 01 01 49 01 02                 # Continue
              6c 10 a7 0e 02 01 01                  #   ReturnResultNotLast id 1
                30 09 02 01 30                      #     {opcode PACUI (48),
                  80 04 03 10 21 43                 #      digitsResponse}
        """),
    ),
    (
        "begin_global_opcode_linked",
        TcapMessage(
            MessageType.BEGIN,
            otid=bytes.fromhex("0a0b0c"),
            components=(Invoke(-1, (1, 2, 3), None, 7),),
        ),
        h("""
            62 13 48 03 0a 0b 0c                    # Begin, 3-octet otid, no dialogue
              6c 0c a1 0a
                02 01 ff                            #   invokeID -1
                80 01 07                            #   linkedID 7
                06 02 2a 03                         #   global opcode {1 2 3}
        """),
    ),
    (
        "unidirectional_audt",
        TcapMessage(MessageType.UNIDIRECTIONAL, dialogue=Audt(CAP_V2), components=(Invoke(1, 31),)),
        h("""
            61 2a                                   # Unidirectional
              6b 1e 28 1c
                06 07 00 11 86 05 01 02 01          #   uniDialogue-as-id
                a0 11 60 0f 80 02 07 80             #   AUDT, version1
                  a1 09 06 07 04 00 00 01 00 32 01
              6c 08 a1 06 02 01 01 02 01 1f         #   Invoke continue
        """),
    ),
]

IDS = [name for name, _, _ in GOLDEN]


@pytest.mark.parametrize(("name", "value", "wire"), GOLDEN, ids=IDS)
def test_golden_encode(name: str, value: TcapMessage, wire: bytes) -> None:
    assert tcap.encode(value).hex() == wire.hex()


@pytest.mark.parametrize(("name", "value", "wire"), GOLDEN, ids=IDS)
def test_golden_decode(name: str, value: TcapMessage, wire: bytes) -> None:
    assert tcap.decode(wire) == value


@pytest.mark.parametrize(("name", "value", "wire"), GOLDEN, ids=IDS)
def test_golden_matches_pycrate(name: str, value: TcapMessage, wire: bytes) -> None:
    assert pycrate_view(wire) == our_view(value)
    assert pycrate_reencode(wire) == wire


def test_golden_tshark_clean() -> None:
    assert_tshark_clean(wire for _, _, wire in GOLDEN)


# -- results without a value: strict when we send, lenient when we read -----------------------

# (what the TC-user hands over, the component on the wire)
RESULTS_WITHOUT_VALUE = [
    (ReturnResult(1, 64), "a2 03 02 01 01"),  # AlertServiceCentre v2: RETURN RESULT TRUE
    (ReturnResult(2, 55), "a2 03 02 01 02"),  # CAP / INAP ActivityTest
    (ReturnResult(3, 66), "a2 03 02 01 03"),  # ReadyForSM v2: no result type
    (ReturnResult(4), "a2 03 02 01 04"),  # no opcode named at all
    (ReturnResult(5, 64, b""), "a2 03 02 01 05"),  # an empty parameter is no parameter
    (ReturnResult(6, 64, last=False), "a7 03 02 01 06"),  # ReturnResultNotLast likewise
]


@pytest.mark.parametrize(
    ("value", "wire"), RESULTS_WITHOUT_VALUE, ids=[w for _, w in RESULTS_WITHOUT_VALUE]
)
def test_result_without_value_is_the_invoke_id_alone(value: ReturnResult, wire: str) -> None:
    # Q.773 §3.2: ``result`` is SEQUENCE { opcode, parameter } with the parameter mandatory,
    # so without a value the whole sequence is left out.
    assert tcap.encode_component(value).hex() == h(wire).hex()
    assert tcap.decode(
        tcap.encode(TcapMessage(MessageType.END, dtid=b"\x01", components=(value,)))
    ).components == (ReturnResult(value.invoke_id, None, None, value.last),)


def test_peer_result_with_opcode_and_no_parameter_is_accepted() -> None:
    # A lenient HLR may answer AlertServiceCentre with result { opcode 64 } and nothing else:
    # we read it (the opcode kept, no parameter) and never send it that way.
    wire = h("""
        64 12 49 04 00 00 00 01                     # End, dtid
          6c 0a a2 08 02 01 01                      #   ReturnResultLast id 1
            30 03 02 01 40                          #     {opcode 64, no parameter}
    """)
    got = tcap.decode(wire)
    assert got.bad_components == ()
    assert got.components == (ReturnResult(1, 64, None),)
    assert tcap.encode(got).hex() == h("64 0d 49 04 00 00 00 01 6c 05 a2 03 02 01 01").hex()


def test_result_parameter_without_opcode_is_refused() -> None:
    with pytest.raises(EncodeError):
        tcap.encode_component(ReturnResult(1, None, b"\x30\x00"))


# -- pycrate as an independent decoder ---------------------------------------------------------


def _pycrate_messages() -> list[Any]:
    from pycrate_asn1dir import TCAP_CAP, TCAP_MAPv2v3

    return [
        TCAP_CAP.TCAP_CAP_Messages.TCAP_CAP_Message,
        TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message,
    ]


def _pycrate_decode(data: bytes) -> tuple[Any, Any] | None:
    for m in _pycrate_messages():
        try:
            m.from_ber(data)
            return m, m.get_val()
        except Exception:
            continue
    return None


def pycrate_reencode(data: bytes) -> bytes | None:
    got = _pycrate_decode(data)
    return got[0].to_ber() if got else None


_PROBLEMS = {"general": 0, "invoke": 1, "returnResult": 2, "returnError": 3}
_DIALOGUE = {
    "dialogueRequest": "aarq",
    "dialogueResponse": "aare",
    "dialogueAbort": "abrt",
    "unidialoguePDU": "audt",
}


def _code(v: tuple[str, Any]) -> Any:
    return v[1]


def pycrate_view(data: bytes) -> tuple[Any, ...] | None:
    """The fields both decoders know, as pycrate sees them (None if pycrate cannot decode)."""
    got = _pycrate_decode(data)
    if got is None:
        return None
    kind, body = got[1]
    dialogue = None
    p_abort = None
    dp = body.get("dialoguePortion")
    if kind == "abort" and "reason" in body:
        alt, r = body["reason"]
        if alt == "p-abortCause":
            p_abort = r
        else:
            dp = r
    if dp is not None:
        _, (_, (pdu_kind, pdu)) = dp["encoding"]
        k = _DIALOGUE[pdu_kind]
        if k == "abrt":
            dialogue = ("abrt", pdu["abort-source"])
        elif k == "aare":
            src, diag = pdu["result-source-diagnostic"]
            dialogue = (
                "aare",
                tuple(pdu["application-context-name"]),
                pdu["result"],
                1 if src == "dialogue-service-user" else 2,
                diag,
            )
        else:
            dialogue = (k, tuple(pdu["application-context-name"]))
    comps = []
    for c in body.get("components", []):
        alt, v = c
        if alt == "basicROS":
            alt, v = v
        iid = v["invokeId"][1] if v["invokeId"][0] == "present" else None
        if alt == "invoke":
            linked = v["linkedId"][1] if "linkedId" in v else None
            comps.append(("invoke", iid, linked, _code(v["opcode"]), "argument" in v))
        elif alt in ("returnResult", "returnResultNotLast"):
            res = v.get("result")
            comps.append(
                (
                    "rr",
                    iid,
                    alt == "returnResult",
                    _code(res["opcode"]) if res else None,
                    res is not None and "result" in res,
                )
            )
        elif alt == "returnError":
            comps.append(("re", iid, _code(v["errcode"]), "parameter" in v))
        else:
            pt, code = v["problem"]
            comps.append(("reject", iid, _PROBLEMS[pt], code))
    return (kind, body.get("otid"), body.get("dtid"), dialogue, p_abort, comps)


def our_view(msg: TcapMessage) -> tuple[Any, ...]:
    """The same fields as :func:`pycrate_view`, from our decoded value."""
    d = msg.dialogue
    dialogue: tuple[Any, ...] | None
    if d is None:
        dialogue = None
    elif type(d) is Abrt:
        dialogue = ("abrt", d.abort_source)
    elif type(d) is Aare:
        dialogue = ("aare", d.application_context, d.result, d.diagnostic_source, d.diagnostic)
    else:
        assert isinstance(d, Aarq | Audt)
        dialogue = ("aarq" if type(d) is Aarq else "audt", d.application_context)
    comps: list[tuple[Any, ...]] = []
    for c in msg.components or ():
        if type(c) is Invoke:
            comps.append(("invoke", c.invoke_id, c.linked_id, c.opcode, c.parameter is not None))
        elif type(c) is ReturnResult:
            comps.append(("rr", c.invoke_id, c.last, c.opcode, c.parameter is not None))
        elif type(c) is ReturnError:
            comps.append(("re", c.invoke_id, c.error_code, c.parameter is not None))
        else:
            assert isinstance(c, Reject)
            comps.append(("reject", c.invoke_id, int(c.problem_type), c.problem_code))
    names = {0x61: "unidirectional", 0x62: "begin", 0x64: "end", 0x65: "continue", 0x67: "abort"}
    return (names[msg.message_type], msg.otid, msg.dtid, dialogue, msg.p_abort_cause, comps)


# -- decoding variants the sender may choose ---------------------------------------------------


def test_indefinite_and_long_form_lengths_accepted() -> None:
    # end_continue with the message, component portion and Invoke in the indefinite form and
    # the dtid with a long-form length: same value as the definite shortest form.
    wire = h("""
        64 80                                       # End, indefinite
          49 81 02 06 f7                            #   dtid, long-form length
          6c 80 a1 80 02 01 02 02 01 1f 00 00 00 00 #   components, indefinite
        00 00
    """)
    assert tcap.decode(wire) == GOLDEN[2][1]


def test_parameter_kept_verbatim_even_indefinite() -> None:
    param = h("30 80 80 01 2a 00 00")  # InitialDPArg {serviceKey 42}, indefinite
    wire = tcap.encode(
        TcapMessage(MessageType.BEGIN, otid=b"\x01", components=(Invoke(1, 0, param),))
    )
    assert tcap.decode(wire).components == (Invoke(1, 0, param),)


def test_user_information_kept_as_raw_external() -> None:
    # MAP-OPEN style user-information: one EXTERNAL, kept and re-emitted byte for byte.
    ui = h("28 0f 06 08 04 00 00 01 01 01 01 00 a0 03 a0 01 00")
    msg = TcapMessage(
        MessageType.BEGIN,
        otid=b"\x01\x02\x03\x04",
        dialogue=Aarq((0, 4, 0, 0, 1, 0, 20, 3), ui),
        components=(),
    )
    wire = tcap.encode(msg)
    assert tcap.decode(wire) == msg
    assert pycrate_view(wire) is not None


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "portion", "otid", "dtid"),
    [
        (h("63 06 48 04 01 02 03 04"), "message_type", b"\x01\x02\x03\x04", None),
        (h("62 06 48 05 01 02 03 04 05"), "transaction", None, None),  # otid too long, overrun
        (h("62 07 48 05 01 02 03 04 05"), "transaction", None, None),  # otid of 5 octets
        (h("62 08 48 02 01 02 49 02 01 02"), "transaction", b"\x01\x02", None),  # dtid in Begin
        (h("65 04 48 02 01 02"), "transaction", b"\x01\x02", None),  # Continue without dtid
        (
            h("62 10 48 02 01 02 6b 0a 28 08 06 06 01 02 03 04 05 06"),
            "dialogue",
            b"\x01\x02",
            None,
        ),  # unknown dialogue abstract syntax
        (h("64"), "transaction", None, None),
        (b"", "transaction", None, None),
    ],
    ids=[
        "unknown_type",
        "overrun",
        "long_otid",
        "dtid_in_begin",
        "continue_no_dtid",
        "bad_dialogue_as",
        "truncated",
        "empty",
    ],
)
def test_decode_errors(wire: bytes, portion: str, otid: bytes | None, dtid: bytes | None) -> None:
    with pytest.raises(tcap.TcapDecodeError) as exc:
        tcap.decode(wire)
    e = exc.value
    assert (e.layer, e.portion, e.otid, e.dtid) == ("tcap", portion, otid, dtid)
    assert isinstance(e.offset, int)


@pytest.mark.parametrize(
    ("components", "invoke_id", "code"),
    [
        (h("a5 03 02 01 05"), 5, 0),  # unknown component tag: unrecognizedComponent
        (h("a1 03 02 01 05"), 5, 1),  # Invoke without opcode: mistypedComponent
        (h("a1 06 04 01 05 02 01 00"), None, 1),  # invokeID is an OCTET STRING
        (h("a1 09 02 02 01 00 02 01 00 30 00"), None, 1),  # invokeID out of -128..127
        (h("a2 07 02 01 05 30 02 02 05"), 5, 2),  # inner length overruns: badly structured
        (h("a1 09 02 01 05"), None, 2),  # component length overruns the portion
    ],
    ids=["unrecognized", "no_opcode", "id_not_integer", "id_range", "inner_overrun", "overrun"],
)
def test_bad_component_is_reported_not_raised(
    components: bytes, invoke_id: int | None, code: int
) -> None:
    good = h("a1 06 02 01 01 02 01 1f")
    portion = ber.tlv(0x6C, good + components)
    wire = ber.tlv(0x65, h("48 01 01 49 01 02") + portion)
    msg = tcap.decode(wire)
    assert msg.components == (Invoke(1, 31),)
    (bad,) = msg.bad_components
    assert (bad.invoke_id, bad.problem_type, bad.problem_code) == (
        invoke_id,
        ProblemType.GENERAL,
        code,
    )


def test_p_abort_cause_mapping() -> None:
    e1 = tcap.TcapDecodeError(0, "x", portion="message_type")
    e2 = tcap.TcapDecodeError(0, "x", portion="transaction")
    assert tcap.p_abort_cause_for(e1) == 0 and tcap.p_abort_cause_for(e2) == 2


def test_decode_tids_best_effort() -> None:
    assert tcap.decode_tids(h("65 7f 48 04 01 02 03 04 49 02 0a 0b")) == (
        0x65,
        b"\x01\x02\x03\x04",
        b"\x0a\x0b",
    )
    assert tcap.decode_tids(b"") == (None, None, None)
    assert tcap.decode_tids(b"\x65") == (0x65, None, None)


# -- BER helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**31 - 1, -(2**31)])
def test_ber_integer_roundtrip(value: int) -> None:
    enc = ber.encode_integer(value)
    assert ber.decode_integer(enc, 0, len(enc)) == value
    assert enc == value.to_bytes(len(enc), "big", signed=True)
    assert len(enc) == 1 or enc[0] not in (0x00, 0xFF) or (enc[0] ^ enc[1]) & 0x80


@pytest.mark.parametrize(
    "arcs",
    [
        (0, 4, 0, 0, 1, 0, 50, 1),
        (0, 0, 17, 773, 1, 1, 1),
        (1, 2, 826, 0, 1249, 51, 1, 1, 1, 0, 1),
        (2, 999, 3),
    ],
)
def test_ber_oid_roundtrip(arcs: tuple[int, ...]) -> None:
    enc = ber.encode_oid(arcs)
    assert ber.decode_oid(enc, 0, len(enc)) == arcs


@pytest.mark.parametrize("n", [0, 1, 127, 128, 255, 256, 65535, 65536])
def test_ber_length_shortest(n: int) -> None:
    enc = ber.tlv(0x04, bytes(n))
    tag, vs, ve, nxt = ber.read_tlv(enc, 0, len(enc))
    assert (tag, ve - vs, nxt) == (0x04, n, len(enc))
    assert vs == 2 if n < 128 else vs == 2 + (n.bit_length() + 7) // 8


def test_ber_high_tag_number() -> None:
    enc = ber.tlv(0x9F38, b"\x01")  # [56] primitive, as in InitialDP's calledPartyBCDNumber
    assert enc == h("9f 38 01 01")
    assert ber.read_tlv(enc, 0, len(enc)) == (0x9F38, 3, 4, 4)


@pytest.mark.parametrize(
    "wire",
    [
        h("04 80 00 00"),
        h("30 80 02 01 01"),
        h("30 85 00 00 00 00 01"),
        h("1f"),
        h("1f 81"),
        h("30 80" * 40 + "00 00" * 40),
    ],
    ids=[
        "indef_primitive",
        "no_eoc",
        "len_5_octets",
        "truncated_tag",
        "truncated_high_tag",
        "too_deep",
    ],
)
def test_ber_errors(wire: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.read_tlv(wire, 0, len(wire))


def test_frames_of_the_tcap_tests_decode_as_tcap() -> None:
    # The framing every TCAP test hands Wireshark (tests/unit/tcap_frames.py): End, basic,
    # Invoke continue (CAP opcode 31), the smallest useful CAP message.
    assert_tshark_clean([bytes.fromhex("640e490206f76c08a10602010202011f")])


def test_empty_user_information_survives_a_round_trip() -> None:
    # Found by the shared fuzz mutator (tests/helpers.py): an AARQ with user-information [30]
    # present and empty. Decode -> encode -> decode must give the same value.
    data = h("""
        62 2a                                   # Begin
          48 04 2f 3b 46 02                     #   otid
          6b 20                                 #   dialoguePortion
            28 1e                               #     EXTERNAL
              06 07 00 11 86 05 01 01 01        #       dialogue-as-id
              a0 13                             #       single-ASN1-type
                60 11                           #         AARQ
                  80 02 07 80                   #           protocol-version
                  a1 09 06 07 04 00 00 01 00 13 02  # application-context-name
                  be 00                         #           user-information, empty
          6c 00                                 #   components: none
    """)
    msg = tcap.decode(data)
    assert tcap.decode(tcap.encode(msg)) == msg
