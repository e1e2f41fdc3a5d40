"""Fuzz the CAP / INAP / MAP decoders: seeded random and mutated parameters, >= 10,000 each.

Only DecodeError may come out of a decoder; whatever decodes must re-encode (or refuse with an
EncodeError, never anything else).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from scp.codecs import cap, inap, ops
from scp.codecs import map as m
from scp.codecs.errors import CodecError, DecodeError
from tests.helpers import mutate
from tests.unit import test_codecs_cap as tc
from tests.unit import test_codecs_inap as ti
from tests.unit import test_codecs_map as tm

FRAMES = 10_000


def _seeds_cap() -> list[tuple[int, bytes | None, tuple[int, ...] | None]]:
    out = []
    for _n, op, acs in tc.CASES:
        code, p = cap.CODEC.encode_arg(op, ac=acs[0])
        out.append((code, p, acs[0]))
    return out


def _seeds_inap() -> list[tuple[int, bytes | None, tuple[int, ...] | None]]:
    return [(*inap.CODEC.encode_arg(op, ac=ti.AC), ti.AC) for _n, op in ti.CASES]  # type: ignore[misc]


def _seeds_map() -> list[tuple[int, bytes | None, tuple[int, ...] | None]]:
    return [(*m.CODEC.encode_arg(op, ac=ac), ac) for _n, op, ac, _c in tm.ARGS]  # type: ignore[misc]


# BER identifier and length octets the CAP / INAP / MAP parameters are made of.
INTERESTING = (0x00, 0x30, 0x7F, 0x80, 0x81, 0x82, 0x9F, 0xA0, 0xBF, 0xFF)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    return mutate(rng, data, interesting=INTERESTING, rounds=(1, 2, 3))


def _run(
    layer: str,
    seeds: list[tuple[int, bytes | None, tuple[int, ...] | None]],
    decode: Callable[..., ops.Operation],
    encode: Callable[..., object],
    decode_result: Callable[..., ops.Operation],
    decode_error: Callable[..., ops.Operation],
    opcodes: list[int],
    seed: int,
) -> None:
    rng = random.Random(seed)
    decoded = 0
    for i in range(FRAMES):
        if i % 4 == 0:
            code = rng.choice(opcodes)
            p: bytes | None = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            ac = rng.choice(seeds)[2]
        else:
            code, base, ac = rng.choice(seeds)
            p = _mutate(rng, base or b"\x30\x00")
        if i % 7 == 0 and p:
            p = p[:2] + b"\x80" + p[3:]  # indefinite-length forms
        for fn in (decode, decode_result, decode_error):
            try:
                v = fn(code, p or None, ac=ac)
            except DecodeError as exc:
                assert exc.layer == layer
                continue
            decoded += 1
            if fn is decode:
                try:
                    encode(v, ac=ac)
                except CodecError:
                    pass
    assert decoded > 0


@pytest.mark.parametrize("seed", [1])
def test_fuzz_cap(seed: int) -> None:
    _run(
        "cap",
        _seeds_cap(),
        cap.CODEC.decode_arg,
        cap.CODEC.encode_arg,
        cap.CODEC.decode_result,
        cap.CODEC.decode_error,
        sorted(cap.CODEC.opcode_names),
        seed,
    )


@pytest.mark.parametrize("seed", [2])
def test_fuzz_inap(seed: int) -> None:
    _run(
        "inap",
        _seeds_inap(),
        inap.CODEC.decode_arg,
        inap.CODEC.encode_arg,
        inap.CODEC.decode_result,
        inap.CODEC.decode_error,
        sorted(inap.CODEC.opcode_names),
        seed,
    )


@pytest.mark.parametrize("seed", [3])
def test_fuzz_map(seed: int) -> None:
    _run(
        "map",
        _seeds_map(),
        m.CODEC.decode_arg,
        m.CODEC.encode_arg,
        m.CODEC.decode_result,
        m.CODEC.decode_error,
        [45, 47, 49, 64, 66, 71, 89, 2, 7, 56],
        seed,
    )
