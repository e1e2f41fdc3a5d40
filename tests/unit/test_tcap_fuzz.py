"""Fuzzing the TCAP codec and core: random and mutated frames never raise, always get an answer.

Seeded (reproducible) generators feed more than 10,000 frames each into
:func:`scp.codecs.tcap.decode` and :meth:`TcapLayer.handle_n_unitdata`: mutations (bit flips,
byte changes, truncation, insertion, deletion, length tweaks) of the golden and real-capture
messages, messages aimed at live dialogues so the Continue/End/Abort paths run, and random
bytes. The codec may only raise :class:`TcapDecodeError`; the core must answer every frame
(P-Abort, Reject, log line or a normal indication) and never report an internal error. What the
core sends back is decoded again and a sample goes through Wireshark.
"""

from __future__ import annotations

import random

from scp.codecs import tcap
from scp.codecs.tcap import Aarq, MessageType
from scp.core.tcap import TcapLayer, TcapLog
from scp.primitives import (
    Invoke,
    NUnitdata,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResult,
    TcBegin,
    TcContinue,
    TcEnd,
    TcUAbort,
)
from tests.helpers import mutate
from tests.unit.tcap_frames import PC_PEER, PEER, SCP, assert_tshark_clean
from tests.unit.test_tcap_codec import GOLDEN
from tests.unit.test_tcap_real import REAL

CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)
SEEDS: list[bytes] = [w for _, _, w in GOLDEN] + [
    bytes.fromhex(x) for hexes in REAL.values() for x in hexes
]
N_FRAMES = 12_000


# The octets a BER decoder of TCAP is most sensitive to: lengths (short, long, indefinite),
# and the tags of the message types, portions and components (Q.773 §4.2).
INTERESTING = (0x00, 0x05, 0x30, 0x48, 0x49, 0x4A, 0x6B, 0x6C, 0x7F, 0x80, 0x81, 0x82, 0x84)
INTERESTING += (0x85, 0xA1, 0xA4, 0xBE, 0xFF)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    return mutate(rng, data, interesting=INTERESTING, rounds=(1, 1, 1, 2, 3, 5))


def random_frame(rng: random.Random) -> bytes:
    head = rng.choice((0x61, 0x62, 0x64, 0x65, 0x67, rng.randrange(256)))
    return bytes((head,)) + rng.randbytes(rng.randrange(0, 40))


def test_codec_fuzz() -> None:
    rng = random.Random(773)
    for n in range(N_FRAMES):
        data = random_frame(rng) if n % 4 == 0 else _mutate(rng, rng.choice(SEEDS))
        try:
            msg = tcap.decode(data)
        except tcap.TcapDecodeError as e:
            assert e.layer == "tcap" and e.portion in ("message_type", "transaction", "dialogue")
            continue
        # Whatever decodes re-encodes to something that decodes to the same value (bad
        # components aside: they are not re-emitted).
        if not msg.bad_components:
            assert tcap.decode(tcap.encode(msg)) == msg


class _Peer:
    """Builds messages for the dialogues open in ``layer`` so mutations hit live transactions."""

    def __init__(self, layer: TcapLayer, rng: random.Random) -> None:
        self.layer = layer
        self.rng = rng
        self.now = 0.0
        self.otid = 0

    def begin(self) -> bytes:
        self.otid += 1
        return tcap.encode_message(
            MessageType.BEGIN,
            otid=self.otid.to_bytes(4, "big"),
            dialogue_portion=tcap.encode_dialogue_portion(Aarq(CAP_V2)),
            component_portion=tcap.encode_components((Invoke(1, 0, b"\x30\x03\x80\x01\x2a"),)),
        )

    def live(self) -> list[int]:
        return list(self.layer._dialogues)  # test-only peek at the open dialogue IDs

    def aimed(self) -> bytes:
        """A Continue/End/Abort for a live dialogue, with a random component mix."""
        rng = self.rng
        dids = self.live()
        dtid = (rng.choice(dids) if dids else 0x01000001).to_bytes(4, "big")
        comps = rng.sample(
            [
                Invoke(rng.randrange(-3, 4), 24, b"\x30\x00"),
                ReturnResult(rng.randrange(-3, 4), 48, b"\x80\x01\x01"),
                ReturnError(rng.randrange(-3, 4), 7),
                Reject(rng.choice((None, 1, 2)), ProblemType.INVOKE, 1),
            ],
            rng.randrange(0, 4),
        )
        mtype = rng.choice(
            (MessageType.CONTINUE, MessageType.CONTINUE, MessageType.END, MessageType.ABORT)
        )
        if mtype is MessageType.ABORT:
            return tcap.encode_message(mtype, dtid=dtid, p_abort_cause=rng.randrange(6))
        return tcap.encode_message(
            mtype,
            otid=b"\x00\x00\x00\x01" if mtype is MessageType.CONTINUE else None,
            dtid=dtid,
            component_portion=tcap.encode_components(tuple(comps)),
        )


def test_core_fuzz() -> None:
    rng = random.Random(774)
    layer = TcapLayer(worker_id=1, idle_timeout=5.0, invoke_timeout=2.0, max_dialogues=50)
    peer = _Peer(layer, rng)
    sent_back: dict[bytes, None] = {}
    kinds: dict[str, int] = {}
    for n in range(N_FRAMES):
        peer.now += 0.01
        r = n % 10
        if r == 0 or len(layer) < 3:
            data = peer.begin() if rng.random() < 0.7 else _mutate(rng, peer.begin())
        elif r < 4:
            data = peer.aimed()
        elif r < 6:
            data = _mutate(rng, peer.aimed())
        elif r < 9:
            data = _mutate(rng, rng.choice(SEEDS))
        else:
            data = random_frame(rng)
        out = layer.handle_n_unitdata(NUnitdata(SCP, PEER, data, opc=PC_PEER), peer.now)
        assert out, f"no answer to {data.hex()}"
        for o in out:
            kinds[type(o).__name__] = kinds.get(type(o).__name__, 0) + 1
            if type(o) is TcapLog:
                assert o.event != "internal_error", (o, data.hex())
            elif type(o) is NUnitdata:
                tcap.decode(o.data)  # everything we send decodes
                sent_back[o.data] = None
        # Let the TC-user answer now and then, and the timers run.
        if n % 7 == 0:
            for did in peer.live()[:2]:
                req = rng.choice(
                    [
                        TcContinue(
                            did, CAP_V2, None, (Invoke(layer.new_invoke_id(did), 48, op_class=1),)
                        ),
                        TcEnd(did, CAP_V2),
                        TcUAbort(did),
                        TcEnd(did, prearranged=True),
                    ]
                )
                for o in layer.handle_tc(req, peer.now):
                    assert not (type(o) is TcapLog and o.event == "internal_error"), o
                    if type(o) is NUnitdata:
                        sent_back[o.data] = None
        for o in layer.handle_timer(peer.now):
            assert not (type(o) is TcapLog and o.event == "internal_error"), o
    # Every kind of answer was exercised.
    assert {
        "NUnitdata",
        "TcBegin",
        "TcContinue",
        "TcEnd",
        "TcPAbort",
        "TcapLog",
        "TcComponentEvent",
    } <= kinds.keys(), kinds
    sample = list(sent_back)
    random.Random(0).shuffle(sample)
    assert_tshark_clean([m for m in sample if len(m) < 200][:400])


def test_tc_request_fuzz() -> None:
    """Odd TC-user requests get a log line, never an exception."""
    rng = random.Random(771)
    layer = TcapLayer(worker_id=3)
    for n in range(3000):
        did = rng.choice([layer.new_dialogue_id(), *list(layer._dialogues)[:3], 0, -1, 2**40])
        comps = tuple(
            rng.sample(
                [
                    Invoke(
                        rng.randrange(-200, 200),
                        rng.choice((0, (1, 2), (9, 99), -5)),
                        op_class=rng.randrange(1, 5),
                    ),
                    ReturnResult(rng.randrange(-200, 200), rng.choice((None, 1))),
                    ReturnError(rng.randrange(-200, 200), 7),
                    Reject(rng.choice((None, 1, 999)), ProblemType.GENERAL, rng.randrange(0, 300)),
                ],
                rng.randrange(0, 3),
            )
        )
        req = rng.choice(
            [
                TcBegin(did, PEER, SCP, rng.choice((None, CAP_V2, (5, 5))), None, comps),
                TcContinue(did, rng.choice((None, CAP_V2)), None, comps),
                TcEnd(did, None, None, comps, rng.random() < 0.2),
                TcUAbort(did),
            ]
        )
        for o in layer.handle_tc(req, float(n)):
            assert not (type(o) is TcapLog and o.event == "internal_error"), (o, req)
            if type(o) is NUnitdata:
                tcap.decode(o.data)
        layer.handle_timer(float(n))
