"""ETSI Core INAP CS-1 abstract syntax (ETS 300 374-1 clause 6) as compiled by pycrate.

Checks, in order: the generated module is what its .asn gives; the operation / error / AC
tables of ``scp.codecs.asn`` agree with the compiled module (§6.4, §6.5); every operation
argument, the PromptAndCollectUserInformation result and every error parameter survive
encode -> decode; golden cases with commented bytes both ways; Wireshark decodes every encoded
argument inside a TCAP Begin / End (the independent oracle); the invokes of a real Ericsson
CS1+ capture decode as far as they stay within the core set; and a fuzz run shows that no
malformed parameter makes anything but DecodeError leave the codec.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import scp.codecs.asn as inap
from scp.codecs.ber import children, decode_integer, encode_integer, encode_oid, read_tlv, tlv
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.opcodes import InapErrorCode, InapOpcode, spec_names
from tests import tshark
from tests.helpers import h, m3ua_data, mutate, sccp_udt

OPERATIONS = spec_names(InapOpcode)  # ETS 300 374-1 §6.4, the table the codec uses
ERRORS = spec_names(InapErrorCode)
ERICSSON_PCAP = Path("/work/shared/pcaps/real/inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap")

# -----------------------------------------------------------------------------------------
# Sample values, one per operation argument (pycrate value notation)
# -----------------------------------------------------------------------------------------

CALLED = bytes.fromhex("0390688300991900")  # NAI national (3), ISDN plan, digits 863800999100
CALLING = bytes.fromhex("0313683100001122")  # NAI national, network provided, 861300001122
IVR = bytes.fromhex("0410688300999900")  # NAI international (4), ISDN plan, 863800999900
CORR = bytes.fromhex("00102143")  # Generic Digits: correlation ID, BCD "1234"
SCF_ID = bytes.fromhex("4302f1")
BUSY_CAUSE = bytes.fromhex("8091")  # ITU-T coding, user location; cause 17 user busy
RELEASE_CAUSE = bytes.fromhex("8090")  # cause 16 normal call clearing
EXT = [{"type": 1, "criticality": "abort", "value": b"\x01"}]

ARGS: dict[int, Any] = {
    0: {  # InitialDP at TAA (termAttemptAuthorized) for a terminating call
        "serviceKey": 100,
        "calledPartyNumber": CALLED,
        "callingPartyNumber": CALLING,
        "callingPartysCategory": b"\x0a",
        "cGEncountered": "noCGencountered",
        "iPSSPCapabilities": b"\x01",
        "locationNumber": bytes.fromhex("0313683100"),
        "extensions": EXT,
        "highLayerCompatibility": b"\x91\x81",
        "forwardCallIndicators": b"\x60\x01",
        "bearerCapability": ("bearerCap", bytes.fromhex("8090a3")),
        "eventTypeBCSM": "termAttemptAuthorized",
        "redirectingPartyID": bytes.fromhex("0313683100"),
        "redirectionInformation": b"\x04\x11",
    },
    16: {"correlationID": CORR, "iPAvailable": b"\x01", "iPSSPCapabilities": b"\x05"},
    17: {
        "assistingSSPIPRoutingAddress": bytes.fromhex("001086830099"),
        "correlationID": CORR,
        "scfID": SCF_ID,
    },
    19: {"resourceAddress": ("ipRoutingAddress", IVR), "serviceInteractionIndicators": b"\x01"},
    20: {
        "destinationRoutingAddress": [IVR],
        "correlationID": CORR,
        "scfID": SCF_ID,
        "callingPartyNumber": CALLING,
        "callingPartysCategory": b"\x0a",
        "originalCalledPartyID": bytes.fromhex("0390688300991900"),
        "redirectionInformation": b"\x04\x11",
    },
    22: RELEASE_CAUSE,
    23: {
        "bcsmEvents": [
            {
                "eventTypeBCSM": "tBusy",
                "monitorMode": "interrupted",
                "legID": ("sendingSideID", b"\x02"),
            },
            {
                "eventTypeBCSM": "tNoAnswer",
                "monitorMode": "interrupted",
                "legID": ("sendingSideID", b"\x02"),
                "dPSpecificCriteria": ("applicationTimer", 20),
            },
            {
                "eventTypeBCSM": "tAnswer",
                "monitorMode": "notifyAndContinue",
                "legID": ("sendingSideID", b"\x02"),
            },
            {
                "eventTypeBCSM": "tAbandon",
                "monitorMode": "notifyAndContinue",
                "legID": ("sendingSideID", b"\x01"),
            },
        ]
    },
    24: {
        "eventTypeBCSM": "tBusy",
        "eventSpecificInformationBCSM": ("tBusySpecificInfo", {"busyCause": BUSY_CAUSE}),
        "legID": ("receivingSideID", b"\x02"),
    },
    25: [
        {
            "eventTypeCharging": b"\x01",
            "monitorMode": "notifyAndContinue",
            "legID": ("sendingSideID", b"\x01"),
        }
    ],
    26: {
        "eventTypeCharging": b"\x01",
        "eventSpecificInformationCharging": b"\x00\x10",
        "legID": ("receivingSideID", b"\x01"),
        "monitorMode": "interrupted",
    },
    27: {"callingPartyNumber": CALLING, "dialledDigits": CALLED},
    32: {"destinationRoutingAddress": [CALLED], "callingPartyNumber": CALLING},
    33: {"timervalue": 600},
    34: bytes.fromhex("a003800101"),
    35: {
        "aChBillingChargingCharacteristics": bytes.fromhex("a0048002012c"),
        "partyToCharge": ("sendingSideID", b"\x01"),
    },
    36: bytes.fromhex("a0058103000bb8"),
    41: {  # CallGap on the calling party and service, released with a cause
        "gapCriteria": (
            "callingAddressAndService",
            {"callingAddressValue": CORR, "serviceKey": 100, "locationNumber": CALLING[:5]},
        ),
        "gapIndicators": {"duration": -1, "gapInterval": 60000},
        "controlType": "manuallyInitiated",
        "gapTreatment": ("releaseCause", BUSY_CAUSE),
    },
    44: {
        "requestedInformationList": [
            {
                "requestedInformationType": "callAttemptElapsedTime",
                "requestedInformationValue": ("callAttemptElapsedTimeValue", 7),
            },
            {
                "requestedInformationType": "callStopTime",
                "requestedInformationValue": ("callStopTimeValue", bytes.fromhex("261125195501")),
            },
            {
                "requestedInformationType": "releaseCause",
                "requestedInformationValue": ("releaseCauseValue", RELEASE_CAUSE),
            },
        ],
        "correlationID": CORR,
    },
    45: {
        "requestedInformationTypeList": [
            "callAttemptElapsedTime",
            "callStopTime",
            "callConnectedElapsedTime",
            "releaseCause",
        ]
    },
    46: {
        "sCIBillingChargingCharacteristics": b"\x01\x02",
        "partyToCharge": ("sendingSideID", b"\x01"),
    },
    47: {
        "informationToSend": (
            "inbandInfo",
            {
                "messageID": (
                    "variableMessage",
                    {
                        "elementaryMessageID": 1001,
                        "variableParts": [
                            ("number", bytes.fromhex("00106883")),
                            ("time", b"\x19\x55"),
                        ],
                    },
                ),
                "numberOfRepetitions": 1,
                "duration": 30,
            },
        ),
        "disconnectFromIPForbidden": False,
        "requestAnnouncementComplete": True,
    },
    48: {
        "collectedInfo": (
            "collectedDigits",
            {
                "maximumNbOfDigits": 1,
                "endOfReplyDigit": b"\x0b",
                "cancelDigit": b"\x0c",
                "firstDigitTimeOut": 10,
                "interDigitTimeOut": 5,
                "errorTreatment": "repeatPrompt",
                "interruptableAnnInd": False,
            },
        ),
        "informationToSend": ("inbandInfo", {"messageID": ("elementaryMessageID", 2001)}),
    },
    49: 0,  # NULL
    53: ("invokeID", 3),
}

NO_ARGUMENT = {18, 31, 55}
RESULT_48 = ("digitsResponse", bytes.fromhex("001001"))  # Generic Digits: one digit "1"

ERROR_PARAMS: dict[int, Any] = {
    1: {"problem": "tooLate", "operation": 3},
    10: "requestedInfoNotAvailable",
    11: "componentFailure",
    12: "congestion",
}

# -----------------------------------------------------------------------------------------
# Golden cases: value <-> bytes, each octet commented
# -----------------------------------------------------------------------------------------

GOLDEN: list[tuple[str, int, Any, str]] = [
    (
        "callGap-gapOnService-sCPOverloaded",
        41,
        {
            "gapCriteria": ("gapOnService", {"serviceKey": 100}),
            "gapIndicators": {"duration": 30, "gapInterval": 1000},
            "controlType": "sCPOverloaded",
        },
        "30 13"  # CallGapArg SEQUENCE, 19 octets
        " a0 05 a2 03 80 01 64"  # [0] gapCriteria (CHOICE: explicit) [2] gapOnService {sk 100}
        " a1 07 80 01 1e 81 02 03 e8"  # [1] gapIndicators {duration 30 s, gapInterval 1000 ms}
        " 82 01 00",  # [2] controlType sCPOverloaded(0)
    ),
    (
        "initialDP-minimal-TAA",
        0,
        {
            "serviceKey": 100,
            "calledPartyNumber": bytes.fromhex("0390688300991900"),
            "eventTypeBCSM": "termAttemptAuthorized",
        },
        "30 10"  # InitialDPArg SEQUENCE, 16 octets
        " 80 01 64"  # [0] serviceKey 100
        " 82 08 0390688300991900"  # [2] calledPartyNumber (ISUP Q.763 §3.9 contents)
        " 9c 01 0c",  # [28] eventTypeBCSM termAttemptAuthorized(12)
    ),
    (
        "requestReportBCSMEvent-tBusy-interrupted",
        23,
        {
            "bcsmEvents": [
                {
                    "eventTypeBCSM": "tBusy",
                    "monitorMode": "interrupted",
                    "legID": ("sendingSideID", b"\x02"),
                }
            ]
        },
        "30 0f"  # RequestReportBCSMEventArg
        " a0 0d"  # [0] bcsmEvents SEQUENCE OF
        " 30 0b"  #   BCSMEvent
        " 80 01 0d"  #     [0] eventTypeBCSM tBusy(13)
        " 81 01 00"  #     [1] monitorMode interrupted(0)
        " a2 03 80 01 02",  #     [2] legID (CHOICE: explicit) sendingSideID leg2
    ),
    (
        "eventReportBCSM-tBusy-busyCause17",
        24,
        {
            "eventTypeBCSM": "tBusy",
            "eventSpecificInformationBCSM": ("tBusySpecificInfo", {"busyCause": BUSY_CAUSE}),
            "miscCallInfo": {"messageType": "notification"},
        },
        "30 10"  # EventReportBCSMArg
        " 80 01 0d"  # [0] eventTypeBCSM tBusy(13)
        " a2 06 a8 04 80 02 8091"  # [2] ESI-BCSM: [8] tBusySpecificInfo {[0] busyCause}
        " a4 03 80 01 01",  # [4] miscCallInfo {[0] messageType notification(1)}
    ),
    (
        "connect-to-ivr",
        20,
        {"destinationRoutingAddress": [IVR]},
        "30 0c"  # ConnectArg
        " a0 0a"  # [0] destinationRoutingAddress SEQUENCE OF
        " 04 08 0410688300999900",  #   CalledPartyNumber (universal tag inside SEQUENCE OF)
    ),
    (
        "releaseCall-normal-clearing",
        22,
        RELEASE_CAUSE,
        "04 02 8090",  # ReleaseCallArg ::= Cause, OCTET STRING
    ),
    (
        "playAnnouncement-message-2001",
        47,
        {"informationToSend": ("inbandInfo", {"messageID": ("elementaryMessageID", 2001)})},
        "30 0a"  # PlayAnnouncementArg
        " a0 08"  # [0] informationToSend (CHOICE: explicit)
        " a0 06"  #   [0] inbandInfo
        " a0 04"  #     [0] messageID (CHOICE: explicit)
        " 80 02 07d1",  #       [0] elementaryMessageID 2001 (Integer4)
    ),
    (
        "promptAndCollect-one-digit",
        48,
        {"collectedInfo": ("collectedDigits", {"maximumNbOfDigits": 1})},
        "30 07"  # PromptAndCollectUserInformationArg
        " a0 05"  # [0] collectedInfo (CHOICE: explicit)
        " a0 03 81 01 01",  #   [0] collectedDigits {[1] maximumNbOfDigits 1}
    ),
    (
        "cancel-invoke-3",
        53,
        ("invokeID", 3),
        "80 01 03",  # CancelArg CHOICE: [0] invokeID 3
    ),
    (
        "connectToResource-none",
        19,
        {"resourceAddress": ("none", 0)},
        "30 02 83 00",  # ConnectToResourceArg {resourceAddress none [3] NULL}
    ),
]


# -----------------------------------------------------------------------------------------
# The generated module and the loader tables
# -----------------------------------------------------------------------------------------


def test_generated_module_matches_the_asn_source() -> None:
    from scp.codecs.asn import regen

    assert regen.generate() == regen.TARGET.read_text(encoding="utf-8"), (
        "stale: run python -m scp.codecs.asn.regen"
    )


def test_importing_the_package_does_not_load_the_generated_module() -> None:
    code = (
        "import sys, scp.codecs.asn as a; assert a.AC_INAP_CS1_SSP_TO_SCP[:4] == (0, 4, 0, 1); "
        "assert 'scp.codecs.asn._inap_gen' not in sys.modules; a.inap_module(); "
        "assert 'scp.codecs.asn._inap_gen' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _compiled_objects(cls_name: str) -> dict[str, Any]:
    mod = inap.inap_module().Core_INAP_CS1_Operations
    out = {}
    for name in mod._obj_:
        obj = getattr(mod, name.replace("-", "_"), None)
        if obj is None:
            obj = getattr(mod, name.replace("-", "_") + "_")  # Python keywords: continue_
        ref = getattr(obj, "_typeref", None)
        if obj._mode == "VALUE" and ref is not None and ref.called[1] == cls_name:
            out[name] = obj._val
    return out


def test_operation_table_is_the_compiled_one() -> None:
    compiled = {v["operationCode"][1]: n for n, v in _compiled_objects("OPERATION").items()}
    assert compiled == OPERATIONS
    in_set = {
        o["operationCode"][1]
        for o in inap.inap_module().Core_INAP_CS1_Operations.Core_INAP_CS1_OperationSet._val.root
    }
    assert in_set == set(OPERATIONS)


def test_error_table_is_the_compiled_one() -> None:
    compiled = {v["errorCode"][1]: n for n, v in _compiled_objects("ERROR").items()}
    assert compiled == ERRORS


def test_argument_result_and_error_types() -> None:
    assert inap.inap_arg_type(0)._name == "InitialDPArg"
    assert inap.inap_arg_type(48)._name == "PromptAndCollectUserInformationArg"
    assert inap.inap_result_type(48)._name == "ReceivedInformationArg"
    assert inap.inap_error_type(11)._name == "UnavailableNetworkResource"
    assert inap.inap_error_type(7) is None  # missingParameter has no parameter
    for op in NO_ARGUMENT:
        assert inap.inap_arg_type(op) is None
    for op in set(OPERATIONS) - {48}:
        assert inap.inap_result_type(op) is None
    assert set(ARGS) | NO_ARGUMENT == set(OPERATIONS)
    assert inap.inap_arg_type(99) is None and inap.inap_result_type(99) is None
    assert inap.inap_error_type(99) is None


@pytest.mark.parametrize(
    ("const", "arcs", "content"),
    [
        (inap.AC_INAP_CS1_SSP_TO_SCP, (0, 4, 0, 1, 1, 1, 0, 0), "04000101010000"),
        (inap.AC_INAP_CS1_ASSIST_HANDOFF_SSP_TO_SCP, (0, 4, 0, 1, 1, 1, 1, 0), "04000101010100"),
        (inap.AC_INAP_CS1_IP_TO_SCP, (0, 4, 0, 1, 1, 1, 2, 0), "04000101010200"),
    ],
)
def test_application_contexts(const: tuple[int, ...], arcs: tuple[int, ...], content: str) -> None:
    assert const == arcs
    assert encode_oid(const) == bytes.fromhex(content)  # what goes into the AARQ
    mod = inap.inap_module().Core_INAP_CS1_Operations
    compiled = {
        mod.core_INAP_CS1_SSP_to_SCP_AC._val,
        mod.core_INAP_CS1_assist_handoff_SSP_to_SCP_AC._val,
        mod.core_INAP_CS1_IP_to_SCP_AC._val,
    }
    assert const in compiled and set(inap.APPLICATION_CONTEXTS) == compiled


# -----------------------------------------------------------------------------------------
# Round trips and golden bytes
# -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", sorted(ARGS), ids=lambda op: OPERATIONS[op])
def test_argument_round_trip(opcode: int) -> None:
    t = inap.inap_arg_type(opcode)
    wire = inap.encode_value(t, ARGS[opcode])
    assert inap.decode_value(t, wire) == ARGS[opcode]
    assert inap.encode_value(t, inap.decode_value(t, wire)) == wire


def test_result_and_error_parameters_round_trip() -> None:
    t = inap.inap_result_type(48)
    assert inap.decode_value(t, inap.encode_value(t, RESULT_48)) == RESULT_48
    for code, value in ERROR_PARAMS.items():
        t = inap.inap_error_type(code)
        assert inap.decode_value(t, inap.encode_value(t, value)) == value


@pytest.mark.parametrize(("name", "opcode", "value", "wire"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name: str, opcode: int, value: Any, wire: str) -> None:
    t = inap.inap_arg_type(opcode)
    assert inap.encode_value(t, value).hex() == h(wire).hex()
    assert inap.decode_value(t, h(wire)) == value


def test_defaults_are_not_sent_and_come_back_absent() -> None:
    # X.690 §11.5 (DER, which pycrate follows when encoding): DEFAULT values are omitted.
    t = inap.inap_arg_type(24)
    wire = inap.encode_value(
        t, {"eventTypeBCSM": "tAnswer", "miscCallInfo": {"messageType": "request"}}
    )
    assert wire == bytes.fromhex("300380010f")  # tAnswer(15) only; miscCallInfo left out


def test_send_calculation_indication_is_the_standards_tag_1() -> None:
    # ETS 300 374-1 (like Q.1218) has sendCalculationToSCPIndication [1] BOOLEAN DEFAULT FALSE;
    # Wireshark's Q.1228 (CS-2) dissector dropped it, so the oracle frames leave it out.
    t = inap.inap_arg_type(35)
    value = {"aChBillingChargingCharacteristics": b"\x01", "sendCalculationToSCPIndication": True}
    assert inap.encode_value(t, value) == h("30 06 80 01 01 81 01 ff")
    assert inap.decode_value(t, h("30 06 80 01 01 81 01 ff")) == value


def test_unknown_members_are_skipped_as_the_compatibility_rule_says() -> None:
    # ETS 300 374-1 §4.6.2: a receiver ignores parameters it does not know. Here a Q.1218
    # [11] miscCallInfo and an operator-specific [50] follow serviceKey in an InitialDP.
    # pycrate alone loses the members after such a tag, hence scp.codecs.asn._prune.
    wire = h("30 11 80 01 64 ab 03 80 01 00 9f 32 03 010203 9c 01 0c")
    assert inap.decode_value(inap.inap_arg_type(0), wire) == {
        "serviceKey": 100,
        "eventTypeBCSM": "termAttemptAuthorized",
    }
    # Nested, indefinite length: an unknown [5] inside a BCSMEvent, between known members.
    wire = h("30 80 a0 80 30 80 80 01 0d 85 01 ff 81 01 00 00 00 00 00 00 00")
    assert inap.decode_value(inap.inap_arg_type(23), wire) == {
        "bcsmEvents": [{"eventTypeBCSM": "tBusy", "monitorMode": "interrupted"}]
    }
    # A CHOICE without "..." (LegID) still refuses an alternative it does not define.
    with pytest.raises(DecodeError):
        inap.decode_value(inap.inap_arg_type(24), h("30 08 80 01 0d a3 03 87 01 01"))


@pytest.mark.parametrize(
    ("opcode", "wire", "where"),
    [
        (0, "30 00", "serviceKey"),  # mandatory member missing
        (0, "30 03 80 01 64 00", "after"),  # trailing octet after the value
        (24, "30 03 80 01 0b", "ENUMERATED"),  # eventTypeBCSM 11 is not defined
        (22, "04 01 80", "constraint"),  # Cause shorter than 2 octets
        (20, "30 02 a0 00", "destinationRoutingAddress"),  # SIZE (1..3) violated
        (0, "30 06 80 01 64 80 01 65", "serviceKey repeated"),  # a member twice
        (0, "30 06 9c 01 0c 80 01 64", "serviceKey repeated or out of order"),
    ],
)
def test_invalid_values_raise_decode_error(opcode: int, wire: str, where: str) -> None:
    with pytest.raises(DecodeError) as err:
        inap.decode_value(inap.inap_arg_type(opcode), h(wire))
    assert err.value.layer == "inap"
    assert where.lower() in str(err.value).lower()


def test_encode_error_names_the_member() -> None:
    with pytest.raises(EncodeError, match="serviceKey"):
        inap.encode_value(inap.inap_arg_type(0), {"serviceKey": 2**31})


# -----------------------------------------------------------------------------------------
# Wireshark oracle: every argument inside TCAP Begin / SCCP UDT / M3UA DATA
# -----------------------------------------------------------------------------------------

SSN_INAP = 241
DIALOGUE_AS_ID = (0, 0, 17, 773, 1, 1, 1)


def _dialogue_portion(ac: tuple[int, ...]) -> bytes:
    """Q.773 §4.2.3 dialogue portion with an AARQ-apdu proposing ``ac``."""
    aarq = tlv(0x60, tlv(0x80, b"\x07\x80") + tlv(0xA1, tlv(0x06, encode_oid(ac))))
    external = tlv(0x28, tlv(0x06, encode_oid(DIALOGUE_AS_ID)) + tlv(0xA0, aarq))
    return tlv(0x6B, external)


def _invoke(invoke_id: int, opcode: int, param: bytes | None) -> bytes:
    body = tlv(0x02, encode_integer(invoke_id)) + tlv(0x02, encode_integer(opcode))
    return tlv(0xA1, body + (param or b""))


def _tcap_begin(otid: int, components: list[bytes], ac: tuple[int, ...] | None) -> bytes:
    dialogue = _dialogue_portion(ac) if ac else b""
    return tlv(
        0x62, tlv(0x48, otid.to_bytes(4, "big")) + dialogue + tlv(0x6C, b"".join(components))
    )


def _tcap_end(dtid: int, components: list[bytes]) -> bytes:
    return tlv(0x64, tlv(0x49, dtid.to_bytes(4, "big")) + tlv(0x6C, b"".join(components)))


def _sccp_udt(data: bytes) -> bytes:
    """Q.713 §4.10 UDT, class 1, both addresses route-on-SSN with only the INAP SSN (AI 0x42)."""
    return sccp_udt(data, called_ssn=SSN_INAP, calling_ssn=SSN_INAP, protocol_class=0x81)


def _frames() -> tuple[list[bytes], list[int]]:
    """One M3UA message per operation (Begin + Invoke), then results and errors (End)."""
    msgs: list[bytes] = []
    opcodes: list[int] = []
    for i, op in enumerate(sorted(OPERATIONS)):
        t = inap.inap_arg_type(op)
        param = inap.encode_value(t, ARGS[op]) if t is not None else None
        ac = inap.AC_INAP_CS1_IP_TO_SCP if op in (16, 47, 48, 49) else inap.AC_INAP_CS1_SSP_TO_SCP
        tcap = _tcap_begin(0x1000 + i, [_invoke(1, op, param)], ac)
        msgs.append(m3ua_data(_sccp_udt(tcap), sls=i % 16))
        opcodes.append(op)
    # the golden encodings too, each in its own Begin
    for i, (_, op, _, wire) in enumerate(GOLDEN):
        tcap = _tcap_begin(0x4000 + i, [_invoke(2, op, h(wire))], None)
        msgs.append(m3ua_data(_sccp_udt(tcap)))
        opcodes.append(op)
    # TC-END with the PACUI result: returnResultLast [2] {invokeID, SEQUENCE {opcode, result}}
    res = inap.encode_value(inap.inap_result_type(48), RESULT_48)
    rrl = tlv(0xA2, tlv(0x02, b"\x01") + tlv(0x30, tlv(0x02, b"\x30") + res))
    msgs.append(m3ua_data(_sccp_udt(_tcap_end(0x2000, [rrl]))))
    # TC-END with each error that has a parameter: returnError [3] {invokeID, errcode, param}
    for code, value in ERROR_PARAMS.items():
        par = inap.encode_value(inap.inap_error_type(code), value)
        rer = tlv(0xA3, tlv(0x02, b"\x01") + tlv(0x02, encode_integer(code)) + par)
        msgs.append(m3ua_data(_sccp_udt(_tcap_end(0x3000 + code, [rer]))))
    return msgs, opcodes


@pytest.mark.tshark
def test_wireshark_decodes_every_argument(tmp_path: Path) -> None:
    msgs, opcodes = _frames()
    pcap = tshark.write_pcap(msgs, tmp_path / "inap_cs1_args.pcap")
    tshark.assert_clean(pcap, expect_frames=len(msgs))
    rows = tshark.fields(
        pcap,
        [
            "frame.number",
            "inap.code.local",
            "inap.serviceKey",
            "inap.eventTypeBCSM",
            "inap.elementaryMessageID",
            "inap.maximumNbOfDigits",
            "inap.digitsResponse",
            "_ws.col.Info",
        ],
    )
    assert len(rows) == len(msgs)
    by_op = {op: rows[i] for i, op in enumerate(opcodes) if i < len(OPERATIONS)}
    for op, row in zip(opcodes, rows, strict=False):
        # the first code.local is the opcode (later ones: ExtensionField types)
        assert row[1].split(",")[0] == str(op), (OPERATIONS[op], row)
        # Wireshark names the operation in the Info column (CS-1 names are its CS-2 names)
        assert OPERATIONS[op].lower() in row[7].lower(), row[7]
    assert by_op[0][2] == "100"  # InitialDP serviceKey
    assert by_op[0][3] == "12"  # termAttemptAuthorized
    assert by_op[24][3] == "13"  # ERB tBusy
    assert by_op[23][3].split(",") == ["13", "14", "15", "18"]
    assert by_op[47][4] == "1001"  # variableMessage elementaryMessageID
    assert by_op[48][4] == "2001" and by_op[48][5] == "1"
    pacui_result = rows[len(opcodes)]
    assert pacui_result[6] == "001001"  # digitsResponse octets
    assert "promptAndCollectUserInformation" in pacui_result[7]
    error_rows = rows[len(opcodes) + 1 :]
    assert [r[1] for r in error_rows] == [str(c) for c in ERROR_PARAMS]  # errcode local
    assert [r[7].split()[-1] for r in error_rows] == [ERRORS[c] for c in ERROR_PARAMS]


# -----------------------------------------------------------------------------------------
# A real capture: Ericsson INAP CS1+ (a different AC) over segmented XUDT
# -----------------------------------------------------------------------------------------


def _pcap_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        out.append(data[off + 16 : off + 16 + incl])
        off += 16 + incl
    return out


def _sccp_over_m2pa(frame: bytes) -> list[bytes]:
    """SCCP messages in an Ethernet/IPv4/SCTP/M2PA (RFC 4165 User Data) frame."""
    ip = frame[14:]
    sctp = ip[(ip[0] & 0x0F) * 4 :]
    out, pos = [], 12
    while pos + 16 <= len(sctp):
        ctype, _, clen = struct.unpack("!BBH", sctp[pos : pos + 4])
        ppid = struct.unpack("!I", sctp[pos + 12 : pos + 16])[0]
        if ctype == 0 and ppid == 5:  # DATA, M2PA
            m2pa = sctp[pos + 16 : pos + clen]
            if m2pa[2] == 11 and m2pa[3] == 1:  # class M2PA, User Data
                mlen = struct.unpack("!I", m2pa[4:8])[0]
                mtp3 = m2pa[17:mlen]  # after common header, BSN, FSN and the priority octet
                if mtp3[0] & 0x0F == 3:  # SI = SCCP
                    out.append(mtp3[5:])  # after SIO and the 4-octet ITU routing label
        pos += (clen + 3) & ~3
    return out


def _xudt_data(sccp: bytes) -> bytes:
    """Q.713 §4.18 XUDT: the data parameter (third mandatory variable, pointer at octet 5)."""
    assert sccp[0] == 0x11
    at = 5 + sccp[5]
    return sccp[at + 1 : at + 1 + sccp[at]]


def _ericsson_invokes() -> list[tuple[int, bytes]]:
    frames = _pcap_frames(ERICSSON_PCAP)
    # Frames 1-3 are the three XUDT segments of one TCAP Begin (segmentation "remaining" 2, 1,
    # 0; in-sequence class 1), so the reassembled message is their data in order.
    tcap = b"".join(_xudt_data(s) for f in frames[:3] for s in _sccp_over_m2pa(f))
    _, vs, ve, _ = read_tlv(tcap, 0, len(tcap))
    assert tcap[0] == 0x62
    invokes = []
    for tag, cvs, cve, _ in children(tcap, vs, ve):
        if tag != 0x6C:
            continue
        for ctag, ivs, ive, _ in children(tcap, cvs, cve):
            assert ctag == 0xA1
            parts = children(tcap, ivs, ive)
            opcode = decode_integer(tcap, parts[1][1], parts[1][2])
            start = parts[2][3]
            _, _, _, end = read_tlv(tcap, start, ive)
            invokes.append((opcode, tcap[start:end]))
    return invokes


def test_ericsson_cs1plus_invokes_decode_as_far_as_the_core_set_goes() -> None:
    invokes = _ericsson_invokes()
    assert [op for op, _ in invokes] == [23, 19, 47, 32, 46, 34, 32, 46, 34, 23, 23, 31, 31]
    # RequestReportBCSMEvent with core event types decodes completely.
    rrbe = inap.decode_value(inap.inap_arg_type(23), invokes[0][1])
    assert rrbe == {
        "bcsmEvents": [
            {
                "eventTypeBCSM": "tAbandon",
                "monitorMode": "interrupted",
                "legID": ("sendingSideID", b"\x01"),
            },
            {
                "eventTypeBCSM": "tDisconnect",
                "monitorMode": "interrupted",
                "legID": ("sendingSideID", b"\x01"),
            },
        ]
    }
    # PlayAnnouncement decodes completely.
    pa = inap.decode_value(inap.inap_arg_type(47), invokes[2][1])
    assert pa == {
        "informationToSend": (
            "inbandInfo",
            {"messageID": ("elementaryMessageID", 4199), "numberOfRepetitions": 127},
        )
    }
    # FurnishChargingInformation: the billing octets are operator specific, carried opaque.
    fci = inap.decode_value(inap.inap_arg_type(34), invokes[5][1])
    assert isinstance(fci, bytes) and len(fci) == 24
    # ConnectToResource: resourceAddress none [3] decodes, but Ericsson sends [30] as a
    # constructed (CS-2 style) ServiceInteractionIndicators, where ETS 300 374-1 has an OCTET
    # STRING; the core type rightly refuses it.
    with pytest.raises(DecodeError, match="serviceInteractionIndicators"):
        inap.decode_value(inap.inap_arg_type(19), invokes[1][1])
    assert invokes[1][1][:4] == h("30 0a 83 00")
    # The later RRBEs arm Ericsson-private event types (249, 250, 251): not in EventTypeBCSM.
    with pytest.raises(DecodeError, match="eventTypeBCSM"):
        inap.decode_value(inap.inap_arg_type(23), invokes[9][1])
    # InitiateCallAttempt (32) and SendChargingInformation (46) use Ericsson private tags and
    # structured charging data: outside the core set (not asserted further).


# -----------------------------------------------------------------------------------------
# Fuzz: random and mutated parameters never raise anything but DecodeError
# -----------------------------------------------------------------------------------------


# BER octets worth planting: end-of-contents, high-tag-number and constructed forms, lengths.
INTERESTING = (0x00, 0x1F, 0x30, 0x80, 0x81, 0x9F, 0xA0, 0xFF)


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    return mutate(rng, data, interesting=INTERESTING, rounds=(1, 2, 3))


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """Raw damage, or damage inside the outer TLV re-wrapped with a correct length (so the
    frame reaches the typed decoder), or a stray member inserted between the outer ones."""
    choice = rng.random()
    if choice < 0.3 or len(data) < 2:
        return _mutate_bytes(rng, data)
    tag, vs, ve, _ = read_tlv(data, 0, len(data))
    if choice < 0.7 or not data[0] & 0x20:
        return tlv(tag, _mutate_bytes(rng, data[vs:ve]))
    kids = children(data, vs, ve)
    cut = rng.choice([k[3] for k in kids] + [ve])
    stray = tlv(
        rng.choice([0x80, 0x8B, 0x9F32, 0xA5, 0xBF3F, 0x04, 0x30]), rng.randbytes(rng.randint(0, 4))
    )
    return tlv(tag, data[vs:cut] + stray + data[cut:ve])


def test_fuzz_decoders_raise_only_decode_error() -> None:
    rng = random.Random(20261125)
    types = [(op, inap.inap_arg_type(op)) for op in sorted(ARGS)]
    types.append((48, inap.inap_result_type(48)))
    types += [(code, inap.inap_error_type(code)) for code in ERROR_PARAMS]
    seeds = {op: inap.encode_value(inap.inap_arg_type(op), v) for op, v in ARGS.items()}
    seeds.update({op: h(w) for _, op, _, w in GOLDEN})
    frames = typed = ok = 0
    for _ in range(650):
        for op, t in types:
            if rng.random() < 0.1:
                data = rng.randbytes(rng.randint(0, 40))
            else:
                data = _mutate(rng, seeds.get(op, b"\x30\x00"))
            frames += 1
            try:
                _, _, _, end = read_tlv(data, 0, len(data))
                typed += end == len(data)  # well-framed: pycrate gets to look at it
            except DecodeError:
                pass
            try:
                inap.decode_value(t, data)
                ok += 1
            except DecodeError as exc:
                assert exc.layer == "inap" and 0 <= exc.offset <= len(data)
    assert frames >= 18_000 and typed >= 10_000
    assert ok > 1_000  # many mutations still decode: the fuzz gets past the first tag
