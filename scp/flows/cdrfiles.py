"""CDR files for the carrier's billing mediation: ``mcn-scp cdr export --files``.

Format: :mod:`scp.service.cdrfile` and docs/cdr-format.md. SQL: :mod:`scp.state.cdrfile_store`.

Exactly once across nodes: an export locks the watermark row (``cdr_export``), takes the
horizon (the oldest transaction still running: every CDR below it is final), records one file
per period for the CDRs in [watermark, horizon) with the next sequence number of that period,
moves the watermark to the horizon and commits; only then are the files written. Two exports
at once queue on the row lock: the second finds the watermark moved and the CDRs taken. A file
committed but not written (the node stopped in between) is written by the next export on any
node (claimed with SKIP LOCKED), byte for byte as it would have been: its records are fixed by
its period and transaction range, its header by the node and time stored with it.

Fee files: the same export records, under the same lock, one fee file per month whose
billing run is done and not yet exported (``billing_run.exported`` set in that transaction),
holding the month's monthly fee records; written, claimed and re-written like the CDR files.

Atomic write: a temporary name in the target directory, fsync, rename, fsync of the directory;
a reader never sees a half file under a CDR file name. ``--period`` writes the files of a
period again, identical (checked against the stored SHA-256).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from scp.service.billing import month_bounds
from scp.service.cdrfile import (
    FEE_FIELDS,
    FIELDS,
    fee_file_name,
    file_name,
    header_line,
    period_of,
    record_line,
    trailer_line,
)
from scp.service.provisioning import Conflict, InvalidInput, NotFound
from scp.state import cdrfile_store as store

__all__ = ["CdrFile", "export_files", "reexport_period"]

_UNITS = {"daily": "day", "hourly": "hour"}


@dataclass(frozen=True, slots=True)
class CdrFile:
    """A file written: its path, period, sequence number, records and their SHA-256."""

    path: str
    period: str
    seq: int
    records: int
    sha256: str


async def export_files(
    conn: asyncpg.Connection,
    *,
    node: str,
    directory: Path,
    rotation: str,
    timezone: str,
    now: dt.datetime,
) -> list[CdrFile]:
    """Export every CDR not yet in a file, and the fee records of every month billed since;
    write the files this and earlier exports committed and no node wrote. The files written,
    in period order."""
    if rotation not in _UNITS:
        raise InvalidInput("cdr.rotation", f"must be daily or hourly, got {rotation!r}")
    if not directory.is_dir():
        raise InvalidInput("dir", f"not a directory: {directory}")
    tz = zoneinfo.ZoneInfo(timezone)
    async with conn.transaction():
        high = int(await conn.fetchval(store.LOCK_WATERMARK))
        horizon = int(await conn.fetchval(store.HORIZON))
        if horizon > high:
            for local_start, n in await store.new_periods(
                conn, high, horizon, _UNITS[rotation], timezone
            ):
                period, start, end = period_of(local_start.replace(tzinfo=tz), rotation, timezone)
                seq = await store.next_seq(conn, period)
                await store.add_file(
                    conn,
                    name=file_name(node, period, seq),
                    period=period,
                    seq=seq,
                    node=node,
                    period_start=start,
                    period_end=end,
                    tx_lo=high,
                    tx_hi=horizon,
                    records=n,
                    created_at=now,
                )
            await store.move_watermark(conn, horizon)
        for month, n in await store.unexported_months(conn):
            period = f"{month:%Y%m}"
            seq = await store.next_seq(conn, period)
            first, next_month, _days = month_bounds(month)
            await store.add_file(
                conn,
                name=fee_file_name(node, period, seq),
                period=period,
                seq=seq,
                node=node,
                period_start=dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC),
                period_end=dt.datetime.combine(next_month, dt.time(), tz).astimezone(dt.UTC),
                tx_lo=0,
                tx_hi=0,
                records=n,
                created_at=now,
                kind="fee",
            )
            await store.fee_file_added(conn, month)
    written = []
    while True:
        async with conn.transaction():
            f = await store.claim_unwritten(conn)
            if f is None:
                break
            out = await _write(conn, f, directory)
            await store.mark_written(conn, f["name"], out.sha256)
        written.append(out)
    return written


async def reexport_period(
    conn: asyncpg.Connection, *, period: str, directory: Path
) -> list[CdrFile]:
    """Write the files of ``period`` again (those already written), identical to the first
    time; Conflict if a file's records changed since (its checksum differs), the file on disk
    left as it was, or if none is written yet; NotFound if the period has no file."""
    if not directory.is_dir():
        raise InvalidInput("dir", f"not a directory: {directory}")
    out = []
    async with conn.transaction():
        files = await store.files_of_period(conn, period)
        if not files:
            raise NotFound(f"period {period}: no file was exported for it, nothing to write")
        for f in files:
            if not f["written"]:
                continue  # the next export writes it
            out.append(await _write(conn, f, directory, expect_sha256=f["sha256"]))
    if not out:
        raise Conflict(
            f"period {period}: its {len(files)} file(s) are not written yet:"
            " `mcn-scp cdr export --files` writes them"
        )
    return out


async def _write(
    conn: asyncpg.Connection,
    f: asyncpg.Record,
    directory: Path,
    *,
    expect_sha256: str | None = None,
) -> CdrFile:
    """Stream file ``f``'s records into a temporary file, fsync, rename into place.

    ``expect_sha256`` (a file written before): records hashing otherwise raise Conflict before
    the rename, so the file mediation may already hold is never replaced by other bytes."""
    final = directory / f["name"]
    tmp = directory / f".{f['name']}.{os.getpid()}.tmp"
    fields = FEE_FIELDS if f["kind"] == "fee" else FIELDS
    h = hashlib.sha256()
    n = 0
    try:
        with open(tmp, "wb") as fh:
            head = header_line(f["node"], f["period"], f["seq"], f["created_at"], f["kind"])
            fh.write(head.encode())
            async for r in store.iter_records(conn, f):
                line = record_line(r, fields).encode("utf-8")
                h.update(line)
                fh.write(line)
                n += 1
            if n != f["records"]:
                raise Conflict(f"{f['name']}: {n} records found, {f['records']} exported")
            if expect_sha256 is not None and h.hexdigest() != expect_sha256:
                raise Conflict(f"{f['name']}: its records changed since it was exported")
            fh.write(trailer_line(n, h.hexdigest()).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a power cut
    finally:
        os.close(dfd)
    return CdrFile(str(final), f["period"], f["seq"], n, h.hexdigest())
