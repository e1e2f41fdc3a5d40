"""MAP codec tests: the missed-call operations, AC negotiation, real captures, tshark oracle."""

from __future__ import annotations

import pytest

from scp.codecs import appctx, ops
from scp.codecs import map as m
from scp.codecs.errors import DecodeError
from scp.codecs.numbers import AddressString
from tests import tshark
from tests.unit.codec_frames import (
    PCAPS,
    components_from_pcap,
    invoke,
    result_last,
    return_error,
    wrap,
)

MSISDN = AddressString("8613912345678")
SC = AddressString("8613800000")
SCF = AddressString("8613800001")
IMSI = "460001234567890"
ALERT_V1 = (0, 4, 0, 0, 1, 0, 23, 1)
ALERT_V2 = appctx.MAP_SHORT_MSG_ALERT_V2
GW_V3 = appctx.MAP_SHORT_MSG_GATEWAY_V3
MM_V3 = appctx.MAP_MM_EVENT_REPORTING_V3
ATI_V3 = appctx.MAP_ANY_TIME_ENQUIRY_V3
MWD_V3 = (0, 4, 0, 0, 1, 0, 24, 3)

ARGS: list[tuple[str, ops.Operation, tuple[int, ...], int]] = [
    ("AlertServiceCentre v2", ops.AlertServiceCentre(MSISDN, SC), ALERT_V2, 64),
    ("alertServiceCentreWithoutResult v1", ops.AlertServiceCentre(MSISDN, SC, True), ALERT_V1, 49),
    ("NoteMM-Event IMSI attach", ops.NoteMMEvent(11, 2, IMSI, MSISDN), MM_V3, 89),
    ("ReadyForSM", ops.ReadyForSM(IMSI, 0, True), MWD_V3, 66),
    ("SendRoutingInfoForSM", ops.SendRoutingInfoForSM(MSISDN, SC, True), GW_V3, 45),
    ("ReportSM-DeliveryStatus", ops.ReportSMDeliveryStatus(MSISDN, SC, 1), GW_V3, 47),
    (
        "AnyTimeInterrogation msisdn",
        ops.AnyTimeInterrogation(SCF, msisdn=MSISDN, location_information=True),
        ATI_V3,
        71,
    ),
    ("AnyTimeInterrogation imsi", ops.AnyTimeInterrogation(SCF, imsi=IMSI), ATI_V3, 71),
]
RESULTS: list[tuple[str, int, ops.Operation, tuple[int, ...]]] = [
    (
        "RoutingInfoForSM",
        45,
        ops.RoutingInfoForSM(IMSI, AddressString("8613900001"), b"\x01\x02\x03\x04"),
        GW_V3,
    ),
    ("ReportSM-DeliveryStatus result", 47, ops.ReportSMDeliveryStatusResult(MSISDN), GW_V3),
    (
        "ATI result idle",
        71,
        ops.AnyTimeInterrogationResult("assumedIdle", None, AddressString("8613900002")),
        ATI_V3,
    ),
    (
        "ATI result not reachable",
        71,
        ops.AnyTimeInterrogationResult("netDetNotReachable", 1),
        ATI_V3,
    ),
    ("ATI result camelBusy", 71, ops.AnyTimeInterrogationResult("camelBusy"), ATI_V3),
]


@pytest.mark.parametrize("name,op,ac,code", ARGS, ids=[a[0] for a in ARGS])
def test_arg_round_trip(name: str, op: ops.Operation, ac: tuple[int, ...], code: int) -> None:
    got_code, param = m.CODEC.encode_arg(op, ac=ac)
    assert got_code == code
    assert m.CODEC.decode_arg(code, param, ac=ac) == op
    assert m.CODEC.encode_arg(m.CODEC.decode_arg(code, param, ac=ac), ac=ac) == (code, param)


@pytest.mark.parametrize("name,code,res,ac", RESULTS, ids=[r[0] for r in RESULTS])
def test_result_round_trip(name: str, code: int, res: ops.Operation, ac: tuple[int, ...]) -> None:
    wire = m.CODEC.encode_result(code, res, ac=ac)
    assert m.CODEC.decode_result(code, wire, ac=ac) == res


GOLDEN = [
    (
        "AlertServiceCentre",
        ops.AlertServiceCentre(MSISDN, SC),
        64,
        # 30 12 | 04 08 msisdn 91 68 31 19 32 54 76 f8 | 04 06 SC address 91 68 31 08 00 00
        bytes.fromhex("30 12 04 08 91 68 31 19 32 54 76 f8 04 06 91 68 31 08 00 00"),
    ),
    (
        "NoteMM-Event",
        ops.NoteMMEvent(11, 2, IMSI, MSISDN),
        89,
        # 02 01 0b serviceKey (untagged) | 80 01 02 eventMet [0] IMSI attach |
        # 81 08 imsi [1] 460001234567890 | 82 08 msisdn [2]
        bytes.fromhex(
            "30 1a 02 01 0b 80 01 02 81 08 64 00 10 32 54 76 98 f0 82 08 91 68 31 19 32 54 76 f8"
        ),
    ),
]


@pytest.mark.parametrize("name,op,code,wire", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name: str, op: ops.Operation, code: int, wire: bytes) -> None:
    assert m.CODEC.encode_arg(op) == (code, wire)
    assert m.CODEC.decode_arg(code, wire) == op


def test_empty_results() -> None:
    # AlertServiceCentre v2 has a RESULT with no type: TC-RESULT-L without parameter.
    assert m.CODEC.encode_result(64, ops.EmptyResult(), ac=ALERT_V2) is None
    # NoteMM-EventRes / ReadyForSM-Res are all-OPTIONAL SEQUENCEs, sent as 30 00.
    assert m.CODEC.encode_result(89, None, ac=MM_V3) == b"\x30\x00"
    assert m.CODEC.encode_result(66, ops.EmptyResult(), ac=MWD_V3) == b"\x30\x00"
    assert isinstance(m.CODEC.decode_result(89, b"\x30\x00"), ops.GenericOperation)
    assert m.CODEC.decode_result(64, None) == ops.EmptyResult()


def test_absent_subscriber_sm_error() -> None:
    err = ops.OperationError(6, "absentSubscriberSM", ops.AbsentSubscriberSM(1, 2))
    code, param = m.CODEC.encode_error(err, ac=GW_V3)
    assert code == 6
    assert m.CODEC.decode_error(code, param, ac=GW_V3) == err
    assert m.CODEC.decode_error(6, None) == ops.OperationError(6, "absentSubscriberSM")
    assert m.CODEC.error_names[27] == "absentSubscriber"


def test_ac_negotiation() -> None:
    ok = appctx.map_ac_decision(ALERT_V2)
    assert ok.accept and ok.version == 2 and ok.ac == ALERT_V2
    assert appctx.map_ac_decision(ALERT_V1).version == 1
    # shortMsgAlert v3 does not exist: refuse and propose v2 so the HLR falls back.
    no = appctx.map_ac_decision((0, 4, 0, 0, 1, 0, 23, 3))
    assert not no.accept and no.ac == ALERT_V2
    # mm-EventReporting only in v3: a v2 proposal gets v3 back (the only one we have).
    assert appctx.map_ac_decision((0, 4, 0, 0, 1, 0, 42, 2)).ac == MM_V3
    # A context we do not serve at all (networkLocUp) is refused with nothing to propose.
    assert appctx.map_ac_decision((0, 4, 0, 0, 1, 0, 1, 3)) == appctx.MapAcDecision(
        False, None, None
    )
    assert appctx.map_ac_decision(None).accept  # no dialogue portion: MAP v1
    assert appctx.lookup(appctx.CAP_V2_GSMSSF_SCF).version == 2
    assert appctx.lookup(appctx.INAP_CS1_SSP_SCP).protocol is appctx.Protocol.INAP


def test_bad_input() -> None:
    for code, param in [
        (64, b"\x30\x02\x04\x00"),
        (89, b"\x30\x03\x80\x01\x0b"),
        (45, b"\x30\x80\x04\x01"),
        (64, None),
        (71, b"\x04\x00"),
    ]:
        with pytest.raises(DecodeError) as ei:
            m.CODEC.decode_arg(code, param, ac=GW_V3)
        assert ei.value.layer == "map"


def test_real_map_captures_decode() -> None:
    n = 0
    typed = set()
    for f in sorted(PCAPS.glob("map_*")):
        for kind, code, param, ac in components_from_pcap(f):
            if kind == "invoke":
                v = m.CODEC.decode_arg(code, param, ac=ac)
            elif kind == "result":
                v = m.CODEC.decode_result(code, param, ac=ac)
            else:
                v = m.CODEC.decode_error(code, param, ac=ac)
            typed.add(type(v).__name__)
            n += 1
    assert n >= 60
    assert {
        "SendRoutingInfoForSM",
        "RoutingInfoForSM",
        "AnyTimeInterrogation",
        "AnyTimeInterrogationResult",
        "GenericOperation",
    } <= typed
    sri = [c for c in components_from_pcap(PCAPS / "map_pcapr_sri-sm_single_m3ua.pcap")][0]
    op = m.CODEC.decode_arg(sri[1], sri[2], ac=sri[3])
    assert isinstance(op, ops.SendRoutingInfoForSM)
    assert op.msisdn.digits == "8618903100031" and op.service_centre_address.digits == "8613700006"


@pytest.mark.tshark
def test_wireshark_reads_what_we_encode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = []
    codes = []
    for _name, op, ac, _c in ARGS:
        code, param = m.CODEC.encode_arg(op, ac=ac)
        frames.append(wrap([invoke(1, code, param)], ac, 8, 6, "begin"))
        codes.append(code)
    for _name, code, res, ac in RESULTS:
        frames.append(
            wrap([result_last(1, code, m.CODEC.encode_result(code, res, ac=ac))], ac, 6, 8, "end")
        )
        codes.append(code)
    frames.append(
        wrap(
            [
                return_error(
                    1,
                    *m.CODEC.encode_error(
                        ops.OperationError(6, "absentSubscriberSM", ops.AbsentSubscriberSM(1))
                    ),
                )
            ],
            GW_V3,
            6,
            8,
            "end",
        )
    )
    pcap = tshark.write_pcap(frames, tmp_path / "map.pcap")
    tshark.assert_clean(pcap, expect_frames=len(frames))
    rows = tshark.fields(pcap, ["gsm_old.localValue", "e164.msisdn", "e212.imsi"])
    for code, row in zip(codes, rows, strict=False):
        assert row[0] == str(code), (code, row)
    assert "8613912345678" in rows[0][1]
    assert IMSI in rows[2][2]


def test_pycrate_encoded_values_decode_to_typed() -> None:
    """Bytes made by raw pycrate (not by our encoders) decode to the expected typed value."""
    t = m.CODEC.args[64][1]
    t.set_val({"msisdn": MSISDN.encode(), "serviceCentreAddress": SC.encode()})
    assert m.CODEC.decode_arg(64, t.to_ber(), ac=ALERT_V2) == ops.AlertServiceCentre(MSISDN, SC)
    t = m.CODEC.results[71][1]
    t.set_val({"subscriberInfo": {"subscriberState": ("netDetNotReachable", "imsiDetached")}})
    assert m.CODEC.decode_result(71, t.to_ber(), ac=ATI_V3) == ops.AnyTimeInterrogationResult(
        "netDetNotReachable", 1
    )
    t = m.CODEC.args[89][1]
    t.set_val(
        {
            "serviceKey": 5,
            "eventMet": b"\x01",
            "imsi": bytes.fromhex("64001032547698f0"),
            "msisdn": MSISDN.encode(),
        }
    )
    assert m.CODEC.decode_arg(89, t.to_ber(), ac=MM_V3) == ops.NoteMMEvent(5, 1, IMSI, MSISDN)
