"""SMS command parsing (来话点播 by SMS): named cases and a fuzz run."""

from __future__ import annotations

import random

import pytest

from scp.service.smscmd import Command, parse_command

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")


@pytest.mark.parametrize(
    ("text", "cmd"),
    [
        ("CX", Command("CX")),
        ("cx", Command("CX")),
        (" Cx \n", Command("CX")),
        ("ＣＸ", Command("CX")),  # full-width, as some handsets send
        ("KT", Command("KT")),
        ("qx", Command("QX")),
        ("LY", Command("LY")),
        ("ly 2", Command("HELP")),
        ("KTYM", Command("KT", "busy")),  # busy notification, a product of its own
        ("kt ym", Command("KT", "busy")),
        ("ＱＸＹＭ", Command("QX", "busy")),
        ("QX LY", Command("QX", "voicemail")),
        ("QX YM now", Command("HELP")),
        ("HMD 13800138000", Command("HMD", "13800138000")),
        ("hmd13800138000", Command("HMD", "13800138000")),
        ("HMD 138 0013 8000", Command("HMD", "13800138000")),
        ("ＨＭＤ　１３８００１３８０００", Command("HMD", "13800138000")),
        ("QHMD +8613800138000", Command("QHMD", "+8613800138000")),
        ("QHMD", Command("QHMD", "")),
        ("CX now", Command("HELP")),
        ("help", Command("HELP")),
        ("", Command("HELP")),
        ("退订", Command("HELP")),
    ],
)
def test_commands(text: str, cmd: Command) -> None:
    assert parse_command(text) == cmd


def test_fuzz_never_raises() -> None:
    rng = random.Random(6)
    alphabet = "CXKTQHMDYcxkthmdqy 0123456789+\n\t　ＣＸ退订,.!\u200b\U0001f600"
    for _ in range(10_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        c = parse_command(text)
        assert c.verb in ("CX", "KT", "QX", "KTYM", "QXYM", "HMD", "QHMD", "HELP")
