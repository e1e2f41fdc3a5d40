"""Logging as ``scp/cli.py`` configures it: readable values, and quiet tools.

Enums are rendered by their value at the processor level (``AS-ACTIVE``, not
``<AsState.ACTIVE: 'AS-ACTIVE'>``), in JSON and console lines alike; pycrate's own INFO lines
(what it forgives while decoding) never reach stderr; ``replay --decode-only`` writes nothing
to stderr on a capture that makes pycrate talk.
"""

from __future__ import annotations

import enum
import subprocess
import sys
from pathlib import Path

import pytest

from scp.cli.logs import readable_values
from scp.codecs.m3ua import AsStateChange
from scp.core.m3ua_asp import AsState

ROOT = Path(__file__).resolve().parents[2]
# MAP insertSubscriberData with a private extension pycrate cannot look up: it logs at INFO.
CHATTY = Path("/work/shared/pcaps/real/map_pcapr_ul_isd_sri_stp-relay_m3ua.pcap")


class _Colour(enum.Enum):
    RED = ("r", 1)  # a value that is not a plain str or int stays what it is


def test_enums_render_by_their_value() -> None:
    d = readable_values(
        None,
        "info",
        {
            "old": AsState.DOWN,
            "new": AsState.ACTIVE,
            "change": AsStateChange.AS_ACTIVE,
            "plain": "x",
            "many": (AsState.DOWN, 3),
            "odd": _Colour.RED,
        },
    )
    assert d == {
        "old": "AS-DOWN",
        "new": "AS-ACTIVE",
        "change": int(AsStateChange.AS_ACTIVE),
        "plain": "x",
        "many": ["AS-DOWN", 3],
        "odd": ("r", 1),
    }


@pytest.mark.skipif(not CHATTY.exists(), reason="real captures missing")
def test_replay_decode_only_leaves_stderr_empty() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scp", "replay", "--decode-only", str(CHATTY)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "insertSubscriberData" in out.stdout
    assert out.stderr == "", out.stderr  # no "INFO pycrate.asn1rt: ..." line
    debug = subprocess.run(
        [
            sys.executable,
            "-m",
            "scp",
            "--log-level",
            "debug",
            "replay",
            "--decode-only",
            str(CHATTY),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "pycrate.asn1rt" in debug.stderr  # asked for: the decoder's detail is there
