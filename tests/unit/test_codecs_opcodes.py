"""The opcode tables of scp.codecs.opcodes against the compiled ASN.1, and the codecs that use them.

Each table is written out by hand with the spec's names; the ASN.1 the codecs read is the
independent source it must equal: pycrate's CAP (CAP-operationcodes, CAP-errortypes) and MAP
(TS 29.002 operation and error objects) modules, and for INAP our compiled ETS 300 374-1
transcription (tests/unit/test_inap_asn.py checks the INAP tables against its objects).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from pycrate_asn1dir import TCAP_CAP

from scp.codecs import cap, inap, ops
from scp.codecs import map as m
from scp.codecs.opcodec import OperationCodec
from scp.codecs.opcodes import (
    CapErrorCode,
    CapOpcode,
    Code,
    InapErrorCode,
    InapOpcode,
    MapErrorCode,
    MapOpcode,
    spec_names,
)


def _names(table: dict[int, tuple[str, object]]) -> dict[int, str]:
    return {code: name for code, (name, _type) in table.items()}


def test_cap_tables_are_the_compiled_ones() -> None:
    # the operations of the call-control packages, named by CAP-operationcodes
    assert _names(cap.CODEC.args) == spec_names(CapOpcode)
    codes = {}
    for name in TCAP_CAP.CAP_operationcodes._obj_:
        value = getattr(TCAP_CAP.CAP_operationcodes, name.replace("-", "_"))._val
        codes[value[1]] = name.removeprefix("opcode-")
    assert {code: codes[code] for code in map(int, CapOpcode)} == spec_names(CapOpcode)
    assert _names(cap.CODEC.errors) == spec_names(CapErrorCode)


def test_map_tables_are_the_compiled_ones() -> None:
    assert _names(m.CODEC.args) == spec_names(MapOpcode)
    assert _names(m.CODEC.errors) == spec_names(MapErrorCode)
    # MAP v1/v2 dialogues are read with the v2 ASN.1: the same codes, one older name
    v2 = _names(m.CODEC.v2.args)
    assert set(v2) == set(spec_names(MapOpcode))
    assert {c: n for c, n in v2.items() if n != spec_names(MapOpcode)[c]} == {
        MapOpcode.MO_FORWARD_SM: "forwardSM"
    }


def test_inap_codec_uses_the_table() -> None:
    assert _names(inap.CODEC.args) == spec_names(InapOpcode)
    assert _names(inap.CODEC.errors) == spec_names(InapErrorCode)


@pytest.mark.parametrize("codec", [cap.CODEC, inap.CODEC, m.CODEC], ids=lambda c: c.layer)
def test_codec_names_are_its_tables(codec: OperationCodec) -> None:
    assert codec.opcode_names == _names(codec.args)
    assert codec.error_names == _names(codec.errors)
    # every typed conversion, fast path and result belongs to an operation of the protocol
    known = set(codec.opcode_names)
    assert set(codec.typed) | set(codec.typed_results) <= known
    assert codec.fast_decode | codec.fast_encode | codec.fast_results <= known


def test_cap_keeps_the_inap_codes() -> None:
    """CAMEL took its call-control operations from Q.1218 with their codes, so the call flows
    name CAP's codes for INAP dialogues too: a code both tables hold means the same operation
    (the same error; INAP spells cancelled, CAP canceled), and INAP's only extras are the two
    CS-1 charging-event operations CAMEL left out."""
    cap_ops, inap_ops = spec_names(CapOpcode), spec_names(InapOpcode)
    assert {c: inap_ops[c] for c in inap_ops if c in cap_ops} == {
        c: cap_ops[c] for c in inap_ops if c in cap_ops
    }
    assert set(inap_ops) - set(cap_ops) == {
        InapOpcode.REQUEST_NOTIFICATION_CHARGING_EVENT,
        InapOpcode.EVENT_NOTIFICATION_CHARGING,
    }
    for err in InapErrorCode:
        assert CapErrorCode(err).spec_name.lower().replace("canceled", "cancelled") == (
            err.spec_name.lower()
        )


def test_members_are_ints_with_spec_names() -> None:
    assert MapOpcode.NOTE_MM_EVENT == 89 and MapOpcode.NOTE_MM_EVENT.spec_name == "noteMM-Event"
    assert CapOpcode.INITIAL_DP.spec_name == "initialDP" and f"{CapOpcode.CONTINUE}" == "31"
    assert {31: "x"}[CapOpcode.CONTINUE] == "x"
    for table in (CapOpcode, CapErrorCode, InapOpcode, InapErrorCode, MapOpcode, MapErrorCode):
        assert issubclass(table, Code)
        assert len(set(map(int, table))) == len(table)  # no two names for one code
        assert len({member.spec_name for member in table}) == len(table)


def test_decoded_values_carry_the_spec_names() -> None:
    err = m.CODEC.decode_error(MapErrorCode.ABSENT_SUBSCRIBER_SM, None)
    assert err == ops.OperationError(6, "absentSubscriberSM", None)
    # An operation the codec knows but does not type: an empty CollectInformationArg.
    g = cap.CODEC.decode_arg(CapOpcode.COLLECT_INFORMATION, b"\x30\x00")
    assert isinstance(g, ops.GenericOperation)
    assert g.name == CapOpcode.COLLECT_INFORMATION.spec_name


def test_the_tables_load_no_asn1() -> None:
    """The service layer and the tools import the tables without loading any ASN.1."""
    code = (
        "import sys, scp.codecs.opcodes; "
        "assert not [n for n in sys.modules if n.startswith('pycrate')], sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
