"""CAP encode differential: the fast path's octets are pycrate's, byte for byte, or it declines.

For each hot operation the SCP sends (RequestReportBCSMEvent, Connect, ConnectToResource,
PlayAnnouncement, PromptAndCollectUserInformation, ReleaseCall, ApplyCharging,
EstablishTemporaryConnection; Continue and DisconnectForwardConnection carry no argument):

* >= 10,000 mutated parameters; each one pycrate decodes gives a value that both encoders
  must write identically (and a mutated value: wrong types, out-of-range numbers, unknown
  members, which the fast path must decline, never encode where pycrate refuses);
* the typed operations decoded from them, and randomly built typed operations, encoded by
  ``cap.CODEC.encode_arg`` with the fast path on and off: identical results.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from scp.codecs import callcontrol, cap, ops
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
from tests.unit import test_codecs_fastpath as fp

HOT_CAP_ENCODE = sorted(callcontrol.HOT_ENCODE)
ACS = (fp.V2, fp.tc.V3, fp.V4)


def _decoded_typed(code: int, p: bytes, ac: tuple[int, ...]) -> ops.Operation | None:
    fp.fastber.ENABLED = False
    try:
        return cap.CODEC.decode_arg(code, p, ac=ac)
    except fp.DecodeError:
        return None
    finally:
        fp.fastber.ENABLED = True


@pytest.mark.parametrize("code", HOT_CAP_ENCODE)
def test_cap_encode_differential(code: int) -> None:
    seeds = [p for p, _ac in fp.CAP_SEEDS[(code, "arg")]]
    t = cap.CODEC.args[code][1]
    st = fp.Stats()
    rng = random.Random(1000 + code)
    typed = 0
    for i, p in enumerate(fp.corpus(seeds, fp.MUTATIONS, seed=200 + code)):
        value = fp.check_decode(cap.CODEC, t, p, st)
        if value is fp._ERR:
            continue
        fp.check_encode(cap.CODEC, t, value, st)
        fp.check_encode(cap.CODEC, t, fp.mutate_value(rng, value), st)
        if i % 3 == 0:
            ac = rng.choice(ACS)
            a, b = fp.typed_both(cap.CODEC.decode_arg, code, p, ac=ac)
            assert a == b, p.hex()
            op = _decoded_typed(code, p, ac)
            if op is not None:
                a, b = fp.typed_both(cap.CODEC.encode_arg, op, ac=ac)
                assert a == b, (op, a, b)
                typed += 1
    assert st.total >= fp.MUTATIONS
    assert st.pycrate_ok >= fp.MUTATIONS // 10, vars(st)
    assert st.enc_fast >= st.pycrate_ok // 2, vars(st)
    assert typed > 100


def _digits(rng: random.Random, lo: int = 1, hi: int = 15) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(lo, hi)))


def _leg(rng: random.Random) -> ops.LegID | None:
    return rng.choice(
        [None, ops.LegID(1, True), ops.LegID(2, True), ops.LegID(2)] * 5 + [ops.LegID(7)]
    )


def _its(rng: random.Random) -> ops.InformationToSend:
    r = rng.random()
    if r < 0.2:
        return ops.InformationToSend(
            tone_id=rng.randrange(-2, 300), tone_duration=rng.choice([None, 0, 5, 300])
        )
    if r < 0.3:
        return ops.InformationToSend(text=rng.choice(["hello", "x" * 200, ""]))
    return ops.InformationToSend(
        message_ids=tuple(
            rng.choice([rng.randrange(0, 2**31)] * 20 + [-1, 2**31])
            for _ in range(rng.choice((1, 1, 2, 5, 20)))
        ),
        number_of_repetitions=rng.choice([None, 1, 3, 127] * 5 + [128]),
        duration=rng.choice([None, 0, 10, 32767] * 5 + [32768]),
        interval=rng.choice([None, 0, 1, 32767] * 5 + [40000]),
    )


def random_op(rng: random.Random, code: int) -> ops.Operation:
    """A plausible (and sometimes out-of-range) typed value of a hot encode operation."""
    if code == 23:
        return ops.RequestReportBCSMEvent(
            tuple(
                ops.BCSMEvent(
                    rng.choice([2, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 17, 18] * 8 + [11, 99]),
                    rng.choice([0, 1, 2] * 10 + [3]),
                    _leg(rng),
                    rng.choice([None, None, 1, 30, 120] * 5 + [2048]),
                    rng.random() < 0.1,
                )
                for _ in range(rng.choice([1, 2, 4, 5, 8, 0, 31]))
            )
        )
    if code == 20:
        return ops.Connect(
            tuple(
                CalledPartyNumber(_digits(rng), nai=rng.choice((1, 3, 4)))
                for _ in range(rng.choice((0, 1, 1, 1, 2, 1)))
            ),
            calling_partys_category=rng.choice([None, 10, 255, 256]),
            redirection_information=rng.choice([None, b"\x04\x11", b"\x01"]),
            suppression_of_announcement=rng.random() < 0.3,
            ocsi_applicable=rng.random() < 0.3,
            generic_numbers=tuple(
                GenericNumber(_digits(rng)) for _ in range(rng.choice((0, 0, 1, 6)))
            ),
        )
    if code == 19:
        return ops.ConnectToResource(rng.choice([None, CalledPartyNumber(_digits(rng, 1, 30))]))
    if code == 22:
        return ops.ReleaseCall(Cause(rng.randrange(0, 128), location=rng.randrange(0, 16)))
    if code == 47:
        return ops.PlayAnnouncement(_its(rng), rng.random() < 0.5, rng.random() < 0.5)
    if code == 48:
        cd = ops.CollectedDigits(
            rng.choice([1, 4, 16, 127] * 5 + [128, 0]),
            rng.choice([1, 1, 2] * 5 + [0]),
            rng.choice([None, b"#", b"\x0b", b"##"] * 5 + [b"###", b""]),
            rng.choice([None, b"*"]),
            rng.choice([None, b"1"]),
            rng.choice([None, 1, 10, 127] * 5 + [128]),
            rng.choice([None, 5] * 5 + [0]),
            rng.choice([None, 0, 1, 2] * 5 + [3]),
            rng.choice([None, True, False]),
            rng.choice([None, True, False]),
            rng.choice([None, True, False]),
        )
        return ops.PromptAndCollectUserInformation(
            cd, rng.choice([None, _its(rng)]), rng.random() < 0.5
        )
    if code == 35:
        return ops.ApplyCharging(
            rng.choice([1, 600, 36000, 864000, 0, 864001]),
            rng.random() < 0.5,
            rng.choice([None, 1, 86400]),
            rng.choice([None, True, False]),
            rng.choice([None, ops.LegID(1, True), ops.LegID(2, True)]),
        )
    if code == 17:
        return ops.EstablishTemporaryConnection(
            rng.choice([GenericNumber(_digits(rng), nqi=1), CalledPartyNumber(_digits(rng))]),
            rng.choice([None, GenericDigits(_digits(rng, 1, 8))]),
            rng.choice([None, b"\x01\x02", b"\x01" * 50]),
        )
    if code == 0:
        return ops.InitialDP(
            rng.choice([0, 100, 2**31 - 1] * 5 + [-1, 2**31]),
            rng.choice([None, CalledPartyNumber(_digits(rng, 1, 30), nai=rng.choice((1, 3, 4)))]),
            rng.choice([None, CallingPartyNumber(_digits(rng, 1, 20))]),
            rng.choice([None, 10, 255]),
            rng.choice([None, CallingPartyNumber(_digits(rng))]),
            rng.choice([None, RedirectingNumber(_digits(rng))]),
            rng.choice([None, 2, 3, 12, 11]),
            rng.choice([None, RedirectingNumber(_digits(rng))]),
            rng.choice([None, b"\x04\x11", b"\x04"]),
            rng.choice([None, _digits(rng, 5, 15), _digits(rng, 16, 18)]),
            rng.choice([None, b"\x01\x02\x03", b"\x01" * 9]),
            rng.choice([None, AddressString(_digits(rng, 1, 18))]),
            rng.choice([None, AddressString(_digits(rng, 1, 20))]),
            rng.choice([None, TimeAndTimezone(dt.datetime(2026, 11, 25, 18, 5, 9), 32)]),
            rng.choice([None, Cause(rng.randrange(128))]),
        )
    if code == 16:
        return ops.AssistRequestInstructions(
            GenericDigits(_digits(rng, 1, 12)), rng.choice([None, b"\x01", b"\x01" * 5])
        )
    if code == 24:
        kind = rng.choice(list(_CAUSE_KINDS) + ["oAnswerSpecificInfo", "tAnswerSpecificInfo"])
        return ops.EventReportBCSM(
            rng.choice([4, 5, 6, 7, 9, 10, 13, 14, 15, 17, 18] * 5 + [11]),
            rng.choice(
                [None, ops.EventSpecificInfo(kind, Cause(17) if kind in _CAUSE_KINDS else None)]
            ),
            _leg(rng),
            rng.choice([0, 1]),
        )
    if code == 36:
        return ops.ApplyChargingReport(
            ops.LegID(rng.choice([1, 2])),
            rng.choice(
                [
                    ops.TimeInformation(time_if_no_tariff_switch=rng.choice([0, 26, 864000])),
                    ops.TimeInformation(None, rng.randrange(0, 1000), rng.randrange(1, 1000)),
                ]
            ),
            rng.random() < 0.5,
            rng.random() < 0.5,
        )
    raise AssertionError(code)


_CAUSE_KINDS = (
    "routeSelectFailureSpecificInfo",
    "oCalledPartyBusySpecificInfo",
    "tBusySpecificInfo",
    "oDisconnectSpecificInfo",
    "tDisconnectSpecificInfo",
)


@pytest.mark.parametrize("code", sorted(callcontrol.HOT))
def test_cap_encode_random_typed_values(code: int) -> None:
    rng = random.Random(code)
    ok = 0
    for _ in range(2_000):
        op = random_op(rng, code)
        ac = rng.choice(ACS + (fp.SRF_V2,))
        a, b = fp.typed_both(cap.CODEC.encode_arg, op, ac=ac)
        assert a == b, (op, a, b)
        ok += isinstance(a, tuple)
    assert ok > 300  # the rest are refused alike by both paths (EncodeError)
