"""Fuzz the M3UA codec, the stream framing and both layer roles with seeded random frames.

Random and mutated frames (bit flips, truncation, extension, parameter splicing, with the
length field repaired half of the time so the parameter walk is reached) must only ever give
:class:`M3uaDecodeError` from the codec, :class:`M3uaFramingError` from the reader, and a
protocol answer (ERR, an Ack, a Deliver, a Dropped for the log...) from a layer: never a
traceback, never an "internal error".
"""

from __future__ import annotations

import random

from scp.codecs import m3ua as M
from scp.codecs.m3ua import AffectedPointCode, M3uaDecodeError, RoutingKey
from scp.codecs.m3ua import MessageType as MT
from scp.core.m3ua_asp import AspState, Dropped, M3uaLayer, Transmit
from scp.core.m3ua_framing import M3uaFramingError, M3uaStreamReader
from scp.primitives import MtpTransfer
from tests.helpers import mutate as shared_mutate

SEED = 4666
FRAMES = 12_000


def corpus() -> list[bytes]:
    x = MtpTransfer(200, 100, 3, 2, 0, 7, bytes(range(23)))
    msgs = [
        M.make(MT.ASPUP, asp_identifier=3),
        M.make(MT.ASPUP_ACK),
        M.make(MT.ASPDN),
        M.make(MT.ASPDN_ACK),
        M.make(MT.BEAT, heartbeat_data=b"beat"),
        M.make(MT.BEAT_ACK, heartbeat_data=b"\0\0\0\1\0\0\0\2"),
        M.make(MT.ASPAC, traffic_mode=2, routing_context=1),
        M.make(MT.ASPAC_ACK, routing_context=1),
        M.make(MT.ASPIA, routing_context=1),
        M.make(MT.ASPIA_ACK),
        M.make(MT.ERR, error_code=6, diagnostic_information=b"\1\0\1\1"),
        M.make(MT.NTFY, status=(1, 3), routing_context=1),
        M.make(MT.DUNA, routing_context=1, affected_point_codes=[300]),
        M.make(MT.DAVA, affected_point_codes=[300]),
        M.make(MT.DAUD, routing_context=1, affected_point_codes=[AffectedPointCode(0, 24)]),
        M.make(MT.SCON, affected_point_codes=[300], concerned_destination=5, congestion_level=1),
        M.make(MT.DUPU, affected_point_codes=[300], user_cause=(2, 3)),
        M.make(MT.DRST, affected_point_codes=[300]),
        M.make(
            MT.REG_REQ,
            routing_keys=[RoutingKey(1, 100, routing_context=1, service_indicators=(3,))],
        ),
        M.make(MT.REG_RSP, registration_results=[M.RegistrationResult(1, 0, 1)]),
        M.make(MT.DEREG_REQ, routing_context=1),
        M.make(MT.DEREG_RSP, deregistration_results=[M.DeregistrationResult(1, 0)]),
    ]
    wires = [M.encode(m) for m in msgs]
    wires += [M.encode_data(x, 1), M.encode_data(x, None, 8, 9), M.encode_data(x, 1, 8)]
    return wires


# Octets planted by the shared mutator: version, class, type and tag values at their limits.
INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x0A, 0x7F, 0x80, 0xFF)


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    b = bytearray(rng.choice(seeds))
    op = rng.randrange(5)
    if op < 2:  # byte damage anywhere, header included
        b = bytearray(shared_mutate(rng, bytes(b), interesting=INTERESTING))
    elif op == 2:  # splice a parameter of another message in
        other = rng.choice(seeds)
        b += other[8:]
    elif op == 3:  # mess with one parameter length field
        if len(b) >= 12:
            b[10:12] = rng.randrange(65536).to_bytes(2, "big")
    else:  # pure noise
        b = bytearray(rng.randbytes(rng.randint(0, 64)))
    if len(b) >= 8 and rng.random() < 0.5:
        b[4:8] = len(b).to_bytes(4, "big")  # a consistent length reaches the parameter walk
    return bytes(b)


def test_codec_fuzz() -> None:
    rng = random.Random(SEED)
    seeds = corpus()
    decoded = 0
    for _ in range(FRAMES):
        b = mutate(rng, seeds)
        code = None
        try:
            m = M.decode(b)
        except M3uaDecodeError as e:
            assert e.layer == "m3ua" and 0 <= e.offset <= len(b)
            m = None
            code = e.error_code
        if m is not None:
            decoded += 1
            assert M.decode(M.encode(m)) == m  # anything we accept re-encodes to itself
        if len(b) >= 4 and b[0] == 1 and b[2:4] == b"\1\1":
            try:
                d = M.decode_data(b)
            except M3uaDecodeError as e:
                assert m is None, f"decode accepted what decode_data refused ({e}): {b.hex()}"
                assert e.error_code == code, f"{e} vs {code}: {b.hex()}"
            else:
                assert m is not None and m.protocol_data is not None
                assert m.protocol_data.to_transfer() == d.xfer
    assert decoded > 500  # the mutations must not all die at the header


def test_framing_fuzz() -> None:
    rng = random.Random(SEED + 1)
    seeds = corpus()
    for _ in range(300):
        msgs = [rng.choice(seeds) for _ in range(rng.randint(1, 20))]
        stream = b"".join(msgs)
        r = M3uaStreamReader()
        got: list[bytes] = []
        i = 0
        while i < len(stream):
            n = rng.randint(1, 40)
            got += r.feed(stream[i : i + n])
            i += n
        assert got == msgs
    for _ in range(2000):
        r = M3uaStreamReader()
        try:
            for m in r.feed(rng.randbytes(rng.randint(0, 200))):
                assert 8 <= len(m) <= 65536
        except M3uaFramingError:
            pass


def _activate(layer: M3uaLayer, assoc: int) -> None:
    layer.receive(assoc, M.encode(M.make(MT.ASPUP)), 0.0)
    layer.receive(assoc, M.encode(M.make(MT.ASPAC, routing_context=1)), 0.0)
    assert layer.asp_state(assoc) is AspState.ACTIVE


def _check(outs: list[object], frame: bytes) -> None:
    if not outs:
        # Only a valid message may be absorbed quietly (a duplicate Ack, our BEAT's Ack).
        M.decode(frame)
    for o in outs:
        if isinstance(o, Dropped):
            assert "internal error" not in o.reason, f"{o} for {frame.hex()}"
        if isinstance(o, Transmit):
            M.decode(o.data)  # whatever we send is itself well formed


def test_server_layer_fuzz() -> None:
    rng = random.Random(SEED + 2)
    seeds = corpus()
    layer = M3uaLayer(role="server", local_pc=100, routing_context=1, beat_interval=5.0)
    layer.association_up(1, 0.0)
    _activate(layer, 1)
    now = 0.0
    errs = 0
    for _ in range(FRAMES):
        b = mutate(rng, seeds) if rng.random() < 0.9 else rng.choice(seeds)
        now += 0.01
        outs = layer.receive(1, b, now)
        _check(outs, b)  # type: ignore[arg-type]
        errs += sum(1 for o in outs if isinstance(o, Transmit) and o.data[2:4] == b"\0\0")
        layer.handle_timer(now)
        if 1 not in layer._asps:  # a heartbeat timeout closed it: the adapter reconnects
            layer.association_up(1, now)
        if layer.asp_state(1) is not AspState.ACTIVE:
            _activate(layer, 1)
    assert errs > FRAMES // 10


def test_client_layer_fuzz() -> None:
    rng = random.Random(SEED + 3)
    seeds = corpus()
    layer = M3uaLayer(role="client", local_pc=200, routing_context=1, beat_interval=0)
    layer.association_up(1, 0.0)
    layer.receive(1, M.encode(M.make(MT.ASPUP_ACK)), 0.0)
    layer.receive(1, M.encode(M.make(MT.ASPAC_ACK, routing_context=1)), 0.0)
    assert layer.is_active
    now = 0.0
    for _ in range(FRAMES // 2):
        b = mutate(rng, seeds)
        now += 0.01
        _check(layer.receive(1, b, now), b)  # type: ignore[arg-type]
        layer.handle_timer(now)
        for o in layer.send_transfer(MtpTransfer(200, 100, 3, 2, 0, rng.randrange(16), b"x"), now):
            assert isinstance(o, Transmit | Dropped)
