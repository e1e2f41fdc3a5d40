"""INAP CS-1 and MAP fast-path differentials: same value / same octets as pycrate, or decline.

INAP (ETS 300 374-1): the hot operations decode and encode through the same plans as CAP,
compiled from the project's INAP transcription; its codec leaves DEFAULT members out
(X.690 §11.5) and drops unknown members before pycrate sees them, so the comparison is with
``inap.CODEC.ber_decode`` / ``ber_encode`` (the pruning decoder, the canonical encoder).
MAP (TS 29.002): alertServiceCentre (v2 op 64, v1 op 49) and NoteMM-Event (op 89).
Seeds: goldens, round-trip values, the pycrate-notation values of test_inap_asn, the
third-party captures; then >= 10,000 mutated parameters per operation.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from scp.codecs import inap, ops
from scp.codecs import map as m
from tests.helpers import h
from tests.unit import test_codecs_fastpath as fp
from tests.unit import test_codecs_fastpath_encode as fe
from tests.unit import test_inap_asn as ta
from tests.unit.codec_frames import PCAPS, components_from_pcap

INAP_AC = fp.ti.AC


def _inap_seeds() -> dict[tuple[int, str], list[bytes]]:
    out: dict[tuple[int, str], list[bytes]] = {}

    def add(code: Any, p: bytes | None, kind: str = "arg") -> None:
        if isinstance(code, int) and p:
            out.setdefault((code, kind), []).append(p)

    for _n, op in fp.ti.CASES:
        add(*inap.CODEC.encode_arg(op, ac=INAP_AC))
    for _n, _op, code, wire in fp.ti.GOLDEN:
        add(code, wire)
    for code, value in ta.ARGS.items():
        t = inap.CODEC.args[code][1]
        if t is not None:
            add(code, inap.CODEC.ber_encode(t, value))
    for _n, code, _value, hexs in ta.GOLDEN:
        add(code, h(hexs))
    pcap = PCAPS / "inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap"
    for kind, code, p, _ac in components_from_pcap(pcap):
        add(code, p, "arg" if kind == "invoke" else "res")
    for d in ("1", "12", "0987654321"):
        add(
            48, inap.CODEC.encode_result(48, ops.ReceivedInformation(fp.tc.GenericDigits(d))), "res"
        )
    add(*inap.CODEC.encode_arg(ops.PlayAnnouncement(fp.ti.ITS, False, False), ac=INAP_AC))
    add(36, bytes.fromhex("04 03 a0 01 00"))  # CallResult: network-specific octets
    add(35, bytes.fromhex("30 07 80 02 01 02 81 01 ff"))  # aChBCC, sendCalculation TRUE
    return out


INAP_SEEDS = _inap_seeds()
INAP_OPS = sorted(inap.CODEC.fast_decode | inap.CODEC.fast_encode)


@pytest.mark.parametrize("code", INAP_OPS)
def test_inap_differential(code: int) -> None:
    seeds = INAP_SEEDS[(code, "arg")]
    t = inap.CODEC.args[code][1]
    st = fp.Stats()
    rng = random.Random(300 + code)
    for i, p in enumerate(fp.corpus(seeds, fp.MUTATIONS, seed=400 + code)):
        value = fp.check_decode(inap.CODEC, t, p, st)
        if value is fp._ERR:
            continue
        fp.check_encode(inap.CODEC, t, value, st)
        if i % 2 == 0:
            fp.check_encode(inap.CODEC, t, fp.mutate_value(rng, value), st)
        if i % 4 == 0:
            a, b = fp.typed_both(inap.CODEC.decode_arg, code, p, ac=INAP_AC)
            assert a == b, p.hex()
            if isinstance(a, ops.Operation):
                a2, b2 = fp.typed_both(inap.CODEC.encode_arg, a, ac=INAP_AC)
                assert a2 == b2, (a, a2, b2)
    assert st.total >= fp.MUTATIONS
    assert st.pycrate_ok >= fp.MUTATIONS // 20, vars(st)
    assert st.fast >= st.pycrate_ok // 3, vars(st)


def test_inap_received_information_differential() -> None:
    t = inap.CODEC.results[48][1]
    st = fp.Stats()
    for p in fp.corpus(INAP_SEEDS[(48, "res")], fp.MUTATIONS, seed=448):
        value = fp.check_decode(inap.CODEC, t, p, st)
        if value is not fp._ERR:
            fp.check_encode(inap.CODEC, t, value, st)
            a, b = fp.typed_both(inap.CODEC.decode_result, 48, p, ac=INAP_AC)
            assert a == b
    assert st.pycrate_ok >= fp.MUTATIONS // 10 and st.fast >= st.pycrate_ok // 2, vars(st)


@pytest.mark.parametrize("code", sorted(inap.CODEC.fast_encode - {35, 36}))
def test_inap_encode_random_typed_values(code: int) -> None:
    rng = random.Random(code)
    ok = 0
    for _ in range(1_000):
        op = fe.random_op(rng, code)
        if isinstance(op, ops.InitialDP) and rng.random() < 0.8:  # CAMEL-only members off
            op = dataclasses.replace(
                op,
                imsi=None,
                call_reference_number=None,
                msc_address=None,
                called_party_bcd_number=None,
                time_and_timezone=None,
            )
        a, b = fp.typed_both(inap.CODEC.encode_arg, op, ac=INAP_AC)
        assert a == b, (op, a, b)
        ok += isinstance(a, tuple)
    assert ok > 100


# --------------------------------------------------------------------------------------------
# MAP
# --------------------------------------------------------------------------------------------

ALERT_V1, ALERT_V2, MM_V3 = fp.tm.ALERT_V1, fp.tm.ALERT_V2, fp.tm.MM_V3
MAP_OPS = {64: ALERT_V2, 49: ALERT_V1, 89: MM_V3}


def _map_seeds() -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {c: [] for c in MAP_OPS}
    for _n, op, ac, code in fp.tm.ARGS:
        if code in out:
            out[code].append(m.CODEC.encode_arg(op, ac=ac)[1])  # type: ignore[arg-type]
    for _n, _op, code, wire in fp.tm.GOLDEN:
        out[code].append(wire)
    for f in sorted(PCAPS.glob("map_*")):
        for kind, code, p, _ac in components_from_pcap(f):
            if kind == "invoke" and code in out and p:
                out[code].append(p)
    t89 = m.CODEC.args[89][1]
    out[89].append(
        m.CODEC.ber_encode(
            t89,
            {
                "serviceKey": 2**31 - 1,
                "eventMet": b"\x01",
                "imsi": bytes.fromhex("64001032547698f0"),
                "msisdn": bytes.fromhex("916831193254"),
                "locationInformation": {
                    "ageOfLocationInformation": 5,
                    "vlr-number": bytes.fromhex("9168310000"),
                    "cellGlobalIdOrServiceAreaIdOrLAI": (
                        "cellGlobalIdOrServiceAreaIdFixedLength",
                        bytes.fromhex("64f0000001 0002"),
                    ),
                },
                "supportedCAMELPhases": (0xE0, 3),
            },
        )
    )
    t64 = m.CODEC.args[64][1]
    out[64].append(
        m.CODEC.ber_encode(
            t64,
            {
                "msisdn": bytes.fromhex("916831"),
                "serviceCentreAddress": bytes.fromhex("9168"),
                "imsi": bytes.fromhex("64001032547698f0"),
                "smsGmscAlertEvent": "msAvailableForMtSms",
            },
        )
    )
    out[49] += out[64]
    return out


MAP_SEEDS = _map_seeds()


@pytest.mark.parametrize("code", sorted(MAP_OPS))
def test_map_differential(code: int) -> None:
    ac = MAP_OPS[code]
    codec = m.CODEC.syntax_of(ac)
    t = codec.args[code][1]
    st = fp.Stats()
    rng = random.Random(500 + code)
    for i, p in enumerate(fp.corpus(MAP_SEEDS[code], fp.MUTATIONS, seed=600 + code)):
        value = fp.check_decode(codec, t, p, st)
        if value is fp._ERR:
            continue
        fp.check_encode(codec, t, value, st)
        fp.check_encode(codec, t, fp.mutate_value(rng, value), st)
        if i % 3 == 0:
            a, b = fp.typed_both(m.CODEC.decode_arg, code, p, ac=ac)
            assert a == b, p.hex()
            if isinstance(a, ops.Operation):
                assert (
                    fp.typed_both(m.CODEC.encode_arg, a, ac=ac)[0]
                    == fp.typed_both(m.CODEC.encode_arg, a, ac=ac)[1]
                )
    assert st.total >= fp.MUTATIONS
    assert st.pycrate_ok >= fp.MUTATIONS // 10, vars(st)
    assert st.fast >= st.pycrate_ok // 2, vars(st)
