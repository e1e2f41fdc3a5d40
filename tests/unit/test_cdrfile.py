"""The CDR file format (scp.service.cdrfile, docs/cdr-format.md): periods, names, escaping,
the trailer's count and checksum."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest

from scp.config import ConfigError, parse_config
from scp.service.cdrfile import (
    FIELDS,
    fee_file_name,
    file_name,
    header_line,
    parse_period,
    period_of,
    record_line,
    render,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    "at,rotation,tz,period,start,end",
    [
        # 01:30 on the 11th in Shanghai is still the 10th in UTC
        (
            dt.datetime(2024, 6, 10, 17, 30, tzinfo=UTC),
            "daily",
            "Asia/Shanghai",
            "20240611",
            dt.datetime(2024, 6, 10, 16, 0, tzinfo=UTC),
            dt.datetime(2024, 6, 11, 16, 0, tzinfo=UTC),
        ),
        (
            dt.datetime(2024, 6, 10, 17, 30, tzinfo=UTC),
            "hourly",
            "Asia/Shanghai",
            "2024061101",
            dt.datetime(2024, 6, 10, 17, 0, tzinfo=UTC),
            dt.datetime(2024, 6, 10, 18, 0, tzinfo=UTC),
        ),
        # a day with a DST change is 23 hours long
        (
            dt.datetime(2024, 3, 31, 12, 0, tzinfo=UTC),
            "daily",
            "Europe/Berlin",
            "20240331",
            dt.datetime(2024, 3, 30, 23, 0, tzinfo=UTC),
            dt.datetime(2024, 3, 31, 22, 0, tzinfo=UTC),
        ),
    ],
)
def test_period_of(
    at: dt.datetime, rotation: str, tz: str, period: str, start: dt.datetime, end: dt.datetime
) -> None:
    assert period_of(at, rotation, tz) == (period, start, end)


def test_names_and_periods() -> None:
    assert file_name("scp 1/a", "20240610", 7) == "MCN_scp-1-a_20240610_0007.cdr"
    assert parse_period("2024061023") == "2024061023"
    assert parse_period("202406") == "202406"  # a month of fee files
    assert fee_file_name("scp 1/a", "202406", 1) == "MCN_scp-1-a_202406_0001.fee"
    for bad in ("2024-06-10", "20241310", "2024061024", "2024061099", "2024", "2024061x", "202413"):
        # the message says what is expected, never strptime's own words
        with pytest.raises(ValueError, match=r"^expected YYYYMMDD, YYYYMMDDHH or YYYYMM \(a real"):
            parse_period(bad)


def test_header_fields_are_escaped_and_the_node_name_checked() -> None:
    at = dt.datetime(2024, 6, 12, 1, 0, 0, 92601, tzinfo=UTC)
    line = header_line("scp|1\nx", "20240610", 1, at)
    assert line == "H|MCNCDR|1|scp\\|1\\nx|20240610|1|2024-06-12T01:00:00.092601Z\n"
    assert header_line("scp-1", "202406", 1, at, "fee").startswith("H|MCNFEE|1|scp-1|202406|1|")
    # a name that would need it is refused at configuration load (exit 2 naming the key)
    for bad in ("scp|1", "scp\\n1", "scp\\\\1", "scp\\t1"):
        with pytest.raises(ConfigError, match="^node.name: "):
            parse_config(f'[node]\nname = "{bad}"\n')
    assert parse_config('[node]\nname = "scp-1.bj 2"\n').node.name == "scp-1.bj 2"


ROW = {
    "id": 42,
    "record_type": "call",
    "msisdn": "8613700000001",
    "caller": None,
    "callee": "8613900000001",
    "service": "forwarding",
    "call_category": "on-net",
    "started_at": dt.datetime(2024, 6, 10, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "ended_at": None,
    "duration_s": 61,
    "charge": Decimal("0.1"),
    "call_ref": "a|b\\c\nd",
}


def test_record_line_escapes_and_formats() -> None:
    line = record_line(ROW)
    assert line == (
        "42|call|8613700000001||8613900000001|forwarding|on-net|2024-06-10T02:00:00Z||61|"
        "0.1000|a\\|b\\\\c\\nd\n"
    )
    assert len(FIELDS) == 12


def test_render_header_trailer_checksum() -> None:
    at = dt.datetime(2024, 6, 12, 1, 0, tzinfo=UTC)
    raw, n, digest = render("scp-1", "20240610", 1, at, [ROW, {**ROW, "id": 43}])
    lines = raw.decode().split("\n")
    assert lines[0] == "H|MCNCDR|1|scp-1|20240610|1|2024-06-12T01:00:00Z"
    body = (lines[1] + "\n" + lines[2] + "\n").encode()
    assert n == 2 and digest == hashlib.sha256(body).hexdigest()
    assert lines[3] == f"T|2|{digest}" and lines[4] == ""
    empty = render("scp-1", "20240610", 2, at, [])
    assert empty[0].decode().endswith(f"T|0|{hashlib.sha256(b'').hexdigest()}\n")
