"""China's 24-bit national point codes (YDN 038-1997 SCCP, GF 001-9001 MTP3) next to ITU's 14.

The wire layout is checked three ways: golden bytes, round trips, and tshark with its
``mtp3.standard`` preference set to "Chinese ITU" reading what we wrote (PC values compared).
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.codecs import m3ua, sccp
from scp.codecs.errors import DecodeError, EncodeError
from scp.config import ConfigError, parse_config
from scp.core.sccp import SccpLayer
from scp.primitives import (
    GlobalTitle,
    MtpTransfer,
    NUnitdata,
    PointCodeFormat,
    RoutingIndicator,
    SccpAddress,
)
from scp.tools.pcapread import CapturedMessage, read_capture
from tests import tshark
from tests.unit.test_pcapread import (
    data_chunk,
    ipv4,
    m2pa_user_data,
    m2ua_data,
    sctp,
    write_pcap,
)

CN = PointCodeFormat.CHINA
ITU = PointCodeFormat.ITU
CN_PREFS = ("-o", "mtp3.standard:Chinese ITU", *tshark.PREFS)
GT = GlobalTitle(digits="8613800000", gti=4, tt=0, np=1, nai=4)


def test_address_golden_bytes() -> None:
    a = SccpAddress(ri=RoutingIndicator.SSN, pc=0x123456, ssn=146)
    # AI 0x43 (route on SSN, SSN and PC present), PC least significant octet first, SSN
    assert sccp.encode_address(a, CN) == bytes.fromhex("43 563412 92")
    assert sccp.decode_address(bytes.fromhex("43563412 92"), 0, CN) == a
    # the same address in ITU format: two octets and 14 bits only
    small = SccpAddress(ri=RoutingIndicator.SSN, pc=0x1234, ssn=146)
    assert sccp.encode_address(small, ITU) == bytes.fromhex("43 3412 92")
    assert sccp.encode_address(small, CN) == bytes.fromhex("43 341200 92")


def test_addresses_round_trip_over_the_whole_range() -> None:
    rng = random.Random(24)
    for _ in range(2000):
        a = SccpAddress(
            ri=rng.choice(list(RoutingIndicator)),
            pc=rng.choice((None, 0, 0xFFFFFF, rng.randrange(1 << 24))),
            ssn=rng.choice((None, 6, 146, 241)),
            gt=rng.choice((None, GT)),
        )
        raw = sccp.encode_address(a, CN)
        assert sccp.decode_address(raw, 0, CN) == a
        if a.pc is not None and a.pc > 0x3FFF:
            with pytest.raises(EncodeError):
                sccp.encode_address(a, ITU)


def test_out_of_range_and_truncated_point_codes() -> None:
    with pytest.raises(EncodeError, match="china"):
        sccp.encode_address(SccpAddress(pc=1 << 24, ssn=146), CN)
    with pytest.raises(DecodeError, match="point code"):
        sccp.decode_address(bytes.fromhex("43 5634"), 0, CN)  # two of three octets


def test_scmg_golden_and_round_trip() -> None:
    sst = sccp.Scmg(sccp.ScmgFormat.SST, 146, 0x0A0B0C, 0)
    assert sccp.encode_scmg(sst, CN) == bytes.fromhex("03 92 0c0b0a 00")
    assert sccp.decode_scmg(bytes.fromhex("03920c0b0a00"), CN) == sst
    ssc = sccp.Scmg(sccp.ScmgFormat.SSC, 146, 0xFFFFFF, 1, congestion_level=5)
    assert sccp.decode_scmg(sccp.encode_scmg(ssc, CN), CN) == ssc
    with pytest.raises(DecodeError):
        sccp.decode_scmg(bytes.fromhex("03920c0b0a"), CN)  # no SMI after a 3-octet PC
    with pytest.raises(EncodeError):
        sccp.encode_scmg(sst, ITU)  # 0x0A0B0C needs 24 bits


def _layer(pc: int) -> SccpLayer:
    return SccpLayer(local_pc=pc, global_title="8613800000", local_ssns=(146, 147), pcf=CN)


def test_sst_is_answered_with_a_china_ssa() -> None:
    scp_pc, stp_pc = 0x123456, 0x0A0B0C
    layer = _layer(scp_pc)
    sst = sccp.encode_scmg(sccp.Scmg(sccp.ScmgFormat.SST, 146, scp_pc, 0), CN)
    udt = sccp.Udt(
        SccpAddress(ri=RoutingIndicator.SSN, pc=scp_pc, ssn=1),
        SccpAddress(ri=RoutingIndicator.SSN, pc=stp_pc, ssn=1),
        sst,
        0,
        False,
    )
    out = layer.handle_mtp_transfer(
        MtpTransfer(opc=stp_pc, dpc=scp_pc, si=3, ni=2, mp=0, sls=3, data=sccp.encode(udt, CN)), 0.0
    )
    xfers = [o for o in out if isinstance(o, MtpTransfer)]
    assert len(xfers) == 1 and xfers[0].dpc == stp_pc and xfers[0].opc == scp_pc
    answer = sccp.decode(xfers[0].data, CN)
    ssa = sccp.decode_scmg(answer.data, CN)
    assert ssa.format_id == sccp.ScmgFormat.SSA and ssa.affected_pc == scp_pc


def test_user_data_goes_out_with_three_octet_point_codes() -> None:
    layer = _layer(0x123456)
    req = NUnitdata(
        called=SccpAddress(ri=RoutingIndicator.SSN, pc=0x0A0B0C, ssn=6),
        calling=SccpAddress(ri=RoutingIndicator.SSN, pc=0x123456, ssn=147),
        data=b"\x62\x03\x48\x01\x01",
    )
    out = layer.handle_n_unitdata(req, 0.0)
    xfer = next(o for o in out if isinstance(o, MtpTransfer))
    assert xfer.dpc == 0x0A0B0C
    msg = sccp.decode(xfer.data, CN)
    assert msg.called.pc == 0x0A0B0C and msg.calling.pc == 0x123456


def test_config_takes_24_bit_point_codes_only_for_china() -> None:
    cfg = parse_config(
        '[m3ua]\npc_format = "china"\nlocal_pc = 1193046\n[sccp]\ndefault_dpc = 16777215\n'
    )
    assert cfg.m3ua.pcf is CN and cfg.m3ua.local_pc == 0x123456
    with pytest.raises(ConfigError, match="m3ua.local_pc"):
        parse_config("[m3ua]\nlocal_pc = 1193046\n")
    with pytest.raises(ConfigError, match="sccp.default_dpc"):
        parse_config("[sccp]\ndefault_dpc = 20000\n")
    with pytest.raises(ConfigError, match="m3ua.pc_format"):
        parse_config('[m3ua]\npc_format = "ansi"\n')


@pytest.mark.tshark
def test_tshark_reads_our_china_point_codes(tmp_path: Path) -> None:
    scp_pc, msc_pc = 0x123456, 0x0A0B0C
    pcap = tmp_path / "china.pcap"
    w = SctpPcapWriter.open(str(pcap))
    cd = SccpAddress(ri=RoutingIndicator.SSN, pc=scp_pc, ssn=146)
    cg = SccpAddress(ri=RoutingIndicator.GT, pc=msc_pc, ssn=146, gt=GT)
    tcap = bytes.fromhex("6203 4801 01")  # TC-BEGIN with an otid and nothing else
    frames = [
        sccp.encode(sccp.Udt(cd, cg, tcap, 1, True), CN),
        sccp.encode(
            sccp.Udt(
                SccpAddress(ri=RoutingIndicator.SSN, pc=scp_pc, ssn=1),
                SccpAddress(ri=RoutingIndicator.SSN, pc=msc_pc, ssn=1),
                sccp.encode_scmg(sccp.Scmg(sccp.ScmgFormat.SSA, 146, scp_pc, 0), CN),
                0,
                False,
            ),
            CN,
        ),
    ]
    for i, data in enumerate(frames):
        x = MtpTransfer(opc=msc_pc, dpc=scp_pc, si=3, ni=2, mp=0, sls=5, data=data)
        w.write(m3ua.encode_data(x, rc=1), ts=1.0 + i)
    w.close()
    tshark.assert_clean(pcap, prefs=CN_PREFS)
    rows = tshark.fields(
        pcap,
        ["sccp.called.chinese_pc", "sccp.calling.chinese_pc", "sccpmg.chinese_pc"],
        prefs=CN_PREFS,
    )

    def value(field: str) -> int | None:  # "18-52-86,1193046,0x123456" -> 1193046
        return int(field.split(",")[1]) if field else None

    assert [[value(f) for f in r] for r in rows] == [
        [scp_pc, msc_pc, None],
        [scp_pc, msc_pc, scp_pc],
    ]


@pytest.mark.tshark
def test_m2pa_capture_with_china_routing_labels(tmp_path: Path) -> None:
    """GF 001-9001 label: DPC (3 octets), OPC (3 octets), SLS octet; read as tshark reads it."""
    udt = sccp.encode(
        sccp.Udt(
            SccpAddress(ri=RoutingIndicator.SSN, pc=0x123456, ssn=146),
            SccpAddress(ri=RoutingIndicator.SSN, pc=0x0A0B0C, ssn=146),
            bytes.fromhex("62034801 01"),
            0,
            False,
        ),
        CN,
    )
    # SIO: NI 2, priority bits 01, SI 3; the label's last octet 0xA7: spare 1010, SLS 0111
    msu = (
        bytes([0x93])
        + (0x123456).to_bytes(3, "little")
        + (0x0A0B0C).to_bytes(3, "little")
        + bytes([0xA7])
        + udt
    )
    frames = [
        ipv4(sctp([data_chunk(m2pa_user_data(msu, pri=2), 1, ppid=5)])),
        ipv4(sctp([data_chunk(m2ua_data(msu), 2, ppid=2)])),
    ]
    pcap = write_pcap(tmp_path / "m2pa-china.pcap", 228, frames)  # LINKTYPE_IPV4
    msgs = [m for m in read_capture(str(pcap), CN) if isinstance(m, CapturedMessage)]
    label = {"opc": 0x0A0B0C, "dpc": 0x123456, "si": 3, "ni": 2, "sls": 7, "data": udt}
    # M2PA carries the priority in its own octet; M2UA leaves it in the SIO's spare bits
    assert [m.mtp3 for m in msgs] == [MtpTransfer(mp=2, **label), MtpTransfer(mp=1, **label)]
    tshark.assert_clean(pcap, prefs=CN_PREFS)
    rows = tshark.fields(pcap, ["mtp3.opc", "mtp3.dpc", "mtp3.sls"], prefs=CN_PREFS)
    assert rows == [[str(0x0A0B0C), str(0x123456), "7"]] * 2
    # the same bytes read as ITU are another label altogether: the format has to be told
    itu = [m for m in read_capture(str(pcap)) if isinstance(m, CapturedMessage)]
    assert itu[0].mtp3 is not None and itu[0].mtp3.dpc != 0x123456
    assert struct.unpack("<I", msu[1:5])[0] & 0x3FFF == itu[0].mtp3.dpc


def test_replay_reads_a_china_capture_when_told(tmp_path: Path) -> None:
    import json

    import click
    from click.testing import CliRunner

    from scp.cli.replay import replay

    pcap = tmp_path / "cn.pcap"
    w = SctpPcapWriter.open(str(pcap))
    udt = sccp.Udt(
        SccpAddress(ri=RoutingIndicator.SSN, pc=0x123456, ssn=146),
        SccpAddress(ri=RoutingIndicator.GT, pc=0x0A0B0C, ssn=146, gt=GT),
        bytes.fromhex("62034801 01"),
        1,
        True,
    )
    w.write(
        m3ua.encode_data(
            MtpTransfer(
                opc=0x0A0B0C, dpc=0x123456, si=3, ni=2, mp=0, sls=5, data=sccp.encode(udt, CN)
            ),
            rc=1,
        ),
        ts=1.0,
    )
    w.close()

    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = {}

    cli.add_command(replay)

    def first(*flags: str) -> dict[str, object]:
        res = CliRunner().invoke(cli, ["replay", "--decode-only", "--json", *flags, str(pcap)])
        assert res.exit_code == 0, res.output
        return dict(json.loads(res.output.splitlines()[0]))

    told = first("--pc-format", "china")
    assert told["tcap"] == "Begin" and told["calling_gt"] == "8613800000", told
    assert "SCCP:" in str(first("--pc-format", "itu").get("note")), "ITU cannot read it"
