"""Golden tests for the SCCP codec (Q.713): named cases with commented wire bytes, both ways.

Every case is also decoded by pycrate's independent SCCP parser, and every encoding is wrapped
in an M3UA DATA message and read back by tshark, which must find nothing malformed. Real SCCP
messages taken from /work/shared/pcaps/real/ (see its MANIFEST.md) are decode vectors.
"""

from __future__ import annotations

import pytest

from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.sccp import (
    Ludt,
    Ludts,
    SccpMessage,
    Scmg,
    ScmgFormat,
    Segmentation,
    Udt,
    Udts,
    Xudt,
    Xudts,
    decode,
    decode_scmg,
    encode,
    encode_scmg,
    salvage_return_info,
)
from scp.primitives import GlobalTitle, RoutingIndicator, SccpAddress
from tests import tshark
from tests.helpers import h, m3ua_data

# A minimal TCAP Begin (otid 01020304) so that Wireshark's TCAP dissector stays clean.
TCAP = bytes.fromhex("6206480401020304")


def ssn(n: int) -> SccpAddress:
    return SccpAddress(RoutingIndicator.SSN, ssn=n)


GOLDEN: dict[str, tuple[SccpMessage, bytes]] = {
    "udt_ssn_only": (
        Udt(ssn(146), ssn(146), TCAP),
        h("""
        09           # UDT
        00           # protocol class 0, no return option
        03 05 07     # pointers: called, calling, data
        02 42 92     # called: len 2, AI 0x42 (RI=SSN, SSN present), SSN 146
        02 42 92     # calling: same
        08 6206480401020304  # data: len 8, TCAP Begin
        """),
    ),
    "udt_pc_ssn_class1_return": (
        Udt(
            SccpAddress(RoutingIndicator.SSN, pc=100, ssn=146),
            SccpAddress(RoutingIndicator.SSN, pc=200, ssn=146),
            TCAP,
            1,
            True,
        ),
        h("""
        09 81        # UDT, class 1 + return message on error
        03 07 0b     # pointers
        04 43 6400 92  # called: AI 0x43 (RI=SSN, SSN, PC), PC 100 (LSB first), SSN 146
        04 43 c800 92  # calling: PC 200, SSN 146
        08 6206480401020304
        """),
    ),
    "gti1_nai_odd": (
        Udt(
            SccpAddress(RoutingIndicator.GT, ssn=147, gt=GlobalTitle("12345", gti=1, nai=4)),
            ssn(147),
            TCAP,
        ),
        h("""
        09 00 03 09 0b
        06 06 93     # called: len 6, AI 0x06 (RI=GT, GTI 1, SSN), SSN 147
           84        #   odd indicator + NAI 4 (international)
           21 43 05  #   digits 12345, filler 0
        02 42 93
        08 6206480401020304
        """),
    ),
    "gti2_tt": (
        Udt(
            SccpAddress(RoutingIndicator.GT, ssn=147, gt=GlobalTitle("1234", gti=2, tt=1)),
            ssn(147),
            TCAP,
        ),
        h("""
        09 00 03 08 0a
        05 0a 93     # called: AI 0x0a (RI=GT, GTI 2, SSN), SSN 147
           01 21 43  #   TT 1, digits 1234
        02 42 93
        08 6206480401020304
        """),
    ),
    "gti3_tt_np_es": (
        Udt(
            SccpAddress(
                RoutingIndicator.GT, ssn=147, gt=GlobalTitle("8613800000", gti=3, tt=0, np=1)
            ),
            ssn(147),
            TCAP,
        ),
        h("""
        09 00 03 0c 0e
        09 0e 93     # called: AI 0x0e (RI=GT, GTI 3, SSN), SSN 147
           00 12     #   TT 0, NP 1 (E.164) / ES 2 (BCD even)
           6831080000  # digits 8613800000
        02 42 93
        08 6206480401020304
        """),
    ),
    "gti4_pc_ssn_and_gt_only": (
        Udt(
            SccpAddress(RoutingIndicator.GT, pc=300, ssn=8, gt=GlobalTitle("8613800000", gti=4)),
            SccpAddress(RoutingIndicator.GT, gt=GlobalTitle("861390001", gti=4)),
            TCAP,
        ),
        h("""
        09 00 03 0f 18
        0c 13 2c01 08  # called: AI 0x13 (RI=GT, GTI 4, SSN, PC), PC 300, SSN 8
           00 12 04    #   TT 0, NP 1 / ES 2 (even), NAI 4
           6831080000  #   8613800000
        09 10          # calling: AI 0x10 (RI=GT, GTI 4, no SSN, no PC)
           00 11 04    #   TT 0, NP 1 / ES 1 (odd), NAI 4
           6831090001  #   861390001 + filler
        08 6206480401020304
        """),
    ),
    "udts_unequipped_user": (
        Udts(ssn(146), ssn(146), TCAP, 4),
        h("""
        0a 04        # UDTS, return cause 4 (unequipped user)
        03 05 07 02 42 92 02 42 92
        08 6206480401020304
        """),
    ),
    "xudt_segmented_importance": (
        Xudt(ssn(146), ssn(146), TCAP, 1, True, 15, Segmentation(True, 0, 1, 0x123456), 3),
        h("""
        11 81 0f     # XUDT, class 1 + return option, hop counter 15
        04 06 08 10  # pointers: called, calling, data, optional part
        02 42 92 02 42 92
        08 6206480401020304
        10 04 81 563412  # segmentation: first, class 0, 1 remaining, local ref 0x123456 LSB first
        12 01 03     # importance 3
        00           # end of optional parameters
        """),
    ),
    "xudt_no_optional": (
        Xudt(ssn(146), ssn(146), TCAP, 0, False, 15),
        h("""
        11 00 0f
        04 06 08 00  # optional pointer 0: no optional part
        02 42 92 02 42 92
        08 6206480401020304
        """),
    ),
    "xudts_segmentation_failure": (
        Xudts(ssn(146), ssn(146), TCAP, 14, 15, Segmentation(False, 1, 0, 7)),
        h("""
        12 0e 0f     # XUDTS, cause 14 (segmentation failure), hop counter 15
        04 06 08 10
        02 42 92 02 42 92
        08 6206480401020304
        10 04 40 070000  # segmentation: not first, class 1, 0 remaining, ref 7
        00
        """),
    ),
    "ludt_importance": (
        Ludt(ssn(146), ssn(146), TCAP, 0, True, 15, None, 2),
        h("""
        13 80 0f     # LUDT, class 0 + return option, hop counter 15
        0700 0800 0900 1100  # two-octet pointers, LSB first, counted from their second octet
        02 42 92 02 42 92
        0800 6206480401020304  # long data: two-octet length
        12 01 02 00
        """),
    ),
    "ludts": (
        Ludts(ssn(146), ssn(146), TCAP, 1, 15),
        h("""
        14 01 0f 0700 0800 0900 0000
        02 42 92 02 42 92
        0800 6206480401020304
        """),
    ),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_encode(name: str) -> None:
    msg, wire = GOLDEN[name]
    assert encode(msg) == wire


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_decode(name: str) -> None:
    msg, wire = GOLDEN[name]
    assert decode(wire) == msg


SCMG_GOLDEN: dict[str, tuple[Scmg, bytes]] = {
    "sst": (Scmg(ScmgFormat.SST, 146, 100, 0), h("03 92 6400 00")),
    "ssa": (Scmg(ScmgFormat.SSA, 7, 900, 0), h("01 07 8403 00")),
    "ssp": (Scmg(ScmgFormat.SSP, 8, 0x3FFF, 1), h("02 08 ff3f 01")),
    "sor": (Scmg(ScmgFormat.SOR, 241, 1, 0), h("04 f1 0100 00")),
    "sog": (Scmg(ScmgFormat.SOG, 241, 1, 0), h("05 f1 0100 00")),
    "ssc": (Scmg(ScmgFormat.SSC, 147, 100, 0, 5), h("06 93 6400 00 05")),  # congestion level 5
}


@pytest.mark.parametrize("name", SCMG_GOLDEN)
def test_scmg_golden(name: str) -> None:
    msg, wire = SCMG_GOLDEN[name]
    assert encode_scmg(msg) == wire
    assert decode_scmg(wire) == msg


# ---------------------------------------------------------------------------------------------
# Independent decoder: pycrate_mobile.SCCP on the same bytes
# ---------------------------------------------------------------------------------------------


def _pycrate_addr(v: object) -> SccpAddress:
    ai = v["AddrInd"]  # type: ignore[index]
    pc = v["PC"].get_val() if ai["PCInd"].get_val() else None  # type: ignore[index]
    s = v["SSN"].get_val() if ai["SSNInd"].get_val() else None  # type: ignore[index]
    gti = ai["GTInd"].get_val()
    gt = None
    if gti:
        g = v["GT"].get_alt()  # type: ignore[index]
        names = [e._name for e in g._content]
        addr = g["Addr"]
        if hasattr(addr, "get_alt"):
            digits = addr.get_alt().decode()
        else:  # GTI 2: pycrate leaves the digits as a buffer; BCD, low nibble first
            digits = "".join(f"{b & 15:x}{b >> 4:x}" for b in addr.to_bytes())
        es = g["EncodingScheme"].get_val() if "EncodingScheme" in names else None
        odd = g["OE"].get_val() if "OE" in names else (es == 1)
        if odd:
            digits = digits[:-1]  # pycrate keeps the filler digit
        gt = GlobalTitle(
            digits=digits.lower(),
            gti=gti,
            tt=g["TranslationType"].get_val() if "TranslationType" in names else 0,
            np=g["NumberingPlan"].get_val() if "NumberingPlan" in names else 1,
            nai=g["NAI"].get_val() if "NAI" in names else 4,
        )
    ri = RoutingIndicator(ai["RoutingInd"].get_val())
    return SccpAddress(ri=ri, pc=pc, ssn=s, gt=gt)


def _pycrate_check(wire: bytes, ours: SccpMessage) -> None:
    from pycrate_mobile.SCCP import parse_SCCP

    m, err = parse_SCCP(wire, w_scmg=False)
    assert err == 0
    assert m["Type"].get_val() == wire[0]
    if isinstance(ours, (Udt, Xudt, Ludt)):
        assert m["ProtocolClass"]["Class"].get_val() == ours.protocol_class
        assert (m["ProtocolClass"]["Handling"].get_val() == 8) == ours.return_option
    else:
        assert m["RetCause"].get_val() == ours.return_cause
    if not isinstance(ours, (Udt, Udts)):
        assert m["HopCounter"].get_val() == ours.hop_counter
    assert _pycrate_addr(m["CalledPartyAddr"]["Value"]) == ours.called
    assert _pycrate_addr(m["CallingPartyAddr"]["Value"]) == ours.calling
    key = "LongData" if isinstance(ours, (Ludt, Ludts)) else "Data"
    assert m[key]["Value"].to_bytes() == ours.data
    seg = getattr(ours, "segmentation", None)
    if seg is not None:
        s = m["Opt"]["Segmentation"]["Segmentation"]
        assert bool(s["F"].get_val()) == seg.first
        assert s["C"].get_val() == seg.protocol_class
        assert s["RemainingSeg"].get_val() == seg.remaining
        # pycrate reads the local reference most significant octet first, Wireshark (and we)
        # least significant first; it is an opaque reference, so compare the octets.
        assert s["SegmentLocalRef"].get_val().to_bytes(3, "big") == seg.local_reference.to_bytes(
            3, "little"
        )


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_against_pycrate(name: str) -> None:
    msg, wire = GOLDEN[name]
    _pycrate_check(wire, msg)


# ---------------------------------------------------------------------------------------------
# Real captures (/work/shared/pcaps/real/, MANIFEST.md): SCCP octets as tshark shows them
# ---------------------------------------------------------------------------------------------

REAL: dict[str, str] = {
    # #6 inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap frame 4: SCMG SST for SSN 7
    "inap6_f4_sst": "09000305090242010443860301050307840300",
    # #6 frame 3: last XUDT segment (remaining 0, local ref 1), called GT 9725443322 SSN 6
    "inap6_f3_xudt_last": (
        "118104040e10a90a1206001204795244332202420b99300b80010f810100a203800103300b8001fa81010"
        "1a203800103a15d02010b0201173055a053300b8001f9810100a203800102300b80010d810100a2038001"
        "02300b8001fb810100a203800102301080010e810100a203800102be03810114300b80010f810100a2038"
        "00102300b8001fa810101a203800102a10d02010c02011fe105a103800102a10d02010d02011fe105a103"
        "800103000010044001000000"
    ),
    # #7 map_pcapr_sri-sm_mo-mt-forwardsm_m2pa.pcap frame 18: XUDTS cause 8, last segment
    "map7_f18_xudts": (
        "12080d040f1a390b12080011041497797908000b12080011041497947400001fb3dd7039584c36a3d56c37"
        "5c0e1693cd6835db0d97c3c664335acd76c3e5b410044000000200"
    ),
    # #1 cap_wireshark-sample_camel_m2ua.pcap frame 1 (first 20 octets of TCAP are enough
    # for SCCP: the data length is rewritten below): UDT PC+SSN 100/200 <- 10/152
    "cap1_f1_udt_head": "098103070b04436400c804430a0098",
}


def test_real_sst() -> None:
    msg = decode(bytes.fromhex(REAL["inap6_f4_sst"]))
    assert msg == Udt(
        called=ssn(1),
        calling=SccpAddress(RoutingIndicator.SSN, pc=902, ssn=1),
        data=bytes.fromhex("0307840300"),
    )
    assert decode_scmg(msg.data) == Scmg(ScmgFormat.SST, 7, 900, 0)
    assert encode(msg) == bytes.fromhex(REAL["inap6_f4_sst"])


def test_real_segmented_xudt() -> None:
    wire = bytes.fromhex(REAL["inap6_f3_xudt_last"])
    msg = decode(wire)
    assert isinstance(msg, Xudt)
    assert msg.protocol_class == 1 and msg.return_option and msg.hop_counter == 4
    assert msg.called == SccpAddress(
        RoutingIndicator.GT, ssn=6, gt=GlobalTitle("9725443322", gti=4, tt=0, np=1, nai=4)
    )
    assert msg.calling == ssn(11)
    assert msg.segmentation == Segmentation(
        first=False, protocol_class=1, remaining=0, local_reference=1
    )
    assert len(msg.data) == 153
    assert encode(msg) == wire
    _pycrate_check(wire, msg)


def test_real_segmented_xudts() -> None:
    wire = bytes.fromhex(REAL["map7_f18_xudts"])
    msg = decode(wire)
    assert isinstance(msg, Xudts)
    assert msg.return_cause == 8 and msg.hop_counter == 13
    assert msg.called.gt == GlobalTitle("41799797800", gti=4)
    assert msg.calling.gt == GlobalTitle("41794947000", gti=4)
    assert msg.segmentation == Segmentation(False, 1, 0, 0x020000)
    assert encode(msg) == wire
    _pycrate_check(wire, msg)


def test_real_udt_pc_ssn() -> None:
    wire = bytes.fromhex(REAL["cap1_f1_udt_head"])
    wire += b"\x00"  # data length 0 for the truncated excerpt
    msg = decode(wire)
    assert msg == Udt(
        SccpAddress(RoutingIndicator.SSN, pc=100, ssn=200),
        SccpAddress(RoutingIndicator.SSN, pc=10, ssn=152),
        b"",
        1,
        True,
    )


def test_address_after_the_data() -> None:
    # #14 map_ss7fw-rule-mining_test_cgGT_in_end_of_msg.pcap: the called address follows the
    # data (pointers 0x58 0x02 0x0d, out of the usual order). Q.713 §2.3 allows any order.
    wire = bytes.fromhex(
        "098158020d0b12070012049323504903004862464804c610036e6b1e281c060700118605010101a011600f8002"
        "0780a109060704000001000e036c80a11a0201010201383012800854046001076029f002010181008301000000"
        "0d12060071045892201670009602"
    )
    msg = decode(wire)
    assert isinstance(msg, Udt)
    assert msg.called == SccpAddress(
        RoutingIndicator.GT, ssn=6, gt=GlobalTitle("852902610700692", gti=4, tt=0, np=7, nai=4)
    )  # NP 7: E.214 (mobile global title)
    assert msg.calling == SccpAddress(
        RoutingIndicator.GT, ssn=7, gt=GlobalTitle("393205943000", gti=4, tt=0, np=1, nai=4)
    )
    assert len(msg.data) == 72 and msg.data[0] == 0x62
    _pycrate_check(wire, msg)
    assert decode(encode(msg)) == msg  # we re-encode in the usual order


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

BAD: dict[str, tuple[bytes, int, str]] = {
    "empty": (b"", 0, "empty"),
    "connection_oriented_cr": (h("01 000001 02 02 04 02 42 92"), 0, "not a connectionless"),
    "udt_too_short": (h("09 00 03"), 3, "shorter"),
    "zero_pointer": (h("09 00 00 05 07 02 42 92 02 42 92 00"), 2, "zero"),
    "pointer_beyond": (h("09 00 03 05 40 02 42 92 02 42 92 00"), 4, "beyond"),
    "data_runs_past_end": (h("09 00 03 05 07 02 42 92 02 42 92 05 01"), 11, "past the end"),
    "class_2_in_udt": (h("09 02 03 05 07 02 42 92 02 42 92 00"), 1, "protocol class 2"),
    "gti_5": (h("09 00 03 05 07 02 56 92 02 42 92 00"), 6, "indicator 5"),
    "pc_truncated": (h("09 00 03 04 06 01 43 02 42 92 00"), 7, "point code"),
    "es_3": (h("09 00 03 07 09 04 0c 00 13 21 02 42 92 00"), 8, "encoding scheme 3"),
    "segmentation_len_3": (
        h("11 00 0f 04 06 08 08 02 42 92 02 42 92 00 10 03 80 00 00 00"),
        14,
        "length is not 4",
    ),
}


@pytest.mark.parametrize("name", BAD)
def test_decode_errors(name: str) -> None:
    wire, offset, reason = BAD[name]
    with pytest.raises(DecodeError) as ei:
        decode(wire)
    assert ei.value.layer == "sccp"
    assert ei.value.offset == offset
    assert reason in ei.value.reason


def test_encode_errors() -> None:
    with pytest.raises(EncodeError):
        encode(Udt(SccpAddress(pc=0x4000, ssn=1), ssn(1), b""))
    with pytest.raises(EncodeError):
        encode(Udt(SccpAddress(RoutingIndicator.GT, gt=GlobalTitle("12x4")), ssn(1), b""))
    with pytest.raises(EncodeError):
        encode(Udt(ssn(1), ssn(1), b"x" * 256))
    with pytest.raises(EncodeError):
        encode(Udt(ssn(1), ssn(1), b"", protocol_class=2))
    with pytest.raises(EncodeError):
        encode(Xudt(ssn(1), ssn(1), b"x" * 250, segmentation=Segmentation(True, 0, 1, 1)))


def test_salvage_return_info() -> None:
    # UDT with return option, readable addresses, but a called GTI 5 (undefined)
    wire = h("09 80 03 05 07 02 56 92 02 42 93 02 abcd")
    with pytest.raises(DecodeError):
        decode(wire)
    assert salvage_return_info(wire) == (0x09, ssn(0x93), None, b"\xab\xcd")
    assert salvage_return_info(h("09 00 03 05 07 02 56 92 02 42 93 02 abcd")) is None  # no return
    assert salvage_return_info(h("0a 80 03 05 07 02 56 92 02 42 93 02 abcd")) is None  # a UDTS


def test_gti2_odd_digits_keep_the_filler() -> None:
    # GTI 2 has no odd/even indicator: an odd count comes back with its filler digit.
    a = SccpAddress(RoutingIndicator.GT, gt=GlobalTitle("123", gti=2, tt=3))
    msg = decode(encode(Udt(a, ssn(1), b"")))
    assert msg.called.gt == GlobalTitle("1230", gti=2, tt=3)


@pytest.mark.tshark
def test_golden_tshark_clean() -> None:
    frames = [m3ua_data(wire, opc=200, dpc=100) for _, wire in GOLDEN.values()]
    # SCMG messages travel between SSN 1 and SSN 1 in class 0 UDTs.
    frames += [
        m3ua_data(encode(Udt(ssn(1), ssn(1), wire)), opc=200, dpc=100)
        for _, wire in SCMG_GOLDEN.values()
    ]
    pcap = tshark.write_pcap(frames)
    tshark.assert_clean(pcap, expect_frames=len(frames))
    rows = tshark.fields(pcap, ["sccp.message_type", "sccp.called.ssn"])
    assert [int(r[0], 16) for r in rows[: len(GOLDEN)]] == [w[0] for _, w in GOLDEN.values()]
    assert rows[0][1] == "146"
