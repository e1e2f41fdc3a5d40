"""The CDR file format for the carrier's billing mediation (docs/cdr-format.md).

Pure: :mod:`scp.flows.cdrfiles` reads the records and writes the files. A file holds the CDRs
of one period (a day or an hour of the network's time zone, ``[cdr] rotation``) exported
together; its name is ``MCN_<node>_<period>_<seq>.cdr`` (seq from 1 per period, 4 digits).
UTF-8, one line per item, LF ends every line:

* header ``H|MCNCDR|1|<node>|<period>|<seq>|<created at, ISO 8601 UTC>``, escaped like a
  record;
* one record line per CDR, the fields of :data:`FIELDS` joined by ``|`` (times ISO 8601 UTC,
  with microseconds when they are not whole seconds; charge in CNY with 4 decimals, empty
  for none; ``\\``, ``|`` and line breaks inside a field escaped as ``\\\\``, ``\\|``,
  ``\\n``, ``\\r``);
* trailer ``T|<record count>|<SHA-256, lowercase hex, of the record lines with their LFs>``.

Fee files carry the monthly fee records of a billed month the same way: named
``MCN_<node>_<YYYYMM>_<seq>.fee``, header format ``MCNFEE``, records of :data:`FEE_FIELDS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "FEE_FIELDS",
    "FIELDS",
    "FORMATS",
    "ROTATIONS",
    "fee_file_name",
    "file_name",
    "header_line",
    "parse_period",
    "period_of",
    "record_line",
    "render",
    "trailer_line",
]

FIELDS = (
    "id",
    "record_type",
    "msisdn",
    "caller",
    "callee",
    "service",
    "call_category",
    "started_at",
    "ended_at",
    "duration_s",
    "charge",
    "call_ref",
)
# a fee file's record: one product's fee for one subscriber in a month (table monthly_fee)
FEE_FIELDS = ("month", "msisdn", "service", "days", "month_days", "fee", "charge")
FORMATS = {"cdr": "MCNCDR", "fee": "MCNFEE"}  # the header's format field, per file kind
ROTATIONS = ("daily", "hourly")
FORMAT_VERSION = "1"
_FORMATS = {"daily": "%Y%m%d", "hourly": "%Y%m%d%H"}
_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def period_of(at: dt.datetime, rotation: str, tz: str) -> tuple[str, dt.datetime, dt.datetime]:
    """The period holding ``at``: its name and its [start, end) as aware UTC times."""
    local = at.astimezone(zoneinfo.ZoneInfo(tz))
    if rotation == "daily":
        first = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        nxt = first + dt.timedelta(days=1)
    elif rotation == "hourly":
        first = local.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        nxt = first + dt.timedelta(hours=1)
    else:
        raise ValueError(f"rotation {rotation!r}")
    z = zoneinfo.ZoneInfo(tz)
    start = first.replace(tzinfo=z).astimezone(dt.UTC)
    end = nxt.replace(tzinfo=z).astimezone(dt.UTC)
    return first.strftime(_FORMATS[rotation]), start, end


def parse_period(raw: str) -> str:
    """``YYYYMMDD`` or ``YYYYMMDDHH`` (a day or an hour of CDR files), ``YYYYMM`` (a month of
    fee files); ValueError otherwise."""
    expected = f"expected YYYYMMDD, YYYYMMDDHH or YYYYMM (a real day, hour or month), got {raw!r}"
    fmt = {6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H"}.get(len(raw))
    if fmt is None or not raw.isdigit():
        raise ValueError(expected)
    try:
        dt.datetime.strptime(raw, fmt)  # a real day / hour / month
    except ValueError:
        raise ValueError(expected) from None
    return raw


def file_name(node: str, period: str, seq: int) -> str:
    return f"MCN_{_UNSAFE.sub('-', node)}_{period}_{seq:04d}.cdr"


def fee_file_name(node: str, month: str, seq: int) -> str:
    """The fee file of ``month`` (``YYYYMM``)."""
    return f"MCN_{_UNSAFE.sub('-', node)}_{month}_{seq:04d}.fee"


def _field(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, Decimal):
        return f"{v:.4f}"
    s = str(v)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\r", "\\r")


def record_line(row: Mapping[str, Any], fields: tuple[str, ...] = FIELDS) -> str:
    """One CDR (or, with :data:`FEE_FIELDS`, one fee record) as its record line, LF included."""
    return "|".join(_field(row[f]) for f in fields) + "\n"


def header_line(
    node: str, period: str, seq: int, created_at: dt.datetime, kind: str = "cdr"
) -> str:
    # [node] name refuses | and line breaks; escaped all the same, like any field
    fields = (
        "H",
        FORMATS[kind],
        FORMAT_VERSION,
        _field(node),
        period,
        str(seq),
        _field(created_at),
    )
    return "|".join(fields) + "\n"


def trailer_line(count: int, sha256_hex: str) -> str:
    return f"T|{count}|{sha256_hex}\n"


def render(
    node: str, period: str, seq: int, created_at: dt.datetime, rows: Iterable[Mapping[str, Any]]
) -> tuple[bytes, int, str]:
    """A whole file in memory: its bytes, record count and the records' SHA-256 (hex)."""
    h = hashlib.sha256()
    out = [header_line(node, period, seq, created_at).encode("utf-8")]
    n = 0
    for r in rows:
        line = record_line(r).encode("utf-8")
        h.update(line)
        out.append(line)
        n += 1
    out.append(trailer_line(n, h.hexdigest()).encode("utf-8"))
    return b"".join(out), n, h.hexdigest()
