"""OSS bulk load of subscribers from CSV (ARCHITECTURE §3, "Bulk-load CSV header").

Header: ``msisdn,services,group,language`` in that spelling and order, then any of
``imsi,pin,notify_mode,forward_to``; ``services`` separated by ``;``.

How it runs, in ONE transaction so that any failure loads nothing:

1. The file is streamed (flat memory): each row is validated and normalised in Python and
   the good rows are fed, as they come, to ``COPY import_staging FROM STDIN`` (a temporary
   table: no WAL). PostgreSQL parses the copy while Python validates the next chunk.
2. Duplicates inside the file (MSISDN, IMSI) are found in SQL on the staging table.
3. If any row is bad and ``skip_bad`` is false: roll back, report every bad row by file line.
   Otherwise the bad lines are dropped from staging.
4. One merge into ``subscriber``: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <something
   changed>``. Services listed are added (anti-join insert) or re-opened, services not listed
   are ended, on the caller's ``today`` (the CLI's: the day in ``[notify].timezone``).
   Loading the same file twice changes nothing.

File semantics: the file is the truth for the columns it has. An optional column absent from
the header keeps stored values; present but empty clears it (imsi, forward_to) or takes the
default (notify_mode = sms). ``pin`` is an initial PIN: it is set only where the subscriber has
none, so a reload never undoes a PIN the subscriber changed (and stays idempotent despite the
random salt). PINs are hashed with ``pin.BULK`` (cheaper scrypt, upgraded on first use), in
worker processes when there are many.

Audit (channel oss, same transaction): one row per subscriber created (after) or changed
(before/after of the file's columns, ``pin_set`` instead of any hash), and one
``subscriber-import`` row with the file's counts. Service changes are in the counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import multiprocessing
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import IO, Any

import asyncpg

from scp.flows.provisioning import audit
from scp.service import pin as pins
from scp.service.msisdn import is_digits, normalise_msisdn
from scp.service.provisioning import SERVICES, Actor

REQUIRED = ("msisdn", "services", "group", "language")
OPTIONAL = ("imsi", "pin", "notify_mode", "forward_to")
MAX_REPORTED = 1000
_CHUNK_ROWS = 5000
_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_SERVICES = frozenset(SERVICES)
_LANGUAGES = frozenset(("zh", "en"))
_NOTIFY = frozenset(("sms", "digest", "none"))

_STAGING = """
CREATE TEMP TABLE import_staging (
    line        integer NOT NULL,
    msisdn      text COLLATE "C" NOT NULL,
    imsi        text COLLATE "C",
    user_group  text NOT NULL,
    language    text NOT NULL,
    notify_mode text,
    forward_to  text COLLATE "C",
    pin_hash    text,
    services    text[] NOT NULL
) ON COMMIT DROP"""
_STAGING_COLS = (
    "line",
    "msisdn",
    "imsi",
    "user_group",
    "language",
    "notify_mode",
    "forward_to",
    "pin_hash",
    "services",
)


class ImportFileError(Exception):
    """The file cannot be imported at all (header, encoding): exit 2 with ``line``."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BadRow:
    """A rejected data row: its physical line in the file and why."""

    line: int
    reason: str


@dataclass(slots=True)
class ImportResult:
    """What an import did (or would have done, if ``loaded`` is false)."""

    rows: int = 0
    bad_count: int = 0
    bad: list[BadRow] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    services_enabled: int = 0
    services_disabled: int = 0
    loaded: bool = False
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, for ops/bench

    @property
    def good(self) -> int:
        """Rows that passed validation."""
        return self.rows - self.bad_count

    @property
    def unchanged(self) -> int:
        """Good rows whose subscriber row needed no change."""
        return self.good - self.inserted - self.updated if self.loaded else 0

    def add_bad(self, line: int, reason: str) -> None:
        """Count a bad row; keep the first MAX_REPORTED for the report (flat memory)."""
        self.bad_count += 1
        if len(self.bad) < MAX_REPORTED:
            self.bad.append(BadRow(line, reason))

    def summary(self) -> str:
        """The one summary line printed after every import."""
        head = f"{self.rows} rows, {self.good} good, {self.bad_count} bad"
        if not self.loaded:
            return f"{head}; nothing loaded"
        return (
            f"{head}; subscribers {self.inserted} added, {self.updated} updated,"
            f" {self.unchanged} unchanged; services {self.services_enabled} enabled,"
            f" {self.services_disabled} ended"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "rows": self.rows,
            "good": self.good,
            "bad": self.bad_count,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "services_enabled": self.services_enabled,
            "services_disabled": self.services_disabled,
            "loaded": self.loaded,
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "bad_rows": [{"line": b.line, "reason": b.reason} for b in self.bad],
        }


class _RowChecker:
    """Validates one CSV row and renders it as a COPY text-format line (or a reason)."""

    def __init__(self, header: list[str]) -> None:
        self.width = len(header)
        self.idx = {name: i for i, name in enumerate(header)}
        self.has = frozenset(header)

    def check(self, line: int, row: list[str]) -> str | _PendingPin | tuple[str, str]:
        """COPY line for a good row (or its parts around a PIN to hash), or (field, reason)."""
        if len(row) != self.width:
            return ("row", f"has {len(row)} fields, header has {self.width}")
        idx = self.idx
        raw = row[0]
        msisdn = normalise_msisdn(raw)
        if msisdn is None:
            return ("msisdn", f"{raw!r} is not an E.164 or national number")
        svc_raw = row[1]
        services: list[str] = []
        if svc_raw:
            for s in svc_raw.split(";"):
                s = s.strip()
                if not s:
                    continue
                if s not in _SERVICES:
                    return ("services", f"unknown service {s!r}")
                if s not in services:
                    services.append(s)
        group = row[2]
        if not _GROUP.fullmatch(group):
            return ("group", f"{group!r} must be 1-32 of A-Z a-z 0-9 _ . -")
        lang = row[3]
        if lang not in _LANGUAGES:
            return ("language", f"{lang!r} is not zh or en")
        imsi = notify = fwd = pin_hash = "\\N"
        if "imsi" in self.has:
            v = row[idx["imsi"]]
            if v:
                if not is_digits(v, 6, 15):
                    return ("imsi", f"{v!r} must be 6-15 digits")
                imsi = v
        if "notify_mode" in self.has:
            v = row[idx["notify_mode"]] or "sms"
            if v not in _NOTIFY:
                return ("notify_mode", f"{v!r} is not sms, digest or none")
            notify = v
        if "forward_to" in self.has:
            v = row[idx["forward_to"]]
            if v:
                f = normalise_msisdn(v)
                if f is None:
                    return ("forward_to", f"{v!r} is not an E.164 or national number")
                fwd = f
        if "pin" in self.has:
            v = row[idx["pin"]]
            if v:
                problem = pins.pin_problem(v)
                if problem:
                    return ("pin", problem)  # never echo the PIN itself
                # Hashed later, many at a time in worker processes (copy_source).
                return _PendingPin(
                    f"{line}\t{msisdn}\t{imsi}\t{group}\t{lang}\t{notify}\t{fwd}\t",
                    v,
                    f"\t{{{','.join(services)}}}\n",
                )
        return (
            f"{line}\t{msisdn}\t{imsi}\t{group}\t{lang}\t{notify}\t{fwd}\t{pin_hash}"
            f"\t{{{','.join(services)}}}\n"
        )


@dataclass(frozen=True, slots=True)
class _PendingPin:
    """A good row whose PIN still has to be hashed: COPY line = head + hash + tail."""

    head: str
    pin: str
    tail: str


def hash_bulk_pins(batch: list[str]) -> list[str]:
    """Worker-process entry: hash a batch of PINs with the bulk parameters."""
    return [pins.hash_pin(p, pins.BULK) for p in batch]


class _PinHasher:
    """Hashes a chunk's PINs in a process pool (scrypt is CPU-bound: one worker per CPU)."""

    BATCH = 250

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def hash_all(self, items: list[str]) -> list[str]:
        if len(items) < self.BATCH or (os.cpu_count() or 1) < 2:
            return hash_bulk_pins(items)
        if self._pool is None:
            # fork where there is one: workers start at once and need no importable __main__
            # (spawn fails under `python -` or a notebook); they only run hash_bulk_pins.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._pool = ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=ctx)
        loop = asyncio.get_running_loop()
        parts = [items[i : i + self.BATCH] for i in range(0, len(items), self.BATCH)]
        try:
            done = await asyncio.gather(
                *(loop.run_in_executor(self._pool, hash_bulk_pins, p) for p in parts)
            )
        except BrokenProcessPool:
            return hash_bulk_pins(items)  # no workers here: slower, same result
        return [h for part in done for h in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def text_lines(stream: IO[bytes]) -> Iterator[str]:
    """The stream's lines decoded as UTF-8, one by one so a bad byte is reported on its own
    line (a BOM from spreadsheet exports is dropped). Splitting bytes at b"\n" is safe: no
    UTF-8 multi-byte sequence contains 0x0A."""
    for n, raw in enumerate(stream, start=1):
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ImportFileError(n, f"not UTF-8 (byte {e.start + 1} of the line)") from None


def read_header(reader: Any) -> list[str]:
    """Check the header line; ImportFileError naming what is wrong."""
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(1, "empty file: expected header " + ",".join(REQUIRED)) from None
    header = [h.strip() for h in header]
    if tuple(header[:4]) != REQUIRED:
        raise ImportFileError(
            1, f"header must start with {','.join(REQUIRED)} (got {','.join(header[:4])})"
        )
    seen: set[str] = set(REQUIRED)
    for h in header[4:]:
        if h not in OPTIONAL:
            raise ImportFileError(1, f"unknown column {h!r} (optional: {','.join(OPTIONAL)})")
        if h in seen:
            raise ImportFileError(1, f"column {h!r} appears twice")
        seen.add(h)
    return header


async def import_subscribers(
    conn: asyncpg.Connection,
    actor: Actor,
    stream: IO[bytes],
    *,
    today: dt.date,
    skip_bad: bool = False,
    source: str = "-",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate and load a subscriber CSV (see module doc); services start and end on the
    caller's ``today``. Raises ImportFileError for a bad header or encoding; returns the result
    (``loaded`` false if bad rows blocked it)."""
    reader = csv.reader(text_lines(stream), strict=True)
    try:
        header = read_header(reader)
    except csv.Error as e:
        raise ImportFileError(1, f"unreadable header: {e}") from None
    checker = _RowChecker(header)
    result = ImportResult()

    hasher = _PinHasher()

    async def flush(buf: list[str | _PendingPin]) -> bytes:
        pending = [x for x in buf if isinstance(x, _PendingPin)]
        if not pending:
            return "".join(buf).encode()  # type: ignore[arg-type]
        hashes = iter(await hasher.hash_all([p.pin for p in pending]))
        return "".join(
            x if isinstance(x, str) else f"{x.head}{next(hashes)}{x.tail}" for x in buf
        ).encode()

    async def copy_source() -> AsyncIterator[bytes]:
        buf: list[str | _PendingPin] = []
        check = checker.check
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                if not row:  # blank line
                    continue
                result.rows += 1
                out = check(line, row)
                if isinstance(out, tuple):
                    result.add_bad(line, f"{out[0]}: {out[1]}")
                else:
                    buf.append(out)
                if len(buf) >= _CHUNK_ROWS:
                    yield await flush(buf)
                    buf.clear()
                    if progress:
                        progress(line)
        except csv.Error as e:
            raise ImportFileError(reader.line_num, f"malformed CSV: {e}") from None
        if buf:
            yield await flush(buf)
        if progress:
            progress(line)

    try:
        # Must precede the session's first temp-table use; harmless to fail on a reused session.
        await conn.execute("SET temp_buffers = '256MB'")
    except asyncpg.PostgresError:
        pass
    last = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        result.phases[name] = now - last[0]
        last[0] = now

    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute(_STAGING)
        await conn.copy_to_table(
            "import_staging", source=copy_source(), columns=_STAGING_COLS, format="text"
        )
        phase("validate+copy")
        await conn.execute("ANALYZE import_staging")
        await _find_duplicates(conn, result, "msisdn")
        if "imsi" in checker.has:
            await _find_duplicates(conn, result, "imsi")
        phase("duplicates")
        if result.bad_count and not skip_bad:
            await tr.rollback()
            result.bad.sort(key=lambda b: b.line)
            return result
        if result.bad_count:
            # Bad rows were never copied; only in-file duplicates sit in staging.
            await _drop_duplicates(conn, "imsi" in checker.has)
        if not await _merge(conn, actor, checker.has, result, skip_bad, phase, today):
            await tr.rollback()
            result.bad.sort(key=lambda b: b.line)
            return result
        result.loaded = True
        await audit(
            conn,
            actor,
            "import",
            "subscriber-import",
            source,
            None,
            {k: v for k, v in result.to_json().items() if k != "bad_rows"},
        )
        await tr.commit()
        phase("commit")
    except BaseException:
        with contextlib.suppress(asyncpg.InterfaceError):  # already rolled back / committed
            await tr.rollback()
        raise
    finally:
        hasher.close()
    result.bad.sort(key=lambda b: b.line)
    return result


async def _find_duplicates(conn: asyncpg.Connection, result: ImportResult, col: str) -> None:
    # Every occurrence is bad (which one is meant is not ours to guess). Only the first groups
    # are fetched for the report, the rest are counted: memory stays flat.
    dup = (
        f"SELECT {col} AS v, array_agg(line ORDER BY line) AS lines FROM import_staging"
        f" WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1"
    )
    total = 0
    groups = await conn.fetch(f"{dup} ORDER BY min(line) LIMIT {MAX_REPORTED}")
    for r in groups:
        lines = r["lines"]
        total += len(lines)
        for ln in lines:
            others = ", ".join(str(x) for x in lines if x != ln)
            result.add_bad(ln, f"{col}: {r['v']} also on line {others}")
    if len(groups) == MAX_REPORTED:
        rest = await conn.fetchval(f"SELECT coalesce(sum(cardinality(lines)), 0) FROM ({dup}) d")
        result.bad_count += int(rest) - total


async def _drop_duplicates(conn: asyncpg.Connection, with_imsi: bool) -> None:
    for col in ("msisdn", "imsi") if with_imsi else ("msisdn",):
        await conn.execute(
            f"DELETE FROM import_staging WHERE {col} IN (SELECT {col} FROM import_staging"
            f" WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1)"
        )


async def _imsi_taken(conn: asyncpg.Connection, result: ImportResult) -> list[int]:
    rows = await conn.fetch(
        "SELECT s.line, s.imsi, t.msisdn FROM import_staging s"
        " JOIN subscriber t ON t.imsi = s.imsi AND t.msisdn <> s.msisdn ORDER BY s.line"
    )
    for r in rows:
        result.add_bad(r["line"], f"imsi: {r['imsi']} belongs to subscriber {r['msisdn']}")
    return [r["line"] for r in rows]


async def _merge(
    conn: asyncpg.Connection,
    actor: Actor,
    has: frozenset[str],
    result: ImportResult,
    skip_bad: bool,
    phase: Callable[[str], None],
    today: dt.date,
) -> bool:
    """Merge staging into the tables; False if rows clash with stored IMSIs (and not skipped)."""
    # Columns the file carries are overwritten; absent ones keep their stored values.
    cols = ["user_group", "language"] + [
        c for c in ("imsi", "notify_mode", "forward_to") if c in has
    ]
    new_val = {c: f"s.{c}" for c in cols} | {"notify_mode": "coalesce(s.notify_mode, 'sms')"}
    sets = [f"{c} = EXCLUDED.{c}" for c in cols]
    changed = (
        f"({', '.join(f't.{c}' for c in cols)}) IS DISTINCT FROM"
        f" ({', '.join(f'EXCLUDED.{c}' for c in cols)})"
    )
    changed_s = (
        f"({', '.join(f't.{c}' for c in cols)}) IS DISTINCT FROM"
        f" ({', '.join(new_val[c] for c in cols)})"
    )
    if "pin" in has:
        sets.append("pin_hash = coalesce(t.pin_hash, EXCLUDED.pin_hash)")
        changed += " OR (t.pin_hash IS NULL AND EXCLUDED.pin_hash IS NOT NULL)"
        changed_s += " OR (t.pin_hash IS NULL AND s.pin_hash IS NOT NULL)"

    def as_json(alias: str, val: dict[str, str]) -> str:
        pairs = ", ".join(f"'{c}', {val.get(c, f'{alias}.{c}')}" for c in cols)
        return f"jsonb_build_object({pairs}, 'pin_set', {alias}.pin_hash IS NOT NULL)"

    # Audit, per subscriber row, in this transaction: updates with before/after (read before
    # the merge overwrites them), creations with the row as created (from the merge itself).
    audit_updates = f"""
        INSERT INTO audit_log (channel, actor, action, entity, entity_key, before, after)
        SELECT $1, $2, 'update', 'subscriber', t.msisdn, {as_json("t", {})},
               jsonb_build_object({", ".join(f"'{c}', {new_val[c]}" for c in cols)},
                                  'pin_set', t.pin_hash IS NOT NULL OR s.pin_hash IS NOT NULL)
        FROM subscriber t JOIN import_staging s ON s.msisdn = t.msisdn
        WHERE {changed_s}"""
    sql = f"""
        WITH up AS (
            INSERT INTO subscriber AS t (msisdn, imsi, user_group, language, notify_mode,
                                         forward_to, pin_hash)
            SELECT msisdn, imsi, user_group, language, coalesce(notify_mode, 'sms'),
                   forward_to, pin_hash
            FROM import_staging
            ON CONFLICT (msisdn) DO UPDATE SET {", ".join(sets)}, updated_at = now()
            WHERE {changed}
            RETURNING t.*, (xmax = 0) AS inserted),
        created AS (
            INSERT INTO audit_log (channel, actor, action, entity, entity_key, after)
            SELECT $1, $2, 'create', 'subscriber', up.msisdn, {as_json("up", {})}
            FROM up WHERE inserted)
        SELECT count(*) FILTER (WHERE inserted) AS ins, count(*) FILTER (WHERE NOT inserted) AS upd
        FROM up"""

    async def run() -> asyncpg.Record:
        await conn.execute(audit_updates, actor.channel, actor.name)
        return await conn.fetchrow(sql, actor.channel, actor.name)

    try:
        async with conn.transaction():  # savepoint: an IMSI clash is diagnosed, not fatal
            r = await run()
    except asyncpg.UniqueViolationError:
        lines = await _imsi_taken(conn, result)
        if not lines or not skip_bad:
            if not lines:
                raise
            return False
        await conn.execute("DELETE FROM import_staging WHERE line = ANY($1::int[])", lines)
        r = await run()
    result.inserted, result.updated = r["ins"], r["upd"]
    phase("merge subscriber")
    # Services: insert the missing (anti-join, so no per-row speculative insertion: 2M rows
    # in a first load), then re-open ended ones. A concurrent `service enable` of the same
    # pair in between makes the INSERT fail and the whole import roll back: rerun it.
    status = await conn.execute(
        """
        INSERT INTO subscription (msisdn, service, start_date)
        SELECT n.msisdn, n.service, $1::date
        FROM (SELECT msisdn, unnest(services) AS service FROM import_staging) n
        WHERE NOT EXISTS (SELECT 1 FROM subscription t
                          WHERE t.msisdn = n.msisdn AND t.service = n.service)""",
        today,
    )
    enabled = int(status.rsplit(" ", 1)[1])
    status = await conn.execute(
        """
        UPDATE subscription t
        SET start_date = CASE WHEN t.end_date <= $1::date THEN $1::date
                              ELSE t.start_date END,
            end_date = NULL
        FROM (SELECT msisdn, unnest(services) AS service FROM import_staging) n
        WHERE t.msisdn = n.msisdn AND t.service = n.service AND t.end_date IS NOT NULL""",
        today,
    )
    result.services_enabled = enabled + int(status.rsplit(" ", 1)[1])
    phase("merge subscription")
    status = await conn.execute(
        """
        UPDATE subscription t SET end_date = greatest(t.start_date, $1::date)
        FROM import_staging s
        WHERE t.msisdn = s.msisdn AND t.service <> ALL (s.services)
          AND (t.end_date IS NULL OR t.end_date > $1::date)""",
        today,
    )
    result.services_disabled = int(status.rsplit(" ", 1)[1])
    phase("end unlisted services")
    return True
