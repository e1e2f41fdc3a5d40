"""Logging as ``scp/cli.py`` configures it: readable values, and quiet tools.

Enums are rendered by their value at the processor level (``AS-ACTIVE``, not
``<AsState.ACTIVE: 'AS-ACTIVE'>``), in JSON and console lines alike; pycrate's own INFO lines
(what it forgives while decoding) never reach stderr; ``replay --decode-only`` writes nothing
to stderr on a capture that makes pycrate talk.
"""

from __future__ import annotations

import enum
import json
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


LIBRARY_LINES = """
import logging
import structlog
from scp.cli.logs import configure_logging

configure_logging("info", "json")
structlog.get_logger("scp").warning("ours", k=1)
logging.getLogger("pycrate_asn1rt").warning("forgiven %s", "extension")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=True)
logging.getLogger("pycrate_asn1rt").info("decoding detail")
"""


def test_library_records_are_json_lines_in_the_json_format() -> None:
    """In ``format = "json"`` a library's WARNING / ERROR (stdlib logging) is a JSON line like
    ours, with its logger's name and its traceback, not a line of plain text in the stream."""
    out = subprocess.run(
        [sys.executable, "-c", LIBRARY_LINES],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]  # every line JSON
    assert [(x["event"], x["level"], x.get("logger")) for x in lines] == [
        ("ours", "warning", None),
        ("forgiven extension", "warning", "pycrate_asn1rt"),
        ("Task exception was never retrieved", "error", "asyncio"),
    ]
    assert all(x["timestamp"].endswith("Z") for x in lines)
    assert lines[2]["exception"].endswith("ZeroDivisionError: division by zero")
