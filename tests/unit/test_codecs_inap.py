"""ETSI Core INAP CS-1 codec tests: same ops values as CAP, INAP wire forms, tshark oracle."""

from __future__ import annotations

import pytest

from scp.codecs import appctx, inap, ops
from scp.codecs.errors import DecodeError
from scp.codecs.numbers import (
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    RedirectingNumber,
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

AC = appctx.INAP_CS1_SSP_SCP
IVR = CalledPartyNumber("8613800999", nai=3)
ITS = ops.InformationToSend(message_ids=(10,), number_of_repetitions=2)

CASES: list[tuple[str, ops.Operation]] = [
    (
        "InitialDP",
        ops.InitialDP(
            service_key=100,
            called_party_number=CalledPartyNumber("1062345678", nai=3),
            calling_party_number=CallingPartyNumber("02087654321", nai=3),
            calling_partys_category=10,
            event_type_bcsm=12,
            redirecting_party_id=RedirectingNumber("1062345678", nai=3),
            original_called_party_id=RedirectingNumber("1062345679", nai=3),
            redirection_information=b"\x04\x11",
            location_number=CallingPartyNumber("2087654321", nai=3),
        ),
    ),
    (
        "RequestReportBCSMEvent",
        ops.RequestReportBCSMEvent(
            (
                ops.BCSMEvent(13, 0, ops.LegID(2, True)),
                ops.BCSMEvent(14, 0, ops.LegID(2, True), application_timer=30),
            )
        ),
    ),
    (
        "EventReportBCSM busy",
        ops.EventReportBCSM(
            13, ops.EventSpecificInfo("tBusySpecificInfo", Cause(17)), ops.LegID(2), 0
        ),
    ),
    ("EventReportBCSM no answer", ops.EventReportBCSM(14, None, ops.LegID(2), 1)),
    ("Continue", ops.Continue()),
    ("Connect", ops.Connect((IVR,), original_called_party_id=RedirectingNumber("1062345678", 3))),
    ("ReleaseCall", ops.ReleaseCall(Cause(31))),
    ("ConnectToResource", ops.ConnectToResource(IVR)),
    ("ConnectToResource none", ops.ConnectToResource(None)),
    (
        "EstablishTemporaryConnection",
        ops.EstablishTemporaryConnection(
            GenericNumber("8613800999", nqi=1), GenericDigits("1234"), b"\x01\x02"
        ),
    ),
    ("DisconnectForwardConnection", ops.DisconnectForwardConnection()),
    ("AssistRequestInstructions", ops.AssistRequestInstructions(GenericDigits("1234"), b"\x02")),
    ("PlayAnnouncement", ops.PlayAnnouncement(ITS, True, True)),
    ("PlayAnnouncement no completion", ops.PlayAnnouncement(ITS, False, False)),
    (
        "PromptAndCollectUserInformation",
        ops.PromptAndCollectUserInformation(ops.CollectedDigits(1, first_digit_timeout=10), ITS),
    ),
    ("SpecializedResourceReport", ops.SpecializedResourceReport()),
    ("CallInformationRequest", ops.CallInformationRequest((0, 2, 30))),
    (
        "CallInformationReport",
        ops.CallInformationReport(
            (ops.RequestedInformation(2, 30), ops.RequestedInformation(30, Cause(16)))
        ),
    ),
    ("FurnishChargingInformation", ops.FurnishChargingInformation(b"\x01\x02")),
    ("SendChargingInformation", ops.SendChargingInformation(b"\x01\x02", ops.LegID(2, True))),
    ("ResetTimer", ops.ResetTimer(30)),
    ("Cancel", ops.Cancel(invoke_id=2)),
    ("Cancel all", ops.Cancel(all_requests=True)),
    ("ActivityTest", ops.ActivityTest()),
    ("InitiateCallAttempt", ops.InitiateCallAttempt((IVR,), CallingPartyNumber("12599", 3))),
]


@pytest.mark.parametrize("name,op", CASES, ids=[c[0] for c in CASES])
def test_round_trip(name: str, op: ops.Operation) -> None:
    code, param = inap.CODEC.encode_arg(op, ac=AC)
    assert inap.CODEC.decode_arg(code, param, ac=AC) == op
    assert inap.CODEC.encode_arg(inap.CODEC.decode_arg(code, param, ac=AC), ac=AC) == (code, param)


GOLDEN = [
    (
        "ReleaseCall is a bare Cause",
        ops.ReleaseCall(Cause(31)),
        22,
        bytes.fromhex("04 02 80 9f"),
    ),  # 04 02 | 80 ITU-T user | 9f normal unspecified
    (
        "SpecializedResourceReport is NULL",
        ops.SpecializedResourceReport(),
        49,
        bytes.fromhex("05 00"),
    ),
    (
        "PlayAnnouncement",
        ops.PlayAnnouncement(ops.InformationToSend(message_ids=(10,))),
        47,
        # a0 07 informationToSend [0] | a0 05 inbandInfo [0] | a0 03 messageID [0] |
        # 80 01 0a elementaryMessageID 10; disconnectFromIPForbidden and
        # requestAnnouncementComplete are TRUE, both their DEFAULT (Q.1218 / ETS 300 374-1
        # PlayAnnouncementArg), so neither is sent (X.690 §11.5)
        bytes.fromhex("30 09 a0 07 a0 05 a0 03 80 01 0a"),
    ),
    (
        "PlayAnnouncement without completion report",
        ops.PlayAnnouncement(
            ops.InformationToSend(message_ids=(10,)), request_announcement_complete=False
        ),
        47,
        # as above, then 82 01 00 requestAnnouncementComplete FALSE (not the DEFAULT)
        bytes.fromhex("30 0c a0 07 a0 05 a0 03 80 01 0a 82 01 00"),
    ),
]


@pytest.mark.parametrize("name,op,code,wire", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name: str, op: ops.Operation, code: int, wire: bytes) -> None:
    assert inap.CODEC.encode_arg(op, ac=AC) == (code, wire)
    assert inap.CODEC.decode_arg(code, wire, ac=AC) == op


def test_results_errors_and_generic() -> None:
    ri = ops.ReceivedInformation(GenericDigits("12"))
    assert inap.CODEC.decode_result(48, inap.CODEC.encode_result(48, ri)) == ri
    err = ops.OperationError(12, "taskRefused", 0)
    assert inap.CODEC.decode_error(*inap.CODEC.encode_error(err)) == err
    # ApplyCharging in CS-1 is network specific: generic, lossless.
    t = inap.CODEC.args[35][1]
    wire = inap.CODEC.ber_encode(t, {"aChBillingChargingCharacteristics": b"\x01"})
    g = inap.CODEC.decode_arg(35, wire, ac=AC)
    assert isinstance(g, ops.GenericOperation) and inap.CODEC.encode_arg(g) == (35, wire)


def test_bad_input() -> None:
    for code, param in [
        (0, b"\x30\x02\x80\x00"),
        (22, b"\x04\x01\x80"),
        (31, b"\x05\x00"),
        (49, b"\x30\x00"),
        (23, b"\xff"),
    ]:
        with pytest.raises(DecodeError) as ei:
            inap.CODEC.decode_arg(code, param, ac=AC)
        assert ei.value.layer == "inap"


def test_ericsson_cs1plus_capture_decodes() -> None:
    """Ericsson INAP CS1+ (vendor AC): ETSI-compatible components typed, the rest generic."""
    comps = components_from_pcap(PCAPS / "inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap")
    assert comps
    kinds = set()
    for _kind, code, param, ac in comps:
        op = inap.CODEC.decode_arg(code, param, ac=ac)
        kinds.add(type(op).__name__)
        assert inap.CODEC.encode_arg(op, ac=ac)[0] == code
    assert {"RequestReportBCSMEvent", "PlayAnnouncement", "GenericOperation"} <= kinds
    # Under the ETSI context the same vendor components are refused, with a DecodeError.
    _k, code, param, _ac = next(c for c in comps if c[1] == 19)
    with pytest.raises(DecodeError):
        inap.CODEC.decode_arg(code, param, ac=AC)


@pytest.mark.tshark
def test_wireshark_reads_what_we_encode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = []
    codes = []
    for _name, op in CASES:
        code, param = inap.CODEC.encode_arg(op, ac=AC)
        frames.append(
            wrap([invoke(1, code, param)], AC, 241, 241, "begin" if code == 0 else "continue")
        )
        codes.append(code)
    frames.append(
        wrap(
            [
                result_last(
                    1, 48, inap.CODEC.encode_result(48, ops.ReceivedInformation(GenericDigits("1")))
                )
            ],
            None,
            241,
            241,
            "end",
        )
    )
    frames.append(wrap([return_error(1, 7, None)], None, 241, 241, "end"))
    pcap = tshark.write_pcap(frames, tmp_path / "inap.pcap")
    tshark.assert_clean(pcap, expect_frames=len(frames))
    # Wireshark 4.0 fills inap.opcode with the CHOICE index; the operation name is in the Info.
    rows = tshark.fields(pcap, ["_ws.col.Info", "inap.serviceKey"])
    for code, row in zip(codes, rows, strict=False):
        assert inap.CODEC.opcode_names[code] in row[0], (code, row)
    assert rows[0][1] == "100"
