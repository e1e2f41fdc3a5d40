"""CAP v2/v3/v4 codec tests: golden bytes, round trips, pycrate cross-check, real capture, tshark."""

from __future__ import annotations

import datetime as dt

import pytest

from scp.codecs import appctx, cap, ops
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    RedirectingNumber,
    TimeAndTimezone,
)
from tests import tshark
from tests.unit.codec_frames import (
    PCAPS,
    components_from_pcap,
    invoke,
    result_last,
    return_error,
    wrap,
)

V2, V3, V4 = appctx.CAP_V2_GSMSSF_SCF, appctx.CAP_V3_GSMSSF_SCF, appctx.CAP_V4_GSMSSF_SCF
SRF_V2 = appctx.CAP_V2_GSMSRF_SCF
IVR = CalledPartyNumber("8613800999", nai=4)

IDP = ops.InitialDP(
    service_key=100,
    called_party_number=CalledPartyNumber("8613912345678", nai=4),
    calling_party_number=CallingPartyNumber("8613700000001"),
    calling_partys_category=10,
    event_type_bcsm=ops.EventTypeBCSM.TERM_ATTEMPT_AUTHORIZED,
    redirecting_party_id=RedirectingNumber("8613900000000"),
    original_called_party_id=RedirectingNumber("8613900000001"),
    redirection_information=b"\x04\x11",
    imsi="460001234567890",
    call_reference_number=b"\x01\x02\x03\x04",
    msc_address=AddressString("8613800001"),
    called_party_bcd_number=AddressString("13912345678", nai=2),
    time_and_timezone=TimeAndTimezone(dt.datetime(2026, 11, 25, 18, 5, 9), 32),
    cause=Cause(17),
    extra={"bearerCapability": ("bearerCap", b"\x80\x90\xa3")},
)
RRBE = ops.RequestReportBCSMEvent(
    (
        ops.BCSMEvent(13, ops.MonitorMode.INTERRUPTED, ops.LegID(2, sending=True)),
        ops.BCSMEvent(
            14, ops.MonitorMode.INTERRUPTED, ops.LegID(2, sending=True), application_timer=30
        ),
        ops.BCSMEvent(15, ops.MonitorMode.NOTIFY_AND_CONTINUE, ops.LegID(2, sending=True)),
        ops.BCSMEvent(18, ops.MonitorMode.NOTIFY_AND_CONTINUE, ops.LegID(1, sending=True)),
    )
)
ERB_BUSY = ops.EventReportBCSM(
    13, ops.EventSpecificInfo("tBusySpecificInfo", Cause(20, location=4)), ops.LegID(2), 0
)
ERB_NOANSWER = ops.EventReportBCSM(
    14, ops.EventSpecificInfo("tNoAnswerSpecificInfo", None, {"callForwarded": 0}), ops.LegID(2), 0
)
CONNECT = ops.Connect(
    (IVR,),
    original_called_party_id=RedirectingNumber("8613912345678"),
    redirecting_party_id=RedirectingNumber("8613912345678"),
    redirection_information=b"\x04\x11",
    generic_numbers=(GenericNumber("8613912345678", nqi=6),),
    suppression_of_announcement=True,
    ocsi_applicable=True,
)
ITS = ops.InformationToSend(message_ids=(10,), number_of_repetitions=2, duration=10, interval=1)
PACUI = ops.PromptAndCollectUserInformation(
    ops.CollectedDigits(
        maximum_nb_of_digits=1,
        minimum_nb_of_digits=1,
        end_of_reply_digit=b"#",
        first_digit_timeout=10,
        inter_digit_timeout=5,
        error_treatment=2,
        interruptable_ann_ind=True,
    ),
    ITS,
    disconnect_from_ip_forbidden=False,
)

# (name, op, application contexts it is valid in)
CASES: list[tuple[str, ops.Operation, tuple[tuple[int, ...], ...]]] = [
    ("InitialDP", IDP, (V2, V3, V4)),
    ("RequestReportBCSMEvent", RRBE, (V2, V3, V4)),
    ("EventReportBCSM busy", ERB_BUSY, (V2, V3, V4)),
    ("EventReportBCSM no answer", ERB_NOANSWER, (V2, V3, V4)),
    ("EventReportBCSM answer notify", ops.EventReportBCSM(15, None, ops.LegID(2), 1), (V2, V4)),
    ("Continue", ops.Continue(), (V2, V3, V4)),
    ("ContinueWithArgument", ops.ContinueWithArgument(alerting_pattern=b"\x00\x00\x01"), (V3, V4)),
    ("Connect", CONNECT, (V2, V3, V4)),
    ("ReleaseCall", ops.ReleaseCall(Cause(31, location=3)), (V2, V3, V4)),
    ("ConnectToResource ip", ops.ConnectToResource(IVR), (V2, V4)),
    ("ConnectToResource none", ops.ConnectToResource(None), (V2, V4)),
    (
        "EstablishTemporaryConnection",
        ops.EstablishTemporaryConnection(
            GenericNumber("8613800999", nqi=0x01), GenericDigits("1234"), b"\x01\x02"
        ),
        (V2, V4),
    ),
    ("DisconnectForwardConnection", ops.DisconnectForwardConnection(), (V2, V4)),
    (
        "AssistRequestInstructions",
        ops.AssistRequestInstructions(GenericDigits("1234"), b"\x02"),
        (appctx.CAP_V2_ASSIST, SRF_V2),
    ),
    ("PlayAnnouncement", ops.PlayAnnouncement(ITS), (SRF_V2, V4)),
    (
        "PlayAnnouncement tone",
        ops.PlayAnnouncement(ops.InformationToSend(tone_id=3, tone_duration=5), True, False),
        (SRF_V2,),
    ),
    ("PlayAnnouncement text", ops.PlayAnnouncement(ops.InformationToSend(text="hello")), (V4,)),
    (
        "PlayAnnouncement ids",
        ops.PlayAnnouncement(ops.InformationToSend(message_ids=(1, 2, 3))),
        (V4,),
    ),
    ("PromptAndCollectUserInformation", PACUI, (SRF_V2, V3, V4)),
    ("SpecializedResourceReport", ops.SpecializedResourceReport(), (SRF_V2, V3, V4)),
    ("SpecializedResourceReport started", ops.SpecializedResourceReport(True), (V4,)),
    ("ApplyCharging", ops.ApplyCharging(36000, True, 600, None, ops.LegID(1, True)), (V2, V3, V4)),
    (
        "ApplyCharging tone",
        ops.ApplyCharging(1200, True, None, True, ops.LegID(1, True)),
        (V2, V3, V4),
    ),
    (
        "ApplyChargingReport",
        ops.ApplyChargingReport(
            ops.LegID(1), ops.TimeInformation(time_if_no_tariff_switch=26), False
        ),
        (V2, V3, V4),
    ),
    (
        "ApplyChargingReport tariff switch",
        ops.ApplyChargingReport(ops.LegID(2), ops.TimeInformation(None, 30, 600), True, True),
        (V2, V4),
    ),
    (
        "CallInformationRequest",
        ops.CallInformationRequest((0, 1, 2, 30), ops.LegID(2, True)),
        (V2, V4),
    ),
    (
        "CallInformationReport",
        ops.CallInformationReport(
            (
                ops.RequestedInformation(0, 12),
                ops.RequestedInformation(1, bytes.fromhex("02621152815090")),
                ops.RequestedInformation(2, 7),
                ops.RequestedInformation(30, Cause(16)),
            ),
            ops.LegID(2),
        ),
        (V2, V4),
    ),
    # fCIBCCCAMELsequence1 { freeFormatData 01 02 03 }
    (
        "FurnishChargingInformation",
        ops.FurnishChargingInformation(bytes.fromhex("a0 05 80 03 01 02 03")),
        (V2, V4),
    ),
    # aOCBeforeAnswer { aOCInitial { e1 1 } }
    (
        "SendChargingInformation",
        ops.SendChargingInformation(bytes.fromhex("a0 05 a0 03 80 01 01"), ops.LegID(2, True)),
        (V2, V4),
    ),
    ("ResetTimer", ops.ResetTimer(60), (V2, V3, V4)),
    ("Cancel invoke", ops.Cancel(invoke_id=3), (V2, V4)),
    ("Cancel all", ops.Cancel(all_requests=True), (SRF_V2,)),
    ("ActivityTest", ops.ActivityTest(), (V2, V4)),
    (
        "InitiateCallAttempt",
        ops.InitiateCallAttempt((IVR,), CallingPartyNumber("8613800000")),
        (V4,),
    ),
]


@pytest.mark.parametrize("name,op,acs", CASES, ids=[c[0] for c in CASES])
def test_round_trip(name: str, op: ops.Operation, acs: tuple[tuple[int, ...], ...]) -> None:
    for ac in acs:
        code, param = cap.CODEC.encode_arg(op, ac=ac)
        assert cap.CODEC.opcode_names[code]  # a known opcode
        assert cap.CODEC.decode_arg(code, param, ac=ac) == op, (name, ac)
        # ...and the encoding is stable.
        assert cap.CODEC.encode_arg(cap.CODEC.decode_arg(code, param, ac=ac), ac=ac) == (
            code,
            param,
        )


GOLDEN: list[tuple[str, ops.Operation, tuple[int, ...], int, bytes | None]] = [
    ("Continue", ops.Continue(), V2, 31, None),
    (
        "ReleaseCall cause 17",
        ops.ReleaseCall(Cause(17)),
        V2,
        22,
        # 04 02: Cause OCTET STRING | 80 91 (ITU-T, user, user busy)
        bytes.fromhex("04 02 80 91"),
    ),
    (
        "Connect to the IVR",
        ops.Connect((IVR,)),
        V2,
        20,
        # 30 0b SEQUENCE | a0 09 destinationRoutingAddress [0] | 04 07 CalledPartyNumber
        # 04 10 68 31 08 90 99 (even, international, E.164, 8613800999)
        bytes.fromhex("30 0b a0 09 04 07 04 10 68 31 08 90 99"),
    ),
    (
        "ERB tBusy absent subscriber",
        ERB_BUSY,
        V2,
        24,
        # 80 01 0d eventTypeBCSM tBusy | a2 06 a8 04 80 02 84 94 tBusySpecificInfo busyCause 20
        # a3 03 81 01 02 legID receivingSideID 2 | a4 03 80 01 00 miscCallInfo request
        bytes.fromhex("30 15 80 01 0d a2 06 a8 04 80 02 84 94 a3 03 81 01 02 a4 03 80 01 00"),
    ),
    ("SRR v2 NULL", ops.SpecializedResourceReport(), SRF_V2, 49, bytes.fromhex("05 00")),
    (
        "SRR v4 allAnnouncementsComplete",
        ops.SpecializedResourceReport(),
        V4,
        49,
        bytes.fromhex("9f 32 00"),
    ),
    (
        "ApplyCharging v2 release with tone",
        ops.ApplyCharging(1200, True, None, True, ops.LegID(1, True)),
        V2,
        35,
        # 80 0b aChBilling | a0 09 timeDurationCharging | 80 02 04 b0 (1200) |
        # a1 03 01 01 ff v2 releaseIfdurationExceeded {tone TRUE} | a2 03 80 01 01 sendingSide 1
        bytes.fromhex("30 12 80 0b a0 09 80 02 04 b0 a1 03 01 01 ff a2 03 80 01 01"),
    ),
    (
        "ApplyCharging v4 release with tone",
        ops.ApplyCharging(1200, True, None, True, ops.LegID(1, True)),
        V4,
        35,
        # 81 01 ff releaseIfdurationExceeded | a3 03 01 01 ff audibleIndicator tone TRUE
        bytes.fromhex("30 15 80 0e a0 0c 80 02 04 b0 81 01 ff a3 03 01 01 ff a2 03 80 01 01"),
    ),
    (
        "ACR 26 s, call released",
        ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(26), False),
        V2,
        36,
        # 04 0f CallResult | a0 0d timeDurationChargingResult | a0 03 81 01 01 partyToCharge |
        # a1 03 80 01 1a timeIfNoTariffSwitch 26 | 82 01 00 callActive FALSE
        bytes.fromhex("04 0f a0 0d a0 03 81 01 01 a1 03 80 01 1a 82 01 00"),
    ),
]


@pytest.mark.parametrize("name,op,ac,code,wire", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(
    name: str, op: ops.Operation, ac: tuple[int, ...], code: int, wire: bytes | None
) -> None:
    assert cap.CODEC.encode_arg(op, ac=ac) == (code, wire)
    assert cap.CODEC.decode_arg(code, wire, ac=ac) == op


def test_pycrate_encoded_values_decode_to_typed() -> None:
    """Bytes made by raw pycrate (not by our encoders) decode to the expected typed value."""
    t = cap.CODEC.args[0][1]
    t.set_val(
        {
            "serviceKey": 7,
            "calledPartyNumber": bytes.fromhex("8410683119325476 08"),
            "eventTypeBCSM": "termAttemptAuthorized",
            "iMSI": bytes.fromhex("640010325476 98f0"),
        }
    )
    assert cap.CODEC.decode_arg(0, t.to_ber()) == ops.InitialDP(
        7, CalledPartyNumber("8613912345678"), event_type_bcsm=12, imsi="460001234567890"
    )
    t = cap.CODEC.args[24][1]
    t.set_val(
        {
            "eventTypeBCSM": "tNoAnswer",
            "legID": ("receivingSideID", b"\x02"),
            "miscCallInfo": {"messageType": "request"},
            "eventSpecificInformationBCSM": ("tNoAnswerSpecificInfo", {}),
        }
    )
    assert cap.CODEC.decode_arg(24, t.to_ber()) == ops.EventReportBCSM(
        14, ops.EventSpecificInfo("tNoAnswerSpecificInfo"), ops.LegID(2), 0
    )
    t = cap.CODEC.args[23][1]
    t.set_val(
        {
            "bcsmEvents": [
                {
                    "eventTypeBCSM": "tBusy",
                    "monitorMode": "interrupted",
                    "legID": ("sendingSideID", b"\x02"),
                }
            ]
        }
    )
    assert cap.CODEC.decode_arg(23, t.to_ber()) == ops.RequestReportBCSMEvent(
        (ops.BCSMEvent(13, 0, ops.LegID(2, True)),)
    )
    t = cap.CODEC.args[20][1]
    t.set_val({"destinationRoutingAddress": [IVR.encode()]})
    assert cap.CODEC.decode_arg(20, t.to_ber()) == ops.Connect((IVR,))
    t = cap.CODEC.args[48][1]
    t.set_val(
        {
            "collectedInfo": (
                "collectedDigits",
                {"minimumNbOfDigits": 1, "maximumNbOfDigits": 4, "errorTreatment": "repeatPrompt"},
            ),
            "disconnectFromIPForbidden": True,
            "informationToSend": ("inbandInfo", {"messageID": ("elementaryMessageID", 5)}),
        }
    )
    assert cap.CODEC.decode_arg(48, t.to_ber()) == ops.PromptAndCollectUserInformation(
        ops.CollectedDigits(4, error_treatment=2), ops.InformationToSend(message_ids=(5,))
    )


def test_results_and_errors() -> None:
    ri = ops.ReceivedInformation(GenericDigits("1"))
    wire = cap.CODEC.encode_result(48, ri)
    assert wire == bytes.fromhex("80 02 20 01")  # digitsResponse [0], BCD odd, digit 1
    assert cap.CODEC.decode_result(48, wire) == ri
    assert cap.CODEC.decode_result(55, None) == ops.EmptyResult()
    assert cap.CODEC.encode_result(55, ops.EmptyResult()) is None
    assert cap.CODEC.decode_error(11, bytes.fromhex("0a 01 00")) == ops.OperationError(
        11, "systemFailure", 0
    )
    assert cap.CODEC.encode_error(ops.OperationError(12, "taskRefused", 1)) == (
        12,
        bytes.fromhex("0a 01 01"),
    )
    assert cap.CODEC.decode_error(7, None) == ops.OperationError(7, "missingParameter")
    assert {cap.CODEC.error_names[c] for c in (0, 1, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17)}


def test_unknown_and_generic_are_lossless() -> None:
    g = cap.CODEC.decode_arg(200, b"\x04\x01\x00")
    assert isinstance(g, ops.GenericOperation) and cap.CODEC.encode_arg(g) == (200, b"\x04\x01\x00")
    # callGap (41) is typed for gapOnService only: other criteria are kept, bytes and all.
    t = cap.CODEC.args[41][1]
    t.set_val(
        {
            "gapCriteria": ("basicGapCriteria", ("calledAddressValue", b"\x01\x02")),
            "gapIndicators": {"duration": 10, "gapInterval": 100},
        }
    )
    wire = t.to_ber()
    g = cap.CODEC.decode_arg(41, wire)
    assert isinstance(g, ops.CallGap) and g.service_key is None and "gapCriteria" in g.extra
    assert g.control_type is None
    assert cap.CODEC.encode_arg(g)[1] == wire


def test_operations_built_by_the_service_are_hashable_and_equal_to_decoded_ones() -> None:
    """Their empty ``extra`` is ops.NO_EXTRA: the call path's encoding cache keys on them."""
    rrbe = ops.RequestReportBCSMEvent((ops.BCSMEvent(ops.EventTypeBCSM.T_BUSY),))
    assert hash(rrbe) == hash(ops.RequestReportBCSMEvent((ops.BCSMEvent(13),)))
    assert {rrbe: 1}[ops.RequestReportBCSMEvent((ops.BCSMEvent(13),))] == 1
    decoded = cap.CODEC.decode_arg(23, cap.CODEC.encode_arg(rrbe)[1])
    assert decoded == rrbe and rrbe == decoded and repr(decoded) == repr(rrbe)
    assert ops.NO_EXTRA == {} and {} == ops.NO_EXTRA and not ops.NO_EXTRA
    assert ops.NO_EXTRA != {"x": 1} and dict(ops.NO_EXTRA) == {}
    assert "x" not in ops.NO_EXTRA and ops.NO_EXTRA.get("x", 1) == 1  # what encoders ask
    for change in (
        lambda e: e.__setitem__("x", 1),
        lambda e: e.update(x=1),
        lambda e: e.setdefault("x", 1),
        lambda e: e.__ior__({"x": 1}),
    ):
        with pytest.raises(TypeError):  # shared by every operation: never written to
            change(ops.NO_EXTRA)
    assert not ops.NO_EXTRA
    with pytest.raises(TypeError):  # what a decoder kept in extra is a plain dict
        hash(ops.Connect((CalledPartyNumber("861390000"),), extra={"x": 1}))


def test_bad_input_raises_decode_error() -> None:
    for code, param in [
        (0, b"\x30\x03\x80\x01"),
        (0, b"\x30\x00"),
        (24, b"\x30\x03\x80\x01\x7f"),
        (31, b"\x05\x00"),
        (22, None),
        (35, b"\x30\x02\x81\x00"),
        (49, b"\x04\x00"),
        (0, b"\x30\x03\x80\x01\x01\x00"),
    ]:
        with pytest.raises(DecodeError) as ei:
            cap.CODEC.decode_arg(code, param, ac=V2)
        assert ei.value.layer == "cap"


def test_apply_charging_keeps_a_member_with_a_high_tag_number() -> None:
    """A member ApplyChargingArg does not model, here [31] (two identifier octets, X.690
    §8.1.2.4), comes back out whole: its tag is kept, not just its first identifier octet."""
    op = ops.ApplyCharging(1200, True, None, True, ops.LegID(1, True))
    code, param = cap.CODEC.encode_arg(op, ac=V4)
    assert param is not None and param[1] < 0x7C
    wire = bytes((0x30, param[1] + 4)) + param[2:] + bytes.fromhex("9f 1f 01 07")
    back = cap.CODEC.decode_arg(code, wire, ac=V4)
    assert isinstance(back, ops.ApplyCharging) and back.max_call_period_duration == 1200
    assert cap.CODEC.encode_arg(back, ac=V4) == (code, wire)


def test_version_checks_on_encode() -> None:
    with pytest.raises(EncodeError):
        cap.CODEC.encode_arg(ops.InitiateCallAttempt((IVR,)), ac=V2)
    with pytest.raises(EncodeError):
        cap.CODEC.encode_arg(ops.ContinueWithArgument(), ac=V2)
    with pytest.raises(EncodeError):
        cap.CODEC.encode_arg(ops.SpecializedResourceReport(True), ac=SRF_V2)
    assert cap.cap_version(V2) == 2 and cap.cap_version(V3) == 3 and cap.cap_version(V4) == 4


def test_real_camel_capture_decodes() -> None:
    """Wireshark's camel.pcap (CAP v2): IDP, RRBE+AC+CUE, ERB, ACR+ERB, ReleaseCall."""
    comps = components_from_pcap(PCAPS / "cap_wireshark-sample_camel_m2ua.pcap")
    ac = None
    seen = []
    for _kind, code, param, a in comps:
        ac = a or ac
        op = cap.CODEC.decode_arg(code, param, ac=ac)
        seen.append(type(op).__name__)
        again = cap.CODEC.decode_arg(*cap.CODEC.encode_arg(op, ac=ac), ac=ac)
        assert again == op
    assert seen == [
        "InitialDP",
        "RequestReportBCSMEvent",
        "ApplyCharging",
        "Continue",
        "EventReportBCSM",
        "ApplyChargingReport",
        "EventReportBCSM",
        "ReleaseCall",
    ]
    idp = cap.CODEC.decode_arg(comps[0][1], comps[0][2], ac=V2)
    assert isinstance(idp, ops.InitialDP)
    assert idp.service_key == 42 and idp.imsi == "41787552689"
    assert idp.calling_party_number == CallingPartyNumber("41789005047", nai=4, screening=1)


@pytest.mark.tshark
def test_wireshark_reads_what_we_encode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = []
    expect = []
    for _i, (name, op, acs) in enumerate(CASES):
        ac = acs[0]
        code, param = cap.CODEC.encode_arg(op, ac=ac)
        kind = "begin" if code in (0, 16) else "continue"
        frames.append(wrap([invoke(1, code, param)], ac, 146, 146, kind))
        expect.append((name, code))
    # Results and an error in TCAP End.
    frames.append(
        wrap(
            [
                result_last(
                    1, 48, cap.CODEC.encode_result(48, ops.ReceivedInformation(GenericDigits("12")))
                )
            ],
            None,
            146,
            146,
            "end",
        )
    )
    frames.append(
        wrap(
            [return_error(1, *cap.CODEC.encode_error(ops.OperationError(7, "missingParameter")))],
            None,
            146,
            146,
            "end",
        )
    )
    pcap = tshark.write_pcap(frames, tmp_path / "cap.pcap")
    tshark.assert_clean(pcap, expect_frames=len(frames))
    rows = tshark.fields(
        pcap, ["camel.opcode", "camel.serviceKey", "camel.eventTypeBCSM", "camel.local"]
    )
    for (name, code), row in zip(expect, rows, strict=False):
        assert row[0] == str(code) or row[3] == str(code), (name, row)
    assert rows[0][1] == "100"  # InitialDP serviceKey


@pytest.mark.tshark
def test_wireshark_error_parameter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """systemFailure with its UnavailableNetworkResource parameter.

    Wireshark 4.0's CAMEL dissector decodes the parameter and then flags "This field lies
    beyond the end of the known sequence definition" on every returnError with a parameter
    (its ReturnError dissection runs the parameter twice); that warning is the only one allowed.
    """
    frame = wrap(
        [return_error(1, *cap.CODEC.encode_error(ops.OperationError(11, "systemFailure", 0)))],
        V2,
        146,
        146,
        "end",
    )
    pcap = tshark.write_pcap([frame], tmp_path / "err.pcap")
    bad = tshark.problems(pcap)
    assert all("beyond the end of the known sequence" in r[3] for r in bad), bad
    rows = tshark.fields(pcap, ["_ws.col.Info", "camel.UnavailableNetworkResource"])
    assert "systemFailure" in rows[0][0] and rows[0][1] == "0"


def test_indefinite_lengths_accepted() -> None:
    """X.690 §8.1.3.6: a constructed value may come with an indefinite length."""
    for op in (IDP, ERB_BUSY, RRBE):
        code, param = cap.CODEC.encode_arg(op, ac=V2)
        assert param is not None and param[1] < 0x80
        assert cap.CODEC.decode_arg(code, b"\x30\x80" + param[2:] + b"\x00\x00", ac=V2) == op


def test_wrong_value_shapes_raise_encode_error() -> None:
    for bad in (
        ops.Connect((None,)),  # type: ignore[arg-type]
        ops.Connect(()),
        ops.RequestReportBCSMEvent((ops.BCSMEvent(99),)),
        ops.ApplyCharging(0),
        ops.Cancel(),
        ops.PlayAnnouncement(ops.InformationToSend()),
    ):
        with pytest.raises(EncodeError) as ei:
            cap.CODEC.encode_arg(bad, ac=V4)
        assert ei.value.layer == "cap"
